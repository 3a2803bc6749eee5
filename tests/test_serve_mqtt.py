"""MQTT output against a real Mosquitto broker on loopback: QoS 1, persistent session, broker restart."""

from __future__ import annotations

import getpass
import json
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from .serve_support import free_port, get, parse_metrics, read_events, start_service, wait_until, write_clip, \
    write_config

TOPIC = "kiosk/test/events"


class Broker:
    """A Mosquitto process on 127.0.0.1:port that keeps sessions and queued messages across restarts."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.port = free_port()
        self.conf = folder / "mosquitto.conf"
        # Started as root, mosquitto drops to the 'mosquitto' user and then cannot write its
        # persistence file into this root-owned folder; naming the current user keeps it as is.
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\nuser {getpass.getuser()}\n"
            f"persistence true\npersistence_location {folder}/\n"
            f"log_dest file {folder}/mosquitto.log\n"
        )
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(["mosquitto", "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        wait_until(self._listening, 20, f"mosquitto on port {self.port}")

    def _listening(self) -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", self.port)) == 0

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # mosquitto saves its persistence file on SIGTERM
            self.proc.wait(timeout=20)
        self.proc = None


@pytest.fixture
def broker(tmp_path):
    if shutil.which("mosquitto") is None:
        pytest.skip("mosquitto is not installed (apt-get install mosquitto; .ci/run installs it)")
    b = Broker(tmp_path)
    b.start()
    yield b
    b.stop()


class Subscriber:
    """A QoS 1 subscriber on a persistent session, collecting event sequence numbers."""

    def __init__(self, port: int):
        import paho.mqtt.client as mqtt

        self.seqs: list[int] = []
        self._lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="edgefer-test-subscriber",
                                  clean_session=False)
        self.client.reconnect_delay_set(min_delay=1, max_delay=2)
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(TOPIC, qos=1)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port, keepalive=10)
        self.client.loop_start()

    def _on_message(self, client, userdata, message) -> None:
        with self._lock:
            self.seqs.append(json.loads(message.payload)["seq"])

    def received(self) -> set[int]:
        with self._lock:
            return set(self.seqs)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_events_survive_a_broker_restart(tmp_path, broker, tiny_artifacts):
    pytest.importorskip("paho.mqtt.client")
    subscriber = Subscriber(broker.port)
    clip = write_clip(tmp_path / "clip.avi", frames=20)
    http_port = free_port()
    events = tmp_path / "events.jsonl"
    config = write_config(tmp_path / "serve.toml", {
        "source": {"spec": str(clip), "loop": True, "max_fps": 20.0},
        "model": {"path": str(tiny_artifacts / "tiny_int8.tflite")},
        "outputs": {"emit": "all"},
        "outputs.jsonl": {"enabled": True, "path": str(events)},
        "outputs.mqtt": {"enabled": True, "port": broker.port, "topic": TOPIC, "client_id": "edgefer-test-kiosk",
                         "queue_max": 1000, "flush_timeout_s": 10.0},
        "outputs.http": {"enabled": True, "port": http_port},
    })
    log = tmp_path / "serve.log"
    proc = start_service(config, log)
    try:
        wait_until(lambda: len(subscriber.received()) >= 10, 180, "events over MQTT", proc, log)

        def metric(name: str) -> float:
            return parse_metrics(get(http_port, "/metrics")[1]).get(name, -1.0)

        assert metric("edgefer_mqtt_connected") == 1
        broker.stop()
        wait_until(lambda: metric("edgefer_mqtt_connected") == 0, 30, "the disconnect to be noticed", proc, log)
        wait_until(lambda: metric("edgefer_mqtt_queued_events") >= 20, 30, "events queued offline", proc, log)
        published_offline = max(e["seq"] for e in read_events(events))
        broker.start()
        wait_until(lambda: metric("edgefer_mqtt_connected") == 1, 60, "the reconnect", proc, log)
        wait_until(lambda: subscriber.received() >= set(range(1, published_offline + 1)), 60,
                   "the events published while the broker was down", proc, log)
        time.sleep(1.0)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
    logged = {e["seq"] for e in read_events(events)}
    # Every event the service wrote to its log reached the subscriber (QoS 1: at least once).
    wait_until(lambda: subscriber.received() >= logged, 30, "all logged events over MQTT")
    subscriber.close()
    assert "MQTT disconnected" in log.read_text() and "queued until it is back" in log.read_text()


def test_offline_queue_is_bounded(tmp_path, tiny_artifacts):
    """No broker at all: the queue stops at queue_max and the rest is counted as dropped."""
    pytest.importorskip("paho.mqtt.client")
    clip = write_clip(tmp_path / "clip.avi", frames=20)
    http_port = free_port()
    config = write_config(tmp_path / "serve.toml", {
        "source": {"spec": str(clip), "loop": True},
        "model": {"path": str(tiny_artifacts / "tiny_int8.tflite")},
        "outputs": {"emit": "all"},
        "outputs.mqtt": {"enabled": True, "port": free_port(), "queue_max": 25, "flush_timeout_s": 0.5},
        "outputs.http": {"enabled": True, "port": http_port},
    })
    log = tmp_path / "serve.log"
    proc = start_service(config, log)
    try:
        values = wait_until(
            lambda: (v := parse_metrics(get(http_port, "/metrics")[1])).get(
                'edgefer_events_dropped_total{output="mqtt"}', 0) >= 10 and v,
            180, "dropped events", proc, log)
        assert values["edgefer_mqtt_queued_events"] == 25
        assert values['edgefer_events_total{output="mqtt"}'] == 25
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "were not acknowledged before stopping" in log.read_text()
