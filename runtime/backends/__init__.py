"""Inference backends behind one protocol, and the one registry that says what each needs.

Each backend's vendor library is imported only inside its own module (``litert.py``,
``onnx.py``, ``tensorrt.py``), never here: :data:`BACKENDS` holds what the rest of the
package needs to know without importing it (module, import probe, install hint,
artifact suffixes, onnxruntime execution providers).
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..errors import EdgeferError
from ..manifest import Manifest


class BackendUnavailable(EdgeferError, ImportError):
    """The library a backend needs is not installed; the message names what to install."""


class UnknownBackend(EdgeferError, ValueError):
    """A backend name that is not in the registry; the message lists the valid ones."""


@runtime_checkable
class Backend(Protocol):
    """Load an artifact, run float32 NHWC batches through it, release it."""

    name: str

    def load(self, path: Path, manifest: Manifest, threads: int | None = None) -> None:
        """Open the model; raise ``ModelError`` if it does not match ``manifest``."""

    def infer(self, batch: np.ndarray) -> np.ndarray:
        """(N, H, W, C) float32 preprocessed faces -> (N, num_classes) float32 scores."""

    def info(self) -> dict[str, Any]:
        """What runs the model once loaded (library, execution providers, ...), JSON-ready."""

    def close(self) -> None:
        """Release the model and any device memory."""


@dataclass(frozen=True)
class BackendRecord:
    """Everything edgefer knows about a backend without importing its vendor library.

    ``probe``: importable module names, any one of which means the backend can run here.
    ``install``: what to install when none is. ``suffixes``: the artifact files it runs,
    the first being what ``edgefer convert`` writes. ``providers``: onnxruntime execution
    providers in the order they are preferred when the installed onnxruntime has them.
    """

    name: str
    module: str
    cls: str
    probe: tuple[str, ...]
    install: str
    suffixes: tuple[str, ...]
    providers: tuple[str, ...] = ()

    def installed(self) -> bool:
        """Whether one of the probe modules can be imported (without importing it)."""
        return any(importlib.util.find_spec(m) is not None for m in self.probe)

    def unavailable(self) -> BackendUnavailable:
        """The error to raise when the vendor library is missing."""
        return BackendUnavailable(f"the {self.name} backend needs {self.install}")


BACKENDS: dict[str, BackendRecord] = {
    r.name: r
    for r in (
        BackendRecord(
            "litert", "edgefer.runtime.backends.litert", "LiteRTBackend", ("ai_edge_litert", "tflite_runtime"),
            "a TFLite interpreter: pip install 'edgefer[litert]' (ai-edge-litert), or tflite-runtime / "
            "tensorflow where that is what the device has",
            (".tflite",),
        ),
        BackendRecord(
            "onnx", "edgefer.runtime.backends.onnx", "OnnxBackend", ("onnxruntime",),
            "onnxruntime: pip install 'edgefer[onnx]' (on a Jetson, the onnxruntime-gpu wheel for its JetPack)",
            (".onnx",),
            # Jetson and GPU builds of onnxruntime carry the first two; CPU always exists and comes last.
            providers=("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"),
        ),
        BackendRecord(
            "tensorrt", "edgefer.runtime.backends.tensorrt", "TensorRTBackend", ("tensorrt",),
            "TensorRT's python bindings (JetPack's python3-libnvinfer, or pip install tensorrt on an x86 GPU "
            "host) and cuda-python or pycuda",
            (".engine",),
        ),
    )
}

BACKEND_NAMES: tuple[str, ...] = tuple(BACKENDS)


def get_backend(name: str) -> BackendRecord:
    """The registry record of ``name``; an unknown name is an error listing the valid ones."""
    try:
        return BACKENDS[name]
    except KeyError:
        raise UnknownBackend(f"unknown backend {name!r}; valid backends: {', '.join(BACKEND_NAMES)}") from None


def backend_for_suffix(suffix: str) -> BackendRecord | None:
    """The backend that runs artifacts ending in ``suffix`` (case-insensitive), if any."""
    suffix = suffix.lower()
    return next((r for r in BACKENDS.values() if suffix in r.suffixes), None)


def create_backend(name: str, providers: list[str] | None = None) -> Backend:
    """Instantiate a backend by name (its vendor library is imported by ``load``).

    ``providers`` (onnxruntime execution providers) only applies to the ``onnx`` backend.
    """
    record = get_backend(name)
    cls = getattr(importlib.import_module(record.module), record.cls)
    if providers:
        if not record.providers:
            raise ValueError(f"execution providers apply to the onnx backend only, not to {name!r}")
        return cls(providers=providers)
    return cls()


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
