"""Append-only JSON-lines log, rotated by size, in which no line is ever half written.

Each event is encoded first and handed to the kernel with a single ``write`` on an
``O_APPEND`` descriptor, so a crash (SIGKILL included) leaves whole lines only: the
kernel completes a started write to a regular file. Only a power loss can cut a line;
the next start trims such a torn tail back to the last newline.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class JsonlWriter:
    """Writes one JSON object per line to ``path``; rotates to ``path.1`` ... ``path.N`` by size."""

    name = "jsonl"

    def __init__(self, path: str | Path, max_bytes: int = 10 * 1024 * 1024, backups: int = 5, fsync: bool = False):
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.backups = backups
        self.fsync = fsync
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OSError(f"cannot create the event log folder {self.path.parent}: {exc.strerror or exc}") from None
        self._repair_tail()
        self._fd = self._open()
        self._size = os.fstat(self._fd).st_size

    def _open(self) -> int:
        try:
            return os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        except OSError as exc:
            raise OSError(f"cannot open the event log {self.path} for appending: {exc.strerror or exc}") from None

    def _repair_tail(self) -> None:
        """Cut a line torn by a power loss, so the log holds whole lines only."""
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return
        if size == 0:
            return
        with open(self.path, "rb+") as fh:
            fh.seek(size - 1)
            if fh.read(1) == b"\n":
                return
            step = min(size, 1 << 16)
            keep = 0
            pos = size
            while pos > 0:
                start = max(0, pos - step)
                fh.seek(start)
                chunk = fh.read(pos - start)
                cut = chunk.rfind(b"\n")
                if cut >= 0:
                    keep = start + cut + 1
                    break
                pos = start
            fh.truncate(keep)
        log.warning("event log %s ended in a torn line (power loss?); cut %d bytes", self.path, size - keep)

    def write(self, event: dict[str, Any]) -> bool:
        data = (json.dumps(event, separators=(",", ":")) + "\n").encode()
        if self._size and self._size + len(data) > self.max_bytes:
            self._rotate()
        written = os.write(self._fd, data)
        # A regular file takes the whole buffer; a short write means a full disk, which the next
        # line must not be glued onto: finish the line or fail loudly.
        while written < len(data):
            written += os.write(self._fd, data[written:])
        if self.fsync:
            os.fsync(self._fd)
        self._size += len(data)
        return True

    def _rotate(self) -> None:
        os.close(self._fd)
        if self.backups == 0:
            self.path.unlink(missing_ok=True)
        else:
            for i in range(self.backups - 1, 0, -1):
                older = self.path.with_name(f"{self.path.name}.{i}")
                if older.exists():
                    os.replace(older, self.path.with_name(f"{self.path.name}.{i + 1}"))
            os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
        self._fd = self._open()
        self._size = 0

    def flush(self, timeout_s: float = 0.0) -> None:
        os.fsync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = -1
