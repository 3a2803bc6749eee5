"""``/healthz`` and Prometheus ``/metrics`` on a small threaded HTTP server (standard library only).

It is built to be left running on a kiosk: at most ``max_connections`` requests are
served at once (one thread each; a connection beyond that is closed at once), a
client that sends nothing is dropped after ``idle_timeout_s``, a client that hangs up
early costs a debug line instead of a traceback, and the ``Server`` header names no
Python version.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

log = logging.getLogger(__name__)

PROMETHEUS_TYPE = "text/plain; version=0.0.4; charset=utf-8"
MAX_CONNECTIONS = 16
IDLE_TIMEOUT_S = 5.0


def is_loopback(host: str) -> bool:
    """Whether a bind address is reachable from this machine only."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: resolve it the way bind() will
        try:
            return all(ipaddress.ip_address(info[4][0]).is_loopback for info in socket.getaddrinfo(host, None))
        except (OSError, ValueError):
            return False


class _BoundedServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 64  # listen backlog: a burst waits in the kernel, not in SYN retries

    def __init__(self, address: tuple[str, int], handler: type, max_connections: int):
        self._slots = threading.BoundedSemaphore(max_connections)
        self.refused = 0
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        # One thread per connection, but never more than the slots: a flood of idle connections
        # is turned away at accept() instead of growing a thread each.
        if not self._slots.acquire(blocking=False):
            self.refused += 1
            if self.refused == 1 or self.refused % 100 == 0:
                log.warning("http: %d connection(s) refused so far: all %s slots busy", self.refused,
                            self._slots._initial_value)  # type: ignore[attr-defined]
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):  # the client went away: not our problem
            log.debug("http: client %s: %s", client_address, exc)
        else:
            log.warning("http: request from %s failed", client_address, exc_info=True)


class HealthServer:
    """Serves ``health()`` (a dict with ``ok``) on /healthz and ``metrics()`` text on /metrics in a daemon thread."""

    def __init__(self, host: str, port: int, health: Callable[[], dict[str, Any]], metrics: Callable[[], str],
                 max_connections: int = MAX_CONNECTIONS, idle_timeout_s: float = IDLE_TIMEOUT_S):
        class Handler(BaseHTTPRequestHandler):
            timeout = idle_timeout_s  # applied to the socket: a silent client is dropped
            protocol_version = "HTTP/1.0"  # one request per connection: no idle keep-alive holding a slot

            def version_string(self) -> str:
                return "edgefer"  # not BaseHTTPRequestHandler's "BaseHTTP/0.6 Python/3.x.y"

            def do_GET(self) -> None:  # noqa: N802 - the http.server API
                path = self.path.split("?", 1)[0]
                if path == "/healthz":
                    body = health()
                    self._reply(200 if body.get("ok") else 503, "application/json",
                                json.dumps(body).encode())
                elif path == "/metrics":
                    self._reply(200, PROMETHEUS_TYPE, metrics().encode())
                else:
                    self._reply(404, "text/plain; charset=utf-8", b"not found: try /healthz or /metrics\n")

            def _reply(self, status: int, content_type: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the http.server API
                log.debug("http %s " + format, self.address_string(), *args)

        try:
            self._server = _BoundedServer((host, port), Handler, max_connections)
        except OSError as exc:
            raise OSError(f"cannot serve /healthz and /metrics on {host}:{port}: {exc.strerror or exc}; "
                          "change [outputs.http] port or stop what holds it") from None
        self.host, self.port = self._server.server_address[:2]
        if not is_loopback(host):
            log.warning("/healthz and /metrics are served on %s:%d, reachable from the network without "
                        "authentication; bind [outputs.http] host to 127.0.0.1 unless a firewall guards the port",
                        self.host, self.port)
        self._thread = threading.Thread(target=self._server.serve_forever, name="edgefer-http", daemon=True)
        self._thread.start()

    @property
    def refused(self) -> int:
        """Connections turned away because every slot was busy."""
        return self._server.refused

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=2)
