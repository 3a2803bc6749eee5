"""ONNX Runtime backend for ``.onnx`` (CPU provider by default)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..manifest import Manifest, ModelError
from . import BackendUnavailable, check_input, check_output


class OnnxBackend:
    """Runs ONNX models through onnxruntime with a dynamic batch axis."""

    name = "onnx"

    def __init__(self, providers: list[str] | None = None) -> None:
        self._session: Any = None  # an onnxruntime.InferenceSession once loaded
        self._input = ""
        self._providers = providers

    def load(self, path: Path, manifest: Manifest, threads: int | None = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise BackendUnavailable("the onnx backend needs onnxruntime: pip install 'edgefer[onnx]'") from None
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        opts.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(
                str(path), opts, providers=self._providers or ["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own exception types per failure
            raise ModelError(f"onnxruntime could not load {path}: {exc}") from None
        inp = self._session.get_inputs()[0]
        out = self._session.get_outputs()[0]
        check_input(manifest, tuple(inp.shape), path)
        last = out.shape[-1]
        if isinstance(last, int):
            check_output(manifest, last, path)
        self._input = inp.name

    def infer(self, batch: np.ndarray) -> np.ndarray:
        if self._session is None:
            raise RuntimeError("OnnxBackend.infer called before load")
        return np.asarray(self._session.run(None, {self._input: batch.astype(np.float32, copy=False)})[0], np.float32)

    def close(self) -> None:
        self._session = None
