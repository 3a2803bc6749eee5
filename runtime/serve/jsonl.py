"""Append-only JSON-lines log, rotated by size, in which no line is ever half written.

Each event is encoded first and handed to the kernel with a single ``write`` on an
``O_APPEND`` descriptor, so a crash (SIGKILL included) leaves whole lines only: the
kernel completes a started write to a regular file. Only a power loss can cut a line;
the next start trims such a torn tail back to the last newline.

A full disk (or any other write error) takes the line back to where it began, so the
next line is never glued onto half of this one; the event is counted as lost, the
writer reports itself failing (``/healthz``) and logs once per change of state, and it
writes again as soon as space is back.
"""

from __future__ import annotations

import errno
import json
import logging
import os
from pathlib import Path
from typing import Any

from ..redact import redact

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
        self.error: str | None = None  # why the last write failed; None while writing works
        self.lost = 0
        self.lost_since_ok = 0
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
        """Append one event as one line; ``False`` (and nothing on disk) when it cannot be written."""
        data = redact(json.dumps(event, separators=(",", ":")) + "\n").encode()
        try:
            if self._fd < 0:  # a failed rotation left no file open: try again
                self._fd = self._open()
                self._size = os.fstat(self._fd).st_size
            if self._size and self._size + len(data) > self.max_bytes:
                self._rotate()
            self._append(data)
        except OSError as exc:
            self._failed(exc)
            return False
        if self.error is not None:
            log.warning("event log %s is writable again; %d event(s) were lost while it was not",
                        self.path, self.lost_since_ok)
            self.error = None
            self.lost_since_ok = 0
        return True

    def _append(self, data: bytes) -> None:
        start = self._size
        written = 0
        try:
            # A regular file takes the whole buffer unless the disk is full: then the first write is
            # short and the next one raises ENOSPC.
            while written < len(data):
                n = os.write(self._fd, data[written:])
                if n <= 0:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                written += n
            if self.fsync:
                os.fsync(self._fd)
        except OSError:
            if written:
                self._truncate(start)
            raise
        self._size = start + written

    def _truncate(self, size: int) -> None:
        """Take a partly written line back; shrinking a file needs no free space."""
        try:
            os.ftruncate(self._fd, size)
        except OSError as exc:  # then the next start's tail repair cuts it
            log.error("cannot take a partial line back out of %s: %s", self.path, exc.strerror or exc)

    def _failed(self, exc: OSError) -> None:
        self.lost += 1
        self.lost_since_ok += 1
        message = exc.strerror or str(exc)
        if self.error != message:  # one warning per change of state, not one per lost event
            log.warning("cannot write to the event log %s: %s; events are dropped (and counted) until it works",
                        self.path, message)
        self.error = message

    @property
    def healthy(self) -> bool:
        return self.error is None

    def status(self) -> dict[str, Any]:
        """For ``/healthz``: whether the last write worked, its error, and the events lost so far."""
        return {"ok": self.error is None, "error": self.error, "lost_events": self.lost}

    def _rotate(self) -> None:
        fd, self._fd = self._fd, -1
        os.close(fd)
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
        if self._fd >= 0:
            os.fsync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
