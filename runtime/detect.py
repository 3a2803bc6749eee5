"""Face detectors behind one interface: OpenCV's Haar cascade (default) and YuNet.

The resolution rule: a frame is shrunk until the smallest face worth finding
is the detector's comfortable size (``target``: the Haar cascade's 24-pixel window,
``HaarConfig.min_face_windows`` windows; 24 pixels for YuNet), and no further; boxes are
mapped back to frame pixels. The smallest and largest
face are given in pixels and as a fraction of the frame's shorter side, so one
configuration fits a 320x240 camera and a 1080p stream. Stream frames use the
limits of :class:`HaarConfig` / :class:`YuNetConfig`; still images use
:class:`~.stills.StillConfig` (a pixel minimum, so small faces of a large photo
are kept, and a padded second look for tightly cropped faces). See
``docs/detection.md``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Sequence, Union, runtime_checkable

import cv2
import numpy as np

from .errors import EdgeferError

DEFAULT_CASCADE = "haarcascade_frontalface_default.xml"
# The second opinion on each face the cascade finds: OpenCV's other frontal-face cascade, trained apart, so the
# first one's false boxes (clothes, patterns) are rarely its false boxes too.
VERIFY_CASCADE = "haarcascade_frontalface_alt.xml"
# The Haar defaults, chosen on the development set of benchmarks/detect_dev.py (KDEF portraits on natural
# photographs, scikit-image's photos of people; never the test media) as the fastest setting that finds as many
# faces as fer's call (1.1 / 5 on the full frame) with no more false boxes and none on the photos of people: the
# smallest face at the bare 24-pixel window, a 1.25 pyramid step, 1 neighbour, and each face confirmed by a second
# cascade (VERIFY_CASCADE). Without the confirmation the cheap settings put a box on the astronaut's mission patch
# (the picture of `make demo`); see benchmarks/results/detect-dev.json and docs/detection.md.
SCALE_FACTOR = 1.25
MIN_NEIGHBORS = 1
MIN_FACE_WINDOWS = 1.0
VERIFY = True
YUNET_FILE = "face_detection_yunet_2023mar.onnx"
YUNET_URL = "https://github.com/opencv/opencv_zoo/tree/main/models/face_detection_yunet"

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

    On stream frames a face counts when its side is at least ``max(min_face,
    min_face_ratio * short side)`` and at most ``min(max_face, max_face_ratio * short
    side)``. ``detect_width``: ``None`` (default) shrinks the frame until that smallest
    face is ``min_face_windows`` times the cascade's 24-pixel window; ``N`` shrinks to at
    most N pixels wide but never further than that; ``0`` detects on the frame as it is.
    ``verify``: each face found must also be found by a second cascade
    (``verify_cascade``, default OpenCV's ``haarcascade_frontalface_alt.xml``) around its
    box. The defaults (bare window, ``scale_factor`` 1.25, ``min_neighbors`` 1, verified)
    were chosen on the development set of ``benchmarks/detect_dev.py``
    (``benchmarks/results/detect-dev.json``): they find as many faces as fer's (and the
    research's) 1.1 / 5 on the full frame, with a quarter of the false boxes, at a third
    of the cost. ``min_face_windows=1.5, scale_factor=1.1, min_neighbors=5, verify=False`` is the
    previous, slower default.
    """

    scale_factor: float = SCALE_FACTOR
    min_neighbors: int = MIN_NEIGHBORS
    min_face: int = 24
    max_face: int | None = None
    detect_width: int | None = None
    cascade: str | None = None
    min_face_ratio: float = 0.1  # 48 pixels on a 640x480 frame, 72 on 1280x720
    max_face_ratio: float = 1.0
    min_face_windows: float = MIN_FACE_WINDOWS
    verify: bool = VERIFY
    verify_cascade: str | None = None  # None: OpenCV's haarcascade_frontalface_alt.xml


@dataclass(frozen=True)
class YuNetConfig:
    """YuNet (``cv2.FaceDetectorYN``) parameters.

    ``model`` is the ONNX file; empty means the first of ``$EDGEFER_YUNET``,
    ``~/.cache/edgefer/face_detection_yunet_2023mar.onnx`` that exists (:func:`find_yunet_model`).
    Size limits as in :class:`HaarConfig`; the smallest face is shrunk to 24 pixels at most.
    """

    model: str = ""
    score_threshold: float = 0.7
    nms_threshold: float = 0.3
    top_k: int = 50
    min_face: int = 16
    max_face: int | None = None
    detect_width: int | None = 320
    min_face_ratio: float = 0.1
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


def yunet_search_paths() -> list[Path]:
    """Where :func:`find_yunet_model` looks, in order, when no path is given."""
    paths = []
    env = os.environ.get("EDGEFER_YUNET")
    if env:
        paths.append(Path(env).expanduser())
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    paths.append(cache / "edgefer" / YUNET_FILE)
    return paths


def find_yunet_model(path: str | os.PathLike | None = None) -> Path:
    """The YuNet ONNX file: ``path`` if given, else ``$EDGEFER_YUNET``, else
    ``$XDG_CACHE_HOME/edgefer/`` (``~/.cache/edgefer/``) + ``face_detection_yunet_2023mar.onnx``."""
    if path:
        p = Path(path).expanduser()
        if not p.is_file():
            raise DetectorError(f"YuNet model {p} does not exist; download {YUNET_FILE} from {YUNET_URL} "
                                "and pass its path")
        return p
    tried = yunet_search_paths()
    for p in tried:
        if p.is_file():
            return p
    raise DetectorError(
        f"YuNet needs its model file {YUNET_FILE} (OpenCV model zoo, {YUNET_URL}); none found in: "
        f"{', '.join(map(str, tried))}. Put it at {tried[-1]}, set EDGEFER_YUNET=/path/to/{YUNET_FILE}, "
        "or pass its path (--yunet-model, detector.yunet_model in serve's config)"
    )


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
    """How far to shrink a frame so that a face of ``min_side`` pixels becomes ``window`` pixels (the target).

    ``detect_width`` N > 0 shrinks to at most N pixels wide but never further than that; 0: never shrink.
    """
    if detect_width == 0:
        return 1.0
    rule = min(1.0, window / min_side) if min_side > 0 else 1.0
    if detect_width:
        return min(1.0, max(detect_width / width, rule))
    return rule


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
    if detect_width is not None and detect_width != 0 and detect_width < 32:
        raise ValueError(f"detect_width must be at least 32 pixels (None: automatic, 0: never shrink), "
                         f"got {detect_width}")


class _StreamRule:
    """The stream rule both detectors share: the admitted face sizes set the scale a frame is searched at."""

    config: "HaarConfig | YuNetConfig"
    target: int  # the detector's window: the smallest admitted face is shrunk to this many pixels

    def detect(self, image: np.ndarray) -> list[Box]:
        """Faces in a stream frame (BGR or grey; ``needs_colour``), largest first, in the frame's own pixels."""
        cfg = self.config
        low, high = face_size_limits(image.shape, cfg.min_face, cfg.max_face, cfg.min_face_ratio,
                                     cfg.max_face_ratio)
        return self.find(image, detect_scale(image.shape[1], cfg.detect_width, low, self.target), low, high)

    def find(self, image: np.ndarray, scale: float, low: float, high: float) -> list[Box]:
        raise NotImplementedError


class HaarDetector(_StreamRule):
    """Finds frontal faces in grey frames; the cascade is loaded once at construction."""

    needs_colour = False
    config: HaarConfig

    def __init__(self, config: HaarConfig = HaarConfig()):
        if config.scale_factor <= 1.0:
            raise ValueError(f"scale_factor must be > 1.0, got {config.scale_factor}")
        if not 1.0 <= config.min_face_windows <= 4.0:
            raise ValueError(f"min_face_windows must be in [1, 4] (cascade windows), got {config.min_face_windows}")
        _check_limits(config.min_face, config.max_face, config.min_face_ratio, config.max_face_ratio,
                      config.detect_width)
        self.config = config
        self.cascade_path = find_haar_cascade(config.cascade)
        if not hasattr(cv2, "CascadeClassifier"):
            raise DetectorError("this OpenCV build has no CascadeClassifier (OpenCV 5 removed it); install opencv<5")
        self._cascade = cv2.CascadeClassifier(str(self.cascade_path))
        if self._cascade.empty():
            raise DetectorError(f"OpenCV could not load the Haar cascade {self.cascade_path}")
        #: The smallest face side (pixels of the image it runs on) the cascade can find.
        self.window = max(self._cascade.getOriginalWindowSize())
        #: The side the smallest admitted face is shrunk to (``min_face_windows`` cascade windows).
        self.target = max(self.window, round(config.min_face_windows * self.window))
        #: The side the smallest face of a still image's padded second look is shrunk to: the bare window.
        #: Searching from a larger minimum only costs time (OpenCV's pyramid still computes the scales below
        #: ``minSize``: 3.2 ms for a 192x160 image searched from 48 pixels, 0.7 ms for the same image halved and
        #: searched from 24), and the development crops were measured this way (benchmarks/detect_dev.py).
        self.padded_target = self.window
        self._verifier = None
        if config.verify:
            path = find_haar_cascade(config.verify_cascade, VERIFY_CASCADE)
            self._verifier = cv2.CascadeClassifier(str(path))
            if self._verifier.empty():
                raise DetectorError(f"OpenCV could not load the Haar cascade {path} (verify_cascade)")

    def find(self, grey: np.ndarray, scale: float, low: float, high: float) -> list[Box]:
        """Faces of side ``low``..``high`` (frame pixels), detected on the frame shrunk by ``scale``."""
        cfg = self.config
        if grey.ndim == 3:
            grey = cv2.cvtColor(grey, cv2.COLOR_BGR2GRAY)
        small = shrink(grey, scale)
        scale = small.shape[1] / grey.shape[1]
        min_side = max(self.window, round(low * scale))
        max_side = round(high * scale) if high != float("inf") else 0
        if min(small.shape[:2]) < min_side or (max_side and max_side < min_side):
            return []
        found = self._cascade.detectMultiScale(
            small, scaleFactor=cfg.scale_factor, minNeighbors=cfg.min_neighbors,
            minSize=(min_side, min_side), maxSize=(max_side, max_side) if max_side else (0, 0),
        )
        boxes = [Box(*(int(round(v / scale)) for v in b)) for b in np.asarray(found).reshape(-1, 4)]
        if self._verifier is not None:
            boxes = [b for b in boxes if confirmed(self._verifier, grey, b)]
        return drop_nested(boxes)


# How a face box is confirmed (chosen with the defaults on benchmarks/detect_dev.py's development set): the box
# and 30 % of its side around it, resized so the box is VERIFY_SIDE pixels, must hold one hit of the verifying
# cascade between 0.7 and 1.4 times the box, searched in steps of VERIFY_STEP.
VERIFY_SIDE, VERIFY_MARGIN, VERIFY_STEP = 40, 0.3, 1.05


def confirmed(verifier: "cv2.CascadeClassifier", grey: np.ndarray, box: Box, side: int = VERIFY_SIDE,
              step: float = VERIFY_STEP) -> bool:
    """Whether ``verifier`` also finds a face at ``box`` of the grey frame (a second, independent cascade).

    The answer is that of one ``detectMultiScale(patch, step, 1, minSize, maxSize)`` call, found level by
    level from the box's own size outwards and stopped at the first group of two hits: a real face is
    settled in a level or two (0.7 ms a face on woman2.mp4's frames, 2 cores) instead of all fifteen (3.8 ms).
    """
    height, width = grey.shape[:2]
    margin = round(VERIFY_MARGIN * box.w)
    region = Box(box.x - margin, box.y - margin, box.w + 2 * margin, box.h + 2 * margin).clipped(width, height)
    patch = region.crop(grey)
    if patch.size == 0:
        return False
    r = side / box.w
    low, high = round(0.7 * side), round(1.4 * side) + 1
    if min(round(patch.shape[0] * r), round(patch.shape[1] * r)) < low:
        return False  # a box mostly outside the frame: too little of it left to hold a face
    patch = cv2.resize(patch, None, fx=r, fy=r, interpolation=cv2.INTER_AREA if r < 1 else cv2.INTER_LINEAR)
    hits: list[Sequence[int]] = []
    for size in verify_levels(verifier, patch.shape, step, low, high, side):
        # minNeighbors 0: the level's raw windows; grouped below as detectMultiScale's minNeighbors=1 would.
        found = verifier.detectMultiScale(patch, step, 0, minSize=(size, size), maxSize=(size, size))
        hits.extend(np.asarray(found).reshape(-1, 4).tolist())
        # Adding windows only merges groups, so a group of two stays one: stopping here gives the same answer.
        if len(hits) > 1 and len(cv2.groupRectangles(hits, 1, GROUP_EPS)[0]):
            return True
    return False


GROUP_EPS = 0.2  # OpenCV's detectMultiScale groups its windows with this eps


def verify_levels(verifier: "cv2.CascadeClassifier", shape: tuple[int, ...], step: float, low: int, high: int,
                  side: int) -> list[int]:
    """The window sides ``detectMultiScale`` searches on an image of ``shape`` from ``low`` to ``high``, in
    steps of ``step``, ordered by their distance from ``side`` (the box's own size first)."""
    win_w, win_h = verifier.getOriginalWindowSize()
    sizes: list[int] = []
    factor = 1.0
    while True:  # OpenCV's own scale loop (cascadedetect.cpp), so each level is one of its levels
        w, h = round(win_w * factor), round(win_h * factor)
        if w > high or h > high or w > shape[1] or h > shape[0]:
            break
        if w >= low and h >= low and w not in sizes:
            sizes.append(w)
        factor *= step
    return sorted(sizes, key=lambda w: abs(np.log(w / side)))


def drop_nested(boxes: list[Box]) -> list[Box]:
    """``boxes`` largest first, without any box whose centre lies inside a larger one.

    A face holds no other face, but its lower half (nose and mouth) sometimes passes both cascades as a small
    face of its own: that box would give one person two events.
    """
    kept: list[Box] = []
    for box in sorted(boxes, key=lambda b: b.w * b.h, reverse=True):
        cx, cy = box.x + box.w / 2, box.y + box.h / 2
        if not any(k.x <= cx <= k.x + k.w and k.y <= cy <= k.y + k.h for k in kept):
            kept.append(box)
    return kept


class YuNetDetector(_StreamRule):
    """OpenCV's YuNet CNN face detector (``cv2.FaceDetectorYN``) on a downscaled BGR frame."""

    needs_colour = True
    config: YuNetConfig

    #: YuNet finds faces down to about 10 pixels; the smallest admitted face is shrunk to 24, where its recall holds.
    window = 10
    target = 24
    #: A face that fills a still image is found on the padded image at twice the target, not at the target.
    padded_target = 48

    def __init__(self, config: YuNetConfig = YuNetConfig()):
        _check_limits(config.min_face, config.max_face, config.min_face_ratio, config.max_face_ratio,
                      config.detect_width)
        if not 0.0 < config.score_threshold < 1.0:
            raise ValueError(f"score_threshold must be in (0, 1), got {config.score_threshold}")
        path = find_yunet_model(config.model or None)
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

    def find(self, image: np.ndarray, scale: float, low: float, high: float) -> list[Box]:
        """Faces of side ``low``..``high`` (frame pixels), detected on the frame shrunk by ``scale``."""
        if image.ndim == 2 or image.shape[2] == 1:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        elif image.shape[2] == 4:
            image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
        h, w = image.shape[:2]
        small = shrink(image, scale)
        scale = small.shape[1] / w
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


#: What :func:`edgefer.runtime.detectors.create_detector` takes: one of the detectors' configurations.
DetectorConfig = Union[HaarConfig, YuNetConfig]


DETECTOR_KINDS = ("haar", "yunet")


def config_for(kind: str | DetectorConfig = "haar", yunet_model: str | os.PathLike | None = None
                    ) -> DetectorConfig:
    """A detector configuration from its name (``"haar"`` or ``"yunet"``) with the defaults, or ``kind`` itself."""
    if isinstance(kind, (HaarConfig, YuNetConfig)):
        return kind
    if kind == "haar":
        return HaarConfig()
    if kind == "yunet":
        return YuNetConfig(str(yunet_model) if yunet_model else "")
    raise ValueError(f"unknown face detector {kind!r}; choose one of {', '.join(DETECTOR_KINDS)}")


def create_engine(config: str | DetectorConfig = "haar") -> "HaarDetector | YuNetDetector":
    """The bare detector (no tracking, stream rule), e.g. to set up for an input later with :func:`for_input`."""
    config = config_for(config)
    return YuNetDetector(config) if isinstance(config, YuNetConfig) else HaarDetector(config)
