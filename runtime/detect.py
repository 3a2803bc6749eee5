"""Face detection with OpenCV's Haar cascade, optionally on a downscaled grey frame."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

DEFAULT_CASCADE = "haarcascade_frontalface_default.xml"

# Where pip's OpenCV, Raspberry Pi OS / Debian (python3-opencv) and JetPack put the cascades.
SYSTEM_CASCADE_DIRS = (
    "/usr/share/opencv4/haarcascades",
    "/usr/share/opencv/haarcascades",
    "/usr/local/share/opencv4/haarcascades",
    "/usr/local/share/opencv/haarcascades",
)


class DetectorError(Exception):
    """The face detector cannot be set up (cascade missing or unreadable)."""


def find_haar_cascade(path: str | os.PathLike | None = None, name: str = DEFAULT_CASCADE) -> Path:
    """Locate a Haar cascade: the given path, ``cv2.data.haarcascades``, then the system folders."""
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise DetectorError(f"Haar cascade {p} does not exist")
        return p
    tried: list[str] = []
    dirs: list[str] = []
    cv2_data = getattr(getattr(cv2, "data", None), "haarcascades", None)
    if cv2_data:
        dirs.append(cv2_data)
    dirs.extend(SYSTEM_CASCADE_DIRS)
    for d in dirs:
        candidate = Path(d) / name
        tried.append(str(candidate))
        if candidate.is_file():
            return candidate
    raise DetectorError(
        f"cannot find the Haar cascade {name}; looked in: {', '.join(tried)}. Install opencv-python-headless<5 "
        "(5.0 no longer ships cascades) or opencv-data, or pass --cascade PATH"
    )


@dataclass(frozen=True)
class HaarConfig:
    """Haar parameters. Sizes are in pixels of the original frame."""

    scale_factor: float = 1.1
    min_neighbors: int = 5
    min_face: int = 30
    max_face: int | None = None
    detect_width: int | None = 640  # downscale wider frames to this width before detecting
    cascade: str | None = None


@dataclass(frozen=True)
class Box:
    """A face box in frame pixels."""

    x: int
    y: int
    w: int
    h: int

    def as_list(self) -> list[int]:
        return [self.x, self.y, self.w, self.h]

    def crop(self, image: np.ndarray) -> np.ndarray:
        return image[max(self.y, 0) : self.y + self.h, max(self.x, 0) : self.x + self.w]


class HaarDetector:
    """Finds frontal faces; the cascade is loaded once at construction."""

    def __init__(self, config: HaarConfig = HaarConfig()):
        if config.scale_factor <= 1.0:
            raise ValueError(f"scale_factor must be > 1.0, got {config.scale_factor}")
        self.config = config
        self.cascade_path = find_haar_cascade(config.cascade)
        if not hasattr(cv2, "CascadeClassifier"):
            raise DetectorError("this OpenCV build has no CascadeClassifier (OpenCV 5 removed it); install opencv<5")
        self._cascade = cv2.CascadeClassifier(str(self.cascade_path))
        if self._cascade.empty():
            raise DetectorError(f"OpenCV could not load the Haar cascade {self.cascade_path}")

    def detect(self, grey: np.ndarray) -> list[Box]:
        """Faces in a grey frame, largest first, in the frame's own pixel coordinates."""
        cfg = self.config
        h, w = grey.shape[:2]
        scale = 1.0
        small = grey
        if cfg.detect_width and w > cfg.detect_width:
            scale = cfg.detect_width / w
            small = cv2.resize(grey, (cfg.detect_width, max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
        min_side = max(1, round(cfg.min_face * scale))
        max_side = round(cfg.max_face * scale) if cfg.max_face else 0
        found = self._cascade.detectMultiScale(
            small, scaleFactor=cfg.scale_factor, minNeighbors=cfg.min_neighbors,
            minSize=(min_side, min_side), maxSize=(max_side, max_side) if max_side else (0, 0),
        )
        boxes = [Box(*(int(round(v / scale)) for v in b)) for b in np.asarray(found).reshape(-1, 4)]
        return sorted(boxes, key=lambda b: b.w * b.h, reverse=True)
