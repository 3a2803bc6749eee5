"""systemd's notification protocol (``sd_notify``) in a few lines: datagrams to ``$NOTIFY_SOCKET``."""

from __future__ import annotations

import logging
import os
import socket
import time
from typing import Mapping

from ..redact import redact

log = logging.getLogger(__name__)


def _one_line(text: str) -> str:
    return " ".join(text.splitlines())


class Notifier:
    """Sends READY/STATUS/WATCHDOG/STOPPING to systemd; does nothing when not run under ``Type=notify``."""

    def __init__(self, environ: Mapping[str, str] | None = None):
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        # A leading '@' names a socket in the abstract namespace (a NUL byte on the wire).
        self._address = "\0" + address[1:] if address.startswith("@") else address
        self._sock: socket.socket | None = None
        if self._address:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._sock.setblocking(False)
        self.watchdog_interval_s = self._watchdog_interval(env)
        self._last_ping = 0.0

    @staticmethod
    def _watchdog_interval(env: Mapping[str, str]) -> float | None:
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        if not usec.isdigit() or int(usec) == 0 or (pid.isdigit() and int(pid) != os.getpid()):
            return None
        # systemd's advice: ping at half the timeout so one late frame does not trip it.
        return int(usec) / 2e6

    @property
    def enabled(self) -> bool:
        return self._sock is not None

    def send(self, **fields: str | int) -> bool:
        """Send ``KEY=value`` lines; a full or missing socket is logged, never raised."""
        if self._sock is None:
            return False
        # STATUS= lands in `systemctl status` and the journal: no credentials, and a newline in a value
        # (an exception text) would start a bogus field.
        message = "\n".join(f"{k.upper()}={_one_line(redact(str(v)))}" for k, v in fields.items()).encode()
        try:
            self._sock.sendto(message, self._address)
            return True
        except OSError as exc:
            log.debug("sd_notify %s failed: %s", list(fields), exc)
            return False

    def ready(self, status: str) -> None:
        self.send(ready=1, status=status, mainpid=os.getpid())

    def status(self, text: str) -> None:
        self.send(status=text)

    def stopping(self, status: str = "stopping") -> None:
        self.send(stopping=1, status=status)

    def watchdog(self, now: float | None = None) -> None:
        """Ping the watchdog if it is armed and half its timeout has passed since the last ping."""
        if self.watchdog_interval_s is None:
            return
        now = time.monotonic() if now is None else now
        if now - self._last_ping >= self.watchdog_interval_s:
            self._last_ping = now
            self.send(watchdog=1)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
