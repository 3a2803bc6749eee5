"""Helpers of the ``edgefer serve`` tests: generated clips, TOML configs, the service as a child process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edgefer.runtime.serve.soak import free_port, parse_metrics
from edgefer.runtime.sources import Frame

__all__ = ["free_port", "parse_metrics", "write_clip", "write_config", "start_service", "get", "wait_until",
           "read_events"]


def write_clip(path: Path, frames: int = 30, size: tuple[int, int] = (160, 120)) -> Path:
    """A small MJPG clip of moving shapes on noise (no faces: the detector finds none)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 15, size)
    rng = np.random.default_rng(0)
    for i in range(frames):
        img = rng.integers(0, 60, (size[1], size[0], 3), dtype=np.uint8)
        cv2.circle(img, (10 + 4 * i % size[0], size[1] // 2), 12, (200, 200, 200), -1)
        writer.write(img)
    writer.release()
    return path


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(str(value))


def write_config(path: Path, sections: dict[str, dict[str, Any]]) -> Path:
    """Write ``{"source": {...}, "outputs.jsonl": {...}}`` as TOML tables."""
    lines = []
    for table, values in sections.items():
        lines.append(f"[{table}]")
        lines.extend(f"{key} = {_toml_value(v)}" for key, v in values.items())
        lines.append("")
    path.write_text("\n".join(lines))
    return path


def start_service(config: Path, log: Path, env: dict[str, str] | None = None, *args: str) -> subprocess.Popen:
    """``python -m edgefer serve --config CONFIG`` with stdout and stderr in ``log``."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    with open(log, "wb") as fh:
        return subprocess.Popen([sys.executable, "-m", "edgefer", "serve", "--config", str(config), *args],
                                stdout=fh, stderr=subprocess.STDOUT, env=full_env)


def get(port: int, path: str) -> tuple[int, str]:
    """(status, body) of a GET on 127.0.0.1; a refused connection raises OSError."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def wait_until(predicate, timeout_s: float, what: str, proc: subprocess.Popen | None = None,
               log: Path | None = None, step_s: float = 0.1):
    """Poll ``predicate`` until it returns something truthy; fail with ``what`` (and the log) on timeout."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"service exited ({proc.returncode}) while waiting for {what}:\n"
                                 f"{log.read_text() if log else ''}")
        try:
            result = predicate()
        except OSError:
            result = None
        if result:
            return result
        time.sleep(step_s)
    raise AssertionError(f"timed out after {timeout_s:g}s waiting for {what}\n{log.read_text() if log else ''}")


def read_events(path: Path) -> list[dict[str, Any]]:
    """Every line of a JSONL log parsed (a torn line fails the test)."""
    text = path.read_text()
    assert text == "" or text.endswith("\n"), "the event log ends in a partial line"
    return [json.loads(line) for line in text.splitlines()]


class FakeCamera:
    """A live source that delivers the given images (``None``: a failed read), then stops like an unplugged camera."""

    live = True
    description = "fake camera"

    def __init__(self, images, delay_s: float = 0.0):
        self.images = images
        self.delay_s = delay_s
        self.closed = False

    def __iter__(self):
        for i, img in enumerate(self.images):
            time.sleep(self.delay_s)
            yield Frame(i, time.time(), img, self.description, None if img is not None else "read failed")

    def close(self):
        self.closed = True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
