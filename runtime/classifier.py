"""Emotion classification of face crops with any backend, configured by the artifact's manifest."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .backends import BACKEND_NAMES, Backend, create_backend, get_backend
from .formats import format_for_path
from .limits import check_threads
from .manifest import Manifest, ModelError
from .preprocess import preprocess_faces

_MODELS_DIR = Path(__file__).resolve().parent / "models"


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
                 providers: list[str] | None = None, flip: bool = False):
        """``providers``: onnxruntime execution providers for the ``onnx`` backend (default: the best it has).

        ``flip``: test-time flip, each face also classified mirrored (one batch of 2N) and the
        two score rows averaged; twice the inference work.
        """
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

    def classify(self, faces: Sequence[np.ndarray] | np.ndarray) -> Classification:
        """Preprocess face crops (any size, grey or BGR) and run them as one batch."""
        t0 = time.perf_counter()
        batch = preprocess_faces(faces, self.spec)
        t1 = time.perf_counter()
        if not len(batch):
            scores = np.zeros((0, len(self.labels)), np.float32)
        elif self.flip:
            scores = self._infer_with_mirror(batch)[1]
        else:
            scores = self.backend.infer(batch)
        t2 = time.perf_counter()
        return Classification(scores, (t1 - t0) * 1e3, (t2 - t1) * 1e3)

    def predict_dataset(self, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
        """Scores for an (N, H, W) uint8 array of already cropped faces."""
        chunks = [self.classify(images[i : i + batch_size]).scores for i in range(0, len(images), batch_size)]
        return np.concatenate(chunks) if chunks else np.zeros((0, len(self.labels)), np.float32)

    def predict_dataset_both(self, images: np.ndarray, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
        """Scores without and with test-time flip for (N, H, W) uint8 faces, whatever ``flip`` is.

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
