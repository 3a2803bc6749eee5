"""The one public API: ``EmotionRecognizer`` finds faces in an image and says which emotion each shows.

>>> from edgefer import EmotionRecognizer
>>> with EmotionRecognizer() as fer:
...     for face in fer.detect("photo.jpg"):
...         print(face.box, face.label, round(face.probability, 2))

The CLI (``edgefer detect``, ``eval``) and the kiosk service (``edgefer serve``) are built
on it; JSON appears only where they write their output (:meth:`Face.to_dict`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence, Union

import cv2
import numpy as np

from .classifier import DEFAULT_ZOOM, EmotionClassifier, check_zoom
from .detect import Box, Detector, DetectorError, HaarConfig, YuNetConfig, config_for, create_engine
from .detectors import for_input
from .images import read_image
from .errors import ImageError
from .preprocess import to_grey
from .probabilities import ProbabilityMap

if TYPE_CHECKING:
    from .manifest import Manifest
    from .stills import StillConfig
    from .tracking import TrackConfig

DetectorSpec = Union[str, HaarConfig, YuNetConfig, Detector, None]


@dataclass(frozen=True)
class Face:
    """One face and its emotion.

    ``box`` is ``(x, y, width, height)`` in pixels of the image given; ``label`` the most
    probable emotion; ``probabilities`` maps every label to its calibrated probability (they
    sum to 1); ``scores`` are the model's raw outputs for the same labels (SVM margins or
    softmax outputs, see :attr:`EmotionRecognizer.scores_kind`), for those who need them.
    """

    box: tuple[int, int, int, int]
    label: str
    probabilities: dict[str, float]
    scores: dict[str, float]

    @property
    def probability(self) -> float:
        """The probability of :attr:`label`."""
        return self.probabilities[self.label]

    def __repr__(self) -> str:
        return f"Face(box={self.box}, label={self.label!r}, probability={self.probability:.2f})"

    def to_dict(self, digits: int = 4) -> dict[str, Any]:
        """A JSON-ready dict: ``box``, ``label``, ``probability``, ``probabilities``, ``scores``."""
        return {
            "box": list(self.box),
            "label": self.label,
            "probability": round(self.probability, digits),
            "probabilities": {k: round(v, digits) for k, v in self.probabilities.items()},
            "scores": {k: round(v, digits) for k, v in self.scores.items()},
        }


@dataclass
class Analysis:
    """The faces of one image and how long each step took (for the CLI's and service's timings)."""

    faces: list[Face]
    size: tuple[int, int]  # width, height
    timings_ms: dict[str, float] = field(default_factory=dict)


def _detector(spec: DetectorSpec, yunet_model: str | Path | None) -> HaarConfig | YuNetConfig | Detector | None:
    """The detector configuration (or ready detector) a ``detector=`` argument names."""
    if spec is None:
        return None
    if isinstance(spec, (HaarConfig, YuNetConfig)) or (not isinstance(spec, str) and hasattr(spec, "detect")):
        return spec
    if spec in ("haar", "yunet"):
        # yunet without a path: $EDGEFER_YUNET, then ~/.cache/edgefer/ (find_yunet_model says where to put it)
        return config_for(spec, yunet_model)
    raise DetectorError(f"unknown detector {spec!r}: use 'haar', 'yunet', a HaarConfig/YuNetConfig or a detector "
                        "object with a detect(image) method")


def load_image(image: np.ndarray | str | Path) -> np.ndarray:
    """A BGR (or grey) uint8 array from an array or an image file; :class:`ImageError` otherwise."""
    if isinstance(image, (str, Path)):
        path = Path(image)
        if not path.is_file():
            raise ImageError(f"image file {path} does not exist; pass the path of a JPEG/PNG or a BGR numpy array")
        # Size from the header before decoding (a small file can hold a huge image), truncation refused.
        return read_image(path)
    if not isinstance(image, np.ndarray):
        hint = (" (a PIL image: pass cv2.cvtColor(np.asarray(img), cv2.COLOR_RGB2BGR))"
                if type(image).__module__.startswith("PIL") else "")
        raise ImageError(f"expected a BGR numpy array or an image path, got {type(image).__name__}{hint}")
    return check_image(image)


def check_image(image: np.ndarray, what: str = "image") -> np.ndarray:
    """``image`` if it is a non-empty uint8 grey/BGR/BGRA array; :class:`ImageError` saying what is wrong otherwise."""
    if image.size == 0 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3, 4)):
        raise ImageError(f"{what} has shape {image.shape}; expected H x W (grey) or H x W x 3 (BGR) pixels")
    if image.dtype != np.uint8:
        raise ImageError(f"{what} has dtype {image.dtype}; expected uint8 pixels 0-255 "
                         "(e.g. (img * 255).clip(0, 255).astype(np.uint8) for floats in 0-1)")
    return image


class EmotionRecognizer:
    """Finds faces and classifies their emotion; the model and the detector are loaded once, here.

    ``model``: an artifact (``.tflite``, ``.onnx``, ``.engine``) with its manifest beside it;
    ``None`` takes the shipped model for ``backend``. ``backend``: ``litert``, ``onnx`` or
    ``tensorrt``; ``None`` takes the first one installed that can run the model.
    ``detector``: ``"haar"`` (OpenCV's cascade, default), ``"yunet"`` (OpenCV's CNN detector; its
    model file is ``yunet_model``, else ``$EDGEFER_YUNET``, else
    ``~/.cache/edgefer/face_detection_yunet_2023mar.onnx``), a ``HaarConfig``/``YuNetConfig``, any
    object with a ``detect(image) -> list[Box]`` method, or ``None`` to only :meth:`classify` crops.
    ``threads``: inference threads (backend default when ``None``).
    Images given to :meth:`detect` are still images: each is detected on its own at the resolution
    its smallest face needs, with a padded second look for a face that fills the image (``still``,
    a :class:`~edgefer.runtime.stills.StillConfig`; docs/detection.md). ``tracking``: for video
    streams (:meth:`analyse` with ``still=False``), detect every N frames and follow the faces in
    between (see :class:`~edgefer.runtime.tracking.TrackConfig`).
    ``flip``: test-time flip, each face classified together with its mirror image and the two
    scores averaged (more accurate, for a second inference per face; what it gains and costs for the
    shipped model: docs/training.md, "Test-time views"); ``False`` classifies each face once.
    ``zoom``: the tighter view, each face also classified cut to its central ``zoom`` of width and
    height (default 0.9) and the scores averaged (with ``flip``: four views, one batch; docs/runtime.md,
    "Test-time views"); ``None`` adds no tighter view.
    ``providers``: for the ``onnx`` backend, onnxruntime execution providers in order (short names
    ``tensorrt``, ``cuda``, ``cpu`` or full ones); ``None`` takes TensorRT, then CUDA where the
    installed onnxruntime has them, then CPU (:attr:`backend_info` says which were used).

    Raises :class:`~edgefer.ModelError`, :class:`~edgefer.BackendUnavailable` or
    :class:`~edgefer.DetectorError` when the model, backend or detector cannot be set up.
    """

    def __init__(
        self,
        model: str | Path | None = None,
        backend: str | None = None,
        detector: DetectorSpec = "haar",
        *,
        threads: int | None = None,
        yunet_model: str | Path | None = None,
        tracking: TrackConfig | None = None,
        providers: Sequence[str] | None = None,
        still: StillConfig | None = None,
        flip: bool = True,
        zoom: float | None = DEFAULT_ZOOM,
    ):
        check_zoom(zoom)
        spec = _detector(detector, yunet_model)  # a bad detector name fails before the model loads
        self._classifier = EmotionClassifier(model, backend, threads, list(providers) if providers else None,
                                             flip=flip, zoom=zoom)
        self._owns_classifier = True
        try:
            self._detector: Detector | None
            self._still_detector: Detector | None
            if isinstance(spec, (HaarConfig, YuNetConfig)):
                from .stills import StillConfig

                engine = create_engine(spec)  # one detector (one cascade or network) for both kinds of input
                self._detector = for_input(engine, tracking)
                self._still_detector = for_input(engine, still=still or StillConfig())
            else:
                self._detector = self._still_detector = spec
        except BaseException:
            self._classifier.close()
            raise
        self._probabilities: ProbabilityMap | None = ProbabilityMap(self._classifier.manifest,
                                                                    str(self._classifier.path),
                                                                    self._classifier.views)

    @classmethod
    def from_parts(cls, detector: Detector, classifier: EmotionClassifier) -> "EmotionRecognizer":
        """A recognizer over a detector and classifier made elsewhere (benchmarks); ``close`` leaves them open."""
        self = cls.__new__(cls)
        self._classifier = classifier
        self._owns_classifier = False
        self._detector = self._still_detector = detector
        manifest = getattr(classifier, "manifest", None)
        self._probabilities = ProbabilityMap(manifest, str(getattr(classifier, "path", "model")),
                                             getattr(classifier, "views", None)) if manifest else None
        return self

    # -- what was loaded -----------------------------------------------------------------------------------

    @property
    def labels(self) -> list[str]:
        """The emotion labels, in the model's output order."""
        return list(self._classifier.labels)

    @property
    def model_path(self) -> Path:
        return Path(self._classifier.path)

    @property
    def backend(self) -> str:
        """The inference backend's name (``litert``, ``onnx``, ``tensorrt``)."""
        return str(self._classifier.backend.name)

    @property
    def backend_info(self) -> dict[str, Any]:
        """What runs the model: backend, library and, for ``onnx``, the execution providers in use."""
        return self._classifier.backend_info()

    @property
    def manifest(self) -> Manifest:
        """The model's manifest: labels, input spec, head, calibration, provenance."""
        return self._classifier.manifest

    @property
    def scores_kind(self) -> str:
        """What :attr:`Face.scores` are: ``svm_margins`` or ``softmax_outputs`` (probabilities are calibrated)."""
        return self._probabilities.scores_kind if self._probabilities else "scores"

    @property
    def calibrated(self) -> bool:
        """Whether the model's manifest carries a fitted temperature (else probabilities are a plain softmax)."""
        return bool(self._probabilities and self._probabilities.calibrated)

    @property
    def detector(self) -> Detector | None:
        return self._detector

    # -- work ----------------------------------------------------------------------------------------------

    def detect(self, image: np.ndarray | str | Path) -> list[Face]:
        """The faces in a still BGR image (numpy array as OpenCV reads it, or an image path), largest first.

        Raises :class:`~edgefer.ImageError` for a missing, unreadable or malformed image.
        """
        return self.analyse(load_image(image), still=True).faces

    def classify(self, crops: Sequence[np.ndarray] | np.ndarray) -> list[Face]:
        """Classify face crops you cut yourself: one crop (H x W or H x W x 3 array) or a sequence of them.

        Each crop is treated as one face; its ``box`` covers the whole crop.
        """
        if isinstance(crops, np.ndarray):
            single = crops.ndim == 2 or (crops.ndim == 3 and crops.shape[2] in (1, 3, 4))
            crops = [crops] if single else list(crops)
        crops = [check_image(c, f"crop {i}") if isinstance(c, np.ndarray) else load_image(c)
                 for i, c in enumerate(crops)]
        result = self._classifier.classify(crops)
        boxes = [Box(0, 0, int(c.shape[1]), int(c.shape[0])) for c in crops]
        return self._faces(boxes, result.scores)

    def analyse(self, image: np.ndarray, still: bool = False) -> Analysis:
        """The faces of a stream frame (``still``: of a still image, as :meth:`detect`), with per-step timings
        (for the CLI and the service)."""
        check_image(image)
        detector = self._still_detector if still else self._detector
        if detector is None:
            raise DetectorError("this EmotionRecognizer was made with detector=None: it can only classify() crops")
        t0 = time.perf_counter()
        grey = to_grey(image)
        colour = getattr(detector, "needs_colour", False) and image.ndim == 3
        boxes = detector.detect(image if colour else grey)
        detect_ms = (time.perf_counter() - t0) * 1e3
        faces: list[Face] = []
        preprocess_ms = infer_ms = 0.0
        if boxes:
            # All faces of the image go to the backend as one batch.
            result = self._classifier.classify([b.crop(grey) for b in boxes])
            faces = self._faces(boxes, result.scores)
            preprocess_ms, infer_ms = result.preprocess_ms, result.infer_ms
        return Analysis(faces, (int(image.shape[1]), int(image.shape[0])),
                        {"detect": detect_ms, "preprocess": preprocess_ms, "infer": infer_ms})

    def reset(self) -> None:
        """Forget the faces being followed (``tracking``): call it when a new, unrelated stream starts."""
        reset = getattr(self._detector, "reset", None)
        if reset is not None:
            reset()

    def _faces(self, boxes: Sequence[Box], scores: np.ndarray) -> list[Face]:
        labels = self.labels
        probs = self._probabilities(scores) if self._probabilities else scores
        faces = []
        for box, raw, p in zip(boxes, scores, probs):
            top = int(np.argmax(p))
            faces.append(Face(
                box=(int(box.x), int(box.y), int(box.w), int(box.h)),
                label=labels[top],
                probabilities={name: float(v) for name, v in zip(labels, p)},
                scores={name: float(v) for name, v in zip(labels, raw)},
            ))
        return faces

    # -- lifetime ------------------------------------------------------------------------------------------

    def close(self) -> None:
        """Release the backend (the recognizer cannot be used afterwards)."""
        if self._owns_classifier:
            self._classifier.close()

    def __enter__(self) -> "EmotionRecognizer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"EmotionRecognizer(model={str(self._classifier.path)!r}, backend={self.backend!r}, "
                f"detector={type(self._detector).__name__ if self._detector else None})")
