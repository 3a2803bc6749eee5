"""``/healthz`` and Prometheus ``/metrics`` on a small threaded HTTP server (standard library only)."""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

log = logging.getLogger(__name__)

PROMETHEUS_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class HealthServer:
    """Serves ``health()`` (a dict with ``ok``) on /healthz and ``metrics()`` text on /metrics in a daemon thread."""

    def __init__(self, host: str, port: int, health: Callable[[], dict[str, Any]], metrics: Callable[[], str]):
        class Handler(BaseHTTPRequestHandler):
            server_version = "edgefer"

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
            self._server = ThreadingHTTPServer((host, port), Handler)
        except OSError as exc:
            raise OSError(f"cannot serve /healthz and /metrics on {host}:{port}: {exc.strerror or exc}; "
                          "change [outputs.http] port or stop what holds it") from None
        self._server.daemon_threads = True
        self.host, self.port = self._server.server_address[:2]
        self._thread = threading.Thread(target=self._server.serve_forever, name="edgefer-http", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=2)
