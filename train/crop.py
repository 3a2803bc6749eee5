"""Face cropping for datasets of full photos (KDEF, JAFFE, CK+ frames) with the runtime's Haar detector.

Training faces are cut exactly the way the device will cut them, so the model sees
the same framing at train and run time. Photos in which no face is found are
returned by name, never silently dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from edgefer.runtime.detect import Box, HaarConfig, HaarDetector
from edgefer.runtime.preprocess import to_grey


@dataclass
class CropReport:
    """What the cropper did with a set of photos."""

    total: int = 0
    cropped: int = 0
    no_face: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "total": self.total, "cropped": self.cropped, "no_face_count": len(self.no_face),
            "unreadable_count": len(self.unreadable), "no_face": self.no_face, "unreadable": self.unreadable,
        }


class FaceCropper:
    """Largest Haar face of a photo, resized to ``size`` (height, width), grey uint8."""

    def __init__(self, size: tuple[int, int], config: HaarConfig | None = None):
        # Dataset photos are small and posed: detect at full resolution and accept faces down to 40 px.
        self.detector = HaarDetector(config or HaarConfig(
            scale_factor=1.1, min_neighbors=5, min_face=40, detect_width=0, verify=False))
        self.size = size

    def locate(self, image: np.ndarray) -> Box | None:
        """The largest face box, or ``None`` when the detector finds no face."""
        boxes = self.detector.detect(to_grey(image))
        return boxes[0] if boxes else None

    def cut(self, image: np.ndarray, box: Box) -> np.ndarray:
        """``box`` of ``image``, grey, resized to the crop size."""
        face = box.crop(to_grey(image))
        interp = cv2.INTER_AREA if face.shape[0] > self.size[0] else cv2.INTER_LINEAR
        return cv2.resize(face, (self.size[1], self.size[0]), interpolation=interp)

    def crop(self, image: np.ndarray) -> np.ndarray | None:
        """The face crop, or ``None`` when the detector finds no face."""
        box = self.locate(image)
        return None if box is None else self.cut(image, box)

    def crop_files(self, paths: list[Path], report: CropReport) -> list[np.ndarray | None]:
        """Crop each file; unreadable files and files without a face come back as ``None`` and are reported."""
        out: list[np.ndarray | None] = []
        for path in paths:
            report.total += 1
            img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
            if img is None:
                report.unreadable.append(str(path))
                out.append(None)
                continue
            face = self.crop(img)
            if face is None:
                report.no_face.append(str(path))
            else:
                report.cropped += 1
            out.append(face)
        return out
