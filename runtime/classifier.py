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
#: A tighter view keeps at least this share of the face (and less than all of it): the CLI, the service
#: configuration and :func:`check_zoom` all take their range from here.
MIN_ZOOM = 0.5


def zoom_ok(zoom: float) -> bool:
    """Whether ``zoom`` is a tighter view's share of the face: in [``MIN_ZOOM``, 1)."""
    return isinstance(zoom, (int, float)) and MIN_ZOOM <= zoom < 1.0


def check_zoom(zoom: float | None) -> None:
    """Refuse a tighter view that is no tighter, or keeps less than half of the face."""
    if zoom is not None and not zoom_ok(zoom):
        raise ValueError(f"zoom must be in [{MIN_ZOOM:g}, 1): the share of the face's width and height the tighter "
                         f"view keeps (e.g. 0.9), or None for no tighter view; got {zoom!r}")


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
            scores = self._view_rows(batch, self.flip, self.zoom).mean(axis=0, dtype=np.float32)
        t2 = time.perf_counter()
        return Classification(scores, (t1 - t0) * 1e3, (t2 - t1) * 1e3)

    def predict_dataset(self, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
        """Scores for an (N, H, W) uint8 array of already cropped faces."""
        chunks = [self.classify(images[i : i + batch_size]).scores for i in range(0, len(images), batch_size)]
        return np.concatenate(chunks) if chunks else np.zeros((0, len(self.labels)), np.float32)

    def predict_dataset_views(self, images: np.ndarray, zoom: float = DEFAULT_ZOOM,
                              batch_size: int = 64) -> dict[str, np.ndarray]:
        """Scores of every view setting (``one``, ``flip``, ``zoom``, ``flip+zoom``; :func:`views_name`) for
        (N, H, W) uint8 faces, whatever this classifier's own ``flip`` and ``zoom`` are.

        One pass of four views a face (the face, its tighter view and their mirror images): each
        setting's scores are the mean of its views' rows, as :meth:`classify` would give them.
        """
        check_zoom(zoom)
        # Row order of _view_rows(flip=True, zoom): face, tighter view, mirror, mirrored tighter view.
        picks = {views_name(False, None): [0], views_name(True, None): [0, 2], views_name(False, zoom): [0, 1],
                 views_name(True, zoom): [0, 1, 2, 3]}
        chunks: dict[str, list[np.ndarray]] = {name: [] for name in picks}
        for i in range(0, len(images), batch_size):
            rows = self._view_rows(preprocess_faces(images[i : i + batch_size], self.spec), True, zoom)
            for name, views in picks.items():
                chunks[name].append(rows[views].mean(axis=0, dtype=np.float32))
        empty = np.zeros((0, len(self.labels)), np.float32)
        return {name: np.concatenate(c) if c else empty.copy() for name, c in chunks.items()}

    def _view_rows(self, batch: np.ndarray, flip: bool, zoom: float | None) -> np.ndarray:
        """Scores (V, N, K) of a preprocessed NHWC batch's views: the faces, then (with ``zoom``) their tighter
        views, then (with ``flip``) the mirror images of both, in one backend call."""
        views = [batch] if zoom is None else [batch, zoomed(batch, zoom)]
        views += [v[:, :, ::-1] for v in views] if flip else []
        rows = self.backend.infer(np.concatenate(views) if len(views) > 1 else batch)
        return rows.reshape(len(views), len(batch), -1)

    def backend_info(self) -> dict[str, Any]:
        """What runs the model (backend, library, execution providers, ...), JSON-ready."""
        return self.backend.info()

    def close(self) -> None:
        self.backend.close()
