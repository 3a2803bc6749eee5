"""Inference backends behind one protocol; each vendor library is imported only in its module."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from ..manifest import Manifest


class BackendUnavailable(ImportError):
    """The library a backend needs is not installed; the message names what to install."""


@runtime_checkable
class Backend(Protocol):
    """Load an artifact, run float32 NHWC batches through it, release it."""

    name: str

    def load(self, path: Path, manifest: Manifest, threads: int | None = None) -> None:
        """Open the model; raise ``ModelError`` if it does not match ``manifest``."""

    def infer(self, batch: np.ndarray) -> np.ndarray:
        """(N, H, W, C) float32 preprocessed faces -> (N, num_classes) float32 scores."""

    def close(self) -> None:
        """Release the model and any device memory."""


_IMPLEMENTATIONS = {
    "litert": ("edgefer.runtime.backends.litert", "LiteRTBackend"),
    "onnx": ("edgefer.runtime.backends.onnx", "OnnxBackend"),
    "tensorrt": ("edgefer.runtime.backends.tensorrt", "TensorRTBackend"),
}

BACKEND_NAMES: tuple[str, ...] = tuple(_IMPLEMENTATIONS)


def create_backend(name: str) -> Backend:
    """Instantiate a backend by name (its vendor library is imported by ``load``)."""
    try:
        module_name, cls_name = _IMPLEMENTATIONS[name]
    except KeyError:
        raise ValueError(f"unknown backend {name!r}; valid backends: {', '.join(BACKEND_NAMES)}") from None
    return getattr(importlib.import_module(module_name), cls_name)()


def check_output(manifest: Manifest, num_outputs: int, path: Path) -> None:
    """A model's class dimension must match its manifest's labels."""
    from ..manifest import ModelError

    if num_outputs != len(manifest.labels):
        raise ModelError(
            f"model {path} outputs {num_outputs} scores but its manifest lists {len(manifest.labels)} labels"
        )


def check_input(manifest: Manifest, shape: tuple, path: Path) -> None:
    """A model's NHWC input (batch ignored) must match its manifest's input spec."""
    from ..manifest import ModelError

    spec = manifest.input
    expected = (spec.height, spec.width, spec.channels)
    actual = tuple(int(d) if d is not None and not isinstance(d, str) and int(d) > 0 else -1 for d in shape[1:])
    if len(actual) != 3 or any(a not in (e, -1) for a, e in zip(actual, expected)):
        raise ModelError(
            f"model {path} takes input {tuple(shape)} but its manifest says (N, {spec.height}, {spec.width}, "
            f"{spec.channels}); the manifest belongs to another model: re-run `edgefer convert`"
        )
