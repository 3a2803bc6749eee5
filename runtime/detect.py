"""Face detectors behind one interface: OpenCV's Haar cascade and, optionally, YuNet.

Both detect on a downscaled frame and map the boxes back to frame pixels; the
smallest and largest face are given in pixels and as a fraction of the frame's
shorter side, so one configuration fits a 320x240 camera and a 1080p stream.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, Union, runtime_checkable

import cv2
import numpy as np

from .errors import EdgeferError

if TYPE_CHECKING:
    from .tracking import TrackConfig

DEFAULT_CASCADE = "haarcascade_frontalface_default.xml"

# Where pip's OpenCV, Raspberry Pi OS / Debian (python3-opencv) and JetPack put the cascades.
SYSTEM_CASCADE_DIRS = (
    "/usr/share/opencv4/haarcascades",
    "/usr/share/opencv/haarcascades",
    "/usr/local/share/opencv4/haarcascades",
    "/usr/local/share/opencv/haarcascades",
)


class DetectorError(EdgeferError):
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
    """Haar parameters. Pixel sizes are in pixels of the original frame.

    A face counts when its side is at least ``max(min_face, min_face_ratio * short side)``
    and at most ``min(max_face, max_face_ratio * short side)``. The frame is shrunk to
    ``detect_width`` but never so far that the smallest such face falls below the
    cascade's 24-pixel window. Shrinking still changes which borderline faces the
    cascade accepts (``benchmarks/recall.py`` measures it against full-frame Haar);
    ``detect_width=None`` detects on the frame as it is.
    """

    scale_factor: float = 1.1
    min_neighbors: int = 5
    min_face: int = 24
    max_face: int | None = None
    # Downscale wider frames to this width first: 480 keeps every real face of the ../shared/media clips
    # that full-frame Haar finds, at 2/3 of its cost (benchmarks/results/recall-sweep.json).
    detect_width: int | None = 480
    cascade: str | None = None
    min_face_ratio: float = 0.1  # 48 pixels on a 640x480 frame, 72 on 1280x720
    max_face_ratio: float = 1.0


@dataclass(frozen=True)
class YuNetConfig:
    """YuNet (``cv2.FaceDetectorYN``) parameters; ``model`` is the ONNX file the user downloaded."""

    model: str
    score_threshold: float = 0.7
    nms_threshold: float = 0.3
    top_k: int = 50
    min_face: int = 16
    max_face: int | None = None
    detect_width: int | None = 320
    min_face_ratio: float = 0.05
    max_face_ratio: float = 1.0


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

    def clipped(self, width: int, height: int) -> "Box":
        """The part of the box inside a ``width`` x ``height`` frame."""
        x0, y0 = min(max(self.x, 0), width), min(max(self.y, 0), height)
        x1, y1 = min(max(self.x + self.w, 0), width), min(max(self.y + self.h, 0), height)
        return Box(x0, y0, x1 - x0, y1 - y0)


@runtime_checkable
class Detector(Protocol):
    """Finds faces in a frame; boxes come back largest first, in the frame's own pixels.

    ``needs_colour`` says whether ``detect`` wants the BGR frame (else the grey one).
    """

    needs_colour: bool

    def detect(self, image: np.ndarray) -> list[Box]: ...


def face_size_limits(shape: tuple[int, ...], min_face: int, max_face: int | None, min_ratio: float,
                     max_ratio: float) -> tuple[float, float]:
    """Smallest and largest face side (frame pixels) admitted in a frame of ``shape``."""
    short = min(shape[0], shape[1])
    low = max(float(min_face), min_ratio * short)
    high = min(float(max_face) if max_face else float("inf"), max_ratio * short)
    return low, high


def detect_scale(width: int, detect_width: int | None, min_side: float, window: int) -> float:
    """How far to shrink a frame: to ``detect_width``, but keep ``min_side`` at least ``window`` pixels."""
    scale = detect_width / width if detect_width and width > detect_width else 1.0
    if min_side > 0:
        scale = max(scale, window / min_side)
    return min(scale, 1.0)


def shrink(image: np.ndarray, scale: float) -> np.ndarray:
    """``image`` resized by ``scale`` (area interpolation); unchanged when ``scale`` >= 1."""
    if scale >= 1.0:
        return image
    h, w = image.shape[:2]
    return cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)


def _check_limits(min_face: int, max_face: int | None, min_ratio: float, max_ratio: float,
                  detect_width: int | None) -> None:
    if min_face < 1:
        raise ValueError(f"min_face must be at least 1 pixel, got {min_face}")
    if max_face is not None and max_face < min_face:
        raise ValueError(f"max_face ({max_face}) is smaller than min_face ({min_face})")
    if not 0.0 <= min_ratio < max_ratio <= 1.0:
        raise ValueError(
            f"face size ratios must satisfy 0 <= min_face_ratio < max_face_ratio <= 1, got {min_ratio} and {max_ratio}"
        )
    if detect_width is not None and detect_width < 32:
        raise ValueError(f"detect_width must be at least 32 pixels (or None/0 for no downscaling), got {detect_width}")


class HaarDetector:
    """Finds frontal faces in grey frames; the cascade is loaded once at construction."""

    needs_colour = False

    def __init__(self, config: HaarConfig = HaarConfig()):
        if config.scale_factor <= 1.0:
            raise ValueError(f"scale_factor must be > 1.0, got {config.scale_factor}")
        _check_limits(config.min_face, config.max_face, config.min_face_ratio, config.max_face_ratio,
                      config.detect_width)
        self.config = config
        self.cascade_path = find_haar_cascade(config.cascade)
        if not hasattr(cv2, "CascadeClassifier"):
            raise DetectorError("this OpenCV build has no CascadeClassifier (OpenCV 5 removed it); install opencv<5")
        self._cascade = cv2.CascadeClassifier(str(self.cascade_path))
        if self._cascade.empty():
            raise DetectorError(f"OpenCV could not load the Haar cascade {self.cascade_path}")
        self._window = max(self._cascade.getOriginalWindowSize())

    def detect(self, grey: np.ndarray) -> list[Box]:
        """Faces in a grey frame, largest first, in the frame's own pixel coordinates."""
        cfg = self.config
        if grey.ndim == 3:
            grey = cv2.cvtColor(grey, cv2.COLOR_BGR2GRAY)
        low, high = face_size_limits(grey.shape, cfg.min_face, cfg.max_face, cfg.min_face_ratio,
                                     cfg.max_face_ratio)
        scale = detect_scale(grey.shape[1], cfg.detect_width, low, self._window)
        small = shrink(grey, scale)
        min_side = max(1, round(low * scale))
        max_side = round(high * scale) if high != float("inf") else 0
        if max_side and max_side < min_side:
            return []
        found = self._cascade.detectMultiScale(
            small, scaleFactor=cfg.scale_factor, minNeighbors=cfg.min_neighbors,
            minSize=(min_side, min_side), maxSize=(max_side, max_side) if max_side else (0, 0),
        )
        boxes = [Box(*(int(round(v / scale)) for v in b)) for b in np.asarray(found).reshape(-1, 4)]
        return sorted(boxes, key=lambda b: b.w * b.h, reverse=True)


class YuNetDetector:
    """OpenCV's YuNet CNN face detector (``cv2.FaceDetectorYN``) on a downscaled BGR frame."""

    needs_colour = True

    def __init__(self, config: YuNetConfig):
        _check_limits(config.min_face, config.max_face, config.min_face_ratio, config.max_face_ratio,
                      config.detect_width)
        if not 0.0 < config.score_threshold < 1.0:
            raise ValueError(f"score_threshold must be in (0, 1), got {config.score_threshold}")
        path = Path(config.model)
        if not path.is_file():
            raise DetectorError(
                f"YuNet model {path} does not exist; download face_detection_yunet_2023mar.onnx from "
                "https://github.com/opencv/opencv_zoo/tree/main/models/face_detection_yunet and pass its path"
            )
        if not hasattr(cv2, "FaceDetectorYN"):
            raise DetectorError(f"OpenCV {cv2.__version__} has no FaceDetectorYN; YuNet needs opencv>=4.8")
        self.config = config
        self.model_path = path
        try:
            self._net = cv2.FaceDetectorYN.create(str(path), "", (320, 320), config.score_threshold,
                                                  config.nms_threshold, config.top_k)
        except cv2.error as exc:
            raise DetectorError(f"OpenCV could not load the YuNet model {path}: {exc.err or exc}") from None
        self._input_size: tuple[int, int] = (320, 320)

    def detect(self, image: np.ndarray) -> list[Box]:
        """Faces in a BGR (or grey) frame, largest first, in the frame's own pixel coordinates."""
        cfg = self.config
        if image.ndim == 2 or image.shape[2] == 1:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        elif image.shape[2] == 4:
            image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
        h, w = image.shape[:2]
        low, high = face_size_limits(image.shape, cfg.min_face, cfg.max_face, cfg.min_face_ratio,
                                     cfg.max_face_ratio)
        # YuNet's smallest anchors are about 10 pixels; keep the smallest admitted face above that.
        scale = detect_scale(w, cfg.detect_width, low, 10)
        small = shrink(image, scale)
        size = (small.shape[1], small.shape[0])
        if size != self._input_size:
            self._net.setInputSize(size)
            self._input_size = size
        _, found = self._net.detect(small)
        boxes = []
        for row in np.asarray(found if found is not None else [], np.float32).reshape(-1, 15):
            box = Box(*(int(round(v / scale)) for v in row[:4])).clipped(w, h)
            if box.w > 0 and box.h > 0 and low <= max(box.w, box.h) and min(box.w, box.h) <= high:
                boxes.append(box)
        return sorted(boxes, key=lambda b: b.w * b.h, reverse=True)


DetectorConfig = Union[HaarConfig, YuNetConfig]


def create_detector(config: DetectorConfig, tracking: "TrackConfig | None" = None) -> Detector:
    """The detector a config describes; with ``tracking.detect_every`` > 1 it runs every N-th frame only
    and the faces it found are tracked in between (see :mod:`.tracking`)."""
    base: Detector = YuNetDetector(config) if isinstance(config, YuNetConfig) else HaarDetector(config)
    if tracking is None or tracking.detect_every == 1:
        return base
    from .tracking import TrackingDetector

    return TrackingDetector(base, tracking)
