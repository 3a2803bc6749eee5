"""Opt-in frame capture (``[privacy] save_frames``): rate-limited, bounded on disk. Off by default."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import cv2
import numpy as np

log = logging.getLogger(__name__)


class FrameSaver:
    """Writes at most one JPEG per ``interval_s`` into ``folder`` and keeps only the newest ``max_files``."""

    def __init__(self, folder: str | Path, interval_s: float, max_files: int):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.interval_s = interval_s
        self.max_files = max_files
        self._last = float("-inf")

    def offer(self, image: np.ndarray, frame_index: int, now: float | None = None) -> Path | None:
        """Save ``image`` if the interval has passed; returns the file written, if any."""
        now = time.time() if now is None else now
        if now - self._last < self.interval_s:
            return None
        self._last = now
        path = self.folder / f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime(now))}_{frame_index:09d}.jpg"
        if not cv2.imwrite(str(path), image):
            log.warning("could not write frame %s", path)
            return None
        saved = sorted(self.folder.glob("*.jpg"))
        for old in saved[: max(0, len(saved) - self.max_files)]:
            old.unlink(missing_ok=True)
        return path
