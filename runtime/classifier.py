"""Emotion classification of face crops with any backend, configured by the artifact's manifest."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np

from .backends import BACKEND_NAMES, Backend, create_backend, get_backend
from .formats import format_for_path
from .limits import check_threads
from .manifest import Manifest, ModelError
from .preprocess import preprocess_faces

_MODELS_DIR = Path(__file__).resolve().parent / "models"


#: The tighter view the runtime adds by default: the central 90 % of each face (docs/runtime.md, "Test-time views").
DEFAULT_ZOOM = 0.9


def check_zoom(zoom: float | None) -> None:
    """Refuse a tighter view that is no tighter, or keeps less than half of the face."""
    if zoom is not None and not (isinstance(zoom, (int, float)) and 0.5 <= zoom < 1.0):
        raise ValueError(f"zoom must be in [0.5, 1): the share of the face's width and height the tighter view "
                         f"keeps (e.g. 0.9), or None for no tighter view; got {zoom!r}")


def views_name(flip: bool, zoom: float | None) -> str:
    """``one``, ``flip``, ``zoom`` or ``flip+zoom``: a view setting, as manifests key their temperatures."""
    return "+".join(["flip"] * bool(flip) + ["zoom"] * (zoom is not None)) or "one"


def zoomed(batch: np.ndarray, zoom: float) -> np.ndarray:
    """The central ``zoom`` of each preprocessed face (NHWC), magnified back to the model's input size.

    Cut from the preprocessed face rather than from the crop: every face, whatever its size, is cut
    alike at the model's resolution (bilinear; the border never shows at zoom < 1), and on the shipped
    model this scored higher than cutting the crop before resizing (docs/training.md, "Test-time views").
    """
    n, h, w, c = batch.shape
    cx, cy = (w - 1) / 2, (h - 1) / 2
    m = np.array([[1 / zoom, 0, cx - cx / zoom], [0, 1 / zoom, cy - cy / zoom]], np.float32)
    # cv2 maps output pixels back through the inverse of m: a magnification by 1/zoom about the centre.
    out = [cv2.warpAffine(face, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
           for face in batch]
    return np.stack(out).reshape(n, h, w, c) if out else batch.copy()


def default_model(backend: str | None = None) -> Path:
    """The shipped default artifact for ``backend`` (first one installed when ``None``)."""
    candidates = [backend] if backend else [*(n for n in BACKEND_NAMES if backend_installed(n)), "litert"]
    for name in candidates:
        for suffix in get_backend(name).suffixes:
            found = sorted(_MODELS_DIR.glob(f"default*{suffix}"))
            if found:
                return found[0]
    raise ModelError(
        f"no shipped default model for backend {candidates[0]!r} in {_MODELS_DIR}; pass --model PATH"
    )


def backend_installed(name: str) -> bool:
    """Whether the vendor library of a backend can be imported (without importing it)."""
    return get_backend(name).installed()


def installed_defaults() -> dict[str, Path]:
    """Backend name -> its shipped default model, for every backend installed here that has one."""
    found = {}
    for name in BACKEND_NAMES:
        if backend_installed(name):
            try:
                found[name] = default_model(name)
            except ModelError:
                continue
    return found


@dataclass
class Classification:
    """Scores for a batch of faces and how long each step took."""

    scores: np.ndarray  # (N, K) float32, order = labels
    preprocess_ms: float
    infer_ms: float


class EmotionClassifier:
    """Loads and verifies an artifact once; classifies batches of face crops."""

    def __init__(self, model: str | Path | None = None, backend: str | None = None, threads: int | None = None,
                 providers: list[str] | None = None, flip: bool = False, zoom: float | None = None):
        """``providers``: onnxruntime execution providers for the ``onnx`` backend (default: the best it has).

        ``flip``: test-time flip, each face also classified mirrored (one batch of 2N) and the
        two score rows averaged; twice the inference work.
        ``zoom``: a tighter view, each face also classified cut to its central ``zoom`` of width and
        height (e.g. 0.9) and magnified back, the score rows averaged; with ``flip`` the tighter view
        is mirrored too (four views a face, one batch). ``None``: no tighter view.
        """
        check_zoom(zoom)
        if backend is not None:
            get_backend(backend)  # an unknown name is an error listing the valid ones
        check_threads(threads)  # before a backend sees it: LiteRT segfaults on threads=100000
        path = Path(model) if model else default_model(backend)
        try:
            fmt = format_for_path(path)
        except ValueError as exc:
            raise ModelError(str(exc)) from None
        name = backend or fmt.backend
        if name != fmt.backend:
            raise ModelError(f"backend {name!r} cannot run {path} ({fmt.name}); use --backend {fmt.backend}")
        self.path = path
        self.manifest = Manifest.load(path)
        self.backend: Backend = create_backend(name, providers)
        self.backend.load(path, self.manifest, threads)
        self.labels: list[str] = list(self.manifest.labels)
        self.spec = self.manifest.input
        self.flip = bool(flip)
        self.zoom = zoom
        self.views = views_name(self.flip, zoom)  # which temperature of the manifest its scores take

    def classify(self, faces: Sequence[np.ndarray] | np.ndarray) -> Classification:
        """Preprocess face crops (any size, grey or BGR) and run them as one batch."""
        t0 = time.perf_counter()
        batch = preprocess_faces(faces, self.spec)
        t1 = time.perf_counter()
        if not len(batch):
            scores = np.zeros((0, len(self.labels)), np.float32)
        else:
            views = [batch] if self.zoom is None else [batch, zoomed(batch, self.zoom)]
            views += [v[:, :, ::-1] for v in views] if self.flip else []
            # One backend call for all views: the faces of each view, one view after another.
            rows = self.backend.infer(np.concatenate(views) if len(views) > 1 else batch)
            scores = rows.reshape(len(views), len(batch), -1).mean(axis=0, dtype=np.float32)
        t2 = time.perf_counter()
        return Classification(scores, (t1 - t0) * 1e3, (t2 - t1) * 1e3)

    def predict_dataset(self, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
        """Scores for an (N, H, W) uint8 array of already cropped faces."""
        chunks = [self.classify(images[i : i + batch_size]).scores for i in range(0, len(images), batch_size)]
        return np.concatenate(chunks) if chunks else np.zeros((0, len(self.labels)), np.float32)

    def predict_dataset_both(self, images: np.ndarray, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
        """Scores without and with test-time flip for (N, H, W) uint8 faces, whatever ``flip`` and ``zoom`` are.

        One pass over the faces and their mirror images: the plain scores are the first half of
        the flip mode's batch, so scoring both ways costs what the flip mode alone costs.
        """
        plain, flipped = [], []
        for i in range(0, len(images), batch_size):
            one, two = self._infer_with_mirror(preprocess_faces(images[i : i + batch_size], self.spec))
            plain.append(one)
            flipped.append(two)
        if not plain:
            empty = np.zeros((0, len(self.labels)), np.float32)
            return empty, empty.copy()
        return np.concatenate(plain), np.concatenate(flipped)

    def _infer_with_mirror(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A preprocessed NHWC batch and its mirror images as one batch of 2N: (plain, flip-averaged) scores."""
        both = self.backend.infer(np.concatenate([batch, batch[:, :, ::-1]]))
        return both[: len(batch)], (both[: len(batch)] + both[len(batch):]) * np.float32(0.5)

    def backend_info(self) -> dict[str, Any]:
        """What runs the model (backend, library, execution providers, ...), JSON-ready."""
        return self.backend.info()

    def close(self) -> None:
        self.backend.close()
