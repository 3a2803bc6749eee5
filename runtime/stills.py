"""Face detection on still images: the resolution follows the image and its smallest face.

A photo is not a kiosk frame: a group photo's faces are a small fraction of the
frame, and a cropped face photo is nothing but the face. So a still image is
detected on its own (no tracking) with a minimum face in pixels of the image
(``min_face``, by default 48 pixels, the size of FER2013's faces, the smallest the classifier
learnt from: a smaller face holds less than it was trained on), raised to ``min_face_ratio`` of the shorter side for very large
photos; the image is shrunk until that face is the detector's comfortable size
(``target``: the 24-pixel window for Haar, 24 for YuNet) and no further, so one pass of the
detector's own scale pyramid covers every face size from there up. When that finds
nothing, the image may itself be a face that fills the frame, which the Haar
cascade cannot see without the forehead-to-chin margin it was trained on: a second,
cheap look pads the border (edge pixels repeated by ``pad`` of the longer side) and
searches for faces of at least half the shorter side. See ``docs/detection.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

from .detect import Box, face_size_limits, shrink

if TYPE_CHECKING:
    from .detect import HaarDetector, YuNetDetector


@dataclass(frozen=True)
class StillConfig:
    """How still images are detected; sizes in pixels of the image."""

    min_face: int = 48  # FER2013's face side, the least detail the classifier learnt from; fer's minimum is 50
    min_face_ratio: float = 0.02  # of the shorter side: 60 pixels on a 4000x3000 photo
    pad: float = 0.25  # border added for the second look, as a fraction of the longer side (0: no second look)
    pad_min_face_ratio: float = 0.5  # the second look finds faces of at least this fraction of the shorter side

    def __post_init__(self) -> None:
        if self.min_face < 1:
            raise ValueError(f"still min_face must be at least 1 pixel, got {self.min_face}")
        if not 0.0 <= self.min_face_ratio < 1.0:
            raise ValueError(f"still min_face_ratio must be in [0, 1), got {self.min_face_ratio}")
        if not 0.0 <= self.pad <= 1.0:
            raise ValueError(f"pad must be in [0, 1] (fraction of the longer side), got {self.pad}")
        if not 0.0 < self.pad_min_face_ratio <= 1.0:
            raise ValueError(f"pad_min_face_ratio must be in (0, 1], got {self.pad_min_face_ratio}")


class StillDetector:
    """Detects faces in still images with a :class:`~.detect.HaarDetector` or :class:`~.detect.YuNetDetector`.

    The engine's own ``max_face`` / ``max_face_ratio`` still cap the largest face.
    """

    def __init__(self, engine: "HaarDetector | YuNetDetector", config: StillConfig = StillConfig()):
        self.engine = engine
        self.config = config
        self.needs_colour = engine.needs_colour
        self.padded_looks = 0  # how often the second look ran, for benchmarks

    def limits(self, shape: tuple[int, ...]) -> tuple[float, float, float]:
        """Smallest and largest face side (image pixels) and the scale the image is detected at."""
        cfg, ecfg = self.config, self.engine.config
        low, high = face_size_limits(shape, cfg.min_face, ecfg.max_face, cfg.min_face_ratio, ecfg.max_face_ratio)
        return low, high, min(1.0, self.engine.target / low)

    def detect(self, image: np.ndarray) -> list[Box]:
        """Faces in one still image, largest first, in the image's own pixel coordinates."""
        low, high, scale = self.limits(image.shape)
        boxes = self.engine.find(image, scale, low, high)
        if boxes or not self.config.pad:
            return boxes
        return self._padded(image, high)

    def _padded(self, image: np.ndarray, high: float) -> list[Box]:
        """The second look: the image with a repeated-edge border, for a face that fills the frame."""
        self.padded_looks += 1
        h, w = image.shape[:2]
        low = self.config.pad_min_face_ratio * min(h, w)
        if low > high:
            return []
        # Only large faces are looked for, so the image is shrunk first (the smallest of them to the detector's
        # padded_target) and padded after: the border costs nothing at full size.
        small = shrink(image, min(1.0, self.engine.padded_target / low))
        scale = small.shape[1] / w
        pad = max(1, round(self.config.pad * max(small.shape[:2])))
        padded = cv2.copyMakeBorder(small, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        # A face larger than the image is cut by its edges; the padded frame may hold it whole.
        found = self.engine.find(padded, 1.0, low * scale, high * (1 + 2 * self.config.pad) * scale)
        boxes = [Box(*(round(v / scale) for v in (b.x - pad, b.y - pad, b.w, b.h))).clipped(w, h) for b in found]
        boxes = [b for b in boxes if b.w > 0 and b.h > 0]
        return sorted(boxes, key=lambda b: b.w * b.h, reverse=True)
