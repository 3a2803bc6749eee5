"""MQTT output: QoS 1 on a persistent session, with a bounded queue that rides out broker restarts.

paho-mqtt keeps every unacknowledged QoS 1 message (sent or not yet sent) in its
own queue and resends it after a reconnect, so events published while the broker
is away arrive once it is back; ``queue_max`` bounds that queue and events beyond
it are dropped and counted instead of growing memory on a kiosk that never sees
its broker again.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from pathlib import Path
from typing import Any

from ..redact import redact
from .config import MqttConfig
from .metrics import ServiceMetrics

log = logging.getLogger(__name__)


class OutputUnavailable(ImportError):
    """An output needs a package that is not installed; the message names it."""


def default_client_id() -> str:
    """A stable id: the broker keys the persistent session on it."""
    return f"edgefer-{socket.gethostname()}"


class MqttPublisher:
    """Publishes events as JSON to one topic; ``close`` waits up to ``flush_timeout_s`` for acknowledgements."""

    name = "mqtt"

    def __init__(self, config: MqttConfig, metrics: ServiceMetrics):
        try:
            import paho.mqtt.client as mqtt
        except ImportError:
            raise OutputUnavailable(
                "the MQTT output needs paho-mqtt>=2.0: pip install 'edgefer[serve]' (or disable [outputs.mqtt])"
            ) from None
        if not hasattr(mqtt, "CallbackAPIVersion"):
            raise OutputUnavailable(f"the MQTT output needs paho-mqtt>=2.0, found {getattr(mqtt, '__version__', '?')}:"
                                    " pip install 'edgefer[serve]'")
        self._mqtt = mqtt
        self.config = config
        self.metrics = metrics
        self._lock = threading.Lock()
        self._pending = 0
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=config.client_id or default_client_id(),
                             clean_session=False, protocol=mqtt.MQTTv311)
        client.max_queued_messages_set(config.queue_max)
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        if config.username:
            password = Path(config.password_file).read_text().strip() if config.password_file else None
            client.username_pw_set(config.username, password)
        if config.tls_ca:
            client.tls_set(ca_certs=config.tls_ca)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        self._client = client
        client.connect_async(config.host, config.port, keepalive=config.keepalive_s)
        client.loop_start()

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.warning("MQTT broker %s:%d refused the connection: %s", self.config.host, self.config.port,
                        reason_code)
            return
        self.metrics.mqtt_connected.set(1)
        log.info("MQTT connected to %s:%d (session present: %s)", self.config.host, self.config.port,
                 flags.session_present)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self.metrics.mqtt_connected.set(0)
        log.warning("MQTT disconnected from %s:%d (%s); events are queued until it is back",
                    self.config.host, self.config.port, reason_code)

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        self._count(-1)

    def write(self, event: dict[str, Any]) -> bool:
        payload = redact(json.dumps(event, separators=(",", ":")))
        # Count the event before publishing: paho may deliver its acknowledgement (on_publish, in its
        # network thread) before publish() returns. publish() is not called under our lock because paho
        # holds its own message lock around on_publish, which takes ours.
        self._count(+1)
        info = self._client.publish(self.config.topic, payload, qos=1)
        # NO_CONN still queues a QoS 1 message; only a full queue or a real error refuses it.
        if info.rc in (self._mqtt.MQTT_ERR_SUCCESS, self._mqtt.MQTT_ERR_NO_CONN):
            return True
        self._count(-1)
        if info.rc != self._mqtt.MQTT_ERR_QUEUE_SIZE:
            self.metrics.output_errors.inc(output=self.name)
            log.warning("MQTT publish failed: %s", self._mqtt.error_string(info.rc))
        return False

    def _count(self, delta: int) -> None:
        with self._lock:
            self._pending = max(0, self._pending + delta)
            self.metrics.mqtt_queued.set(self._pending)

    @property
    def pending(self) -> int:
        with self._lock:
            return self._pending

    def flush(self, timeout_s: float = 0.0) -> None:
        """Wait up to ``timeout_s`` for the broker to acknowledge what is queued."""
        deadline = time.monotonic() + timeout_s
        while self.pending and time.monotonic() < deadline:
            time.sleep(0.05)

    def close(self) -> None:
        self.flush(self.config.flush_timeout_s)
        if self.pending:
            log.warning("MQTT: %d event(s) were not acknowledged before stopping", self.pending)
        self._client.disconnect()
        self._client.loop_stop()
