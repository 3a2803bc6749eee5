"""LiteRT backend for ``.tflite`` (ai-edge-litert, else tflite_runtime, else tensorflow.lite)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..manifest import Manifest, ModelError
from . import BackendUnavailable, check_input, check_output


def _interpreter_class():
    # Devices ship different packagings of the same interpreter: prefer LiteRT,
    # then the frozen tflite-runtime 2.14 wheels, then full TensorFlow.
    try:
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter
    except ImportError:
        pass
    try:
        from tflite_runtime.interpreter import Interpreter  # type: ignore[import-not-found]

        return Interpreter
    except ImportError:
        pass
    try:
        import tensorflow as tf  # type: ignore[import-not-found]

        return tf.lite.Interpreter
    except ImportError:
        raise BackendUnavailable(
            "the litert backend needs a TFLite interpreter: pip install 'edgefer[litert]' "
            "(ai-edge-litert), or tflite-runtime / tensorflow where that is what the device has"
        ) from None


class LiteRTBackend:
    """Runs TFLite models; quantises int8/uint8 inputs and dequantises outputs itself."""

    name = "litert"

    def __init__(self) -> None:
        self._interp: Any = None  # the vendor's Interpreter once loaded
        self._batch = 0

    def load(self, path: Path, manifest: Manifest, threads: int | None = None) -> None:
        Interpreter = _interpreter_class()
        try:
            self._interp = Interpreter(model_path=str(path), num_threads=threads)
            self._interp.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"LiteRT could not load {path}: {exc}") from None
        inp = self._interp.get_input_details()[0]
        out = self._interp.get_output_details()[0]
        check_input(manifest, tuple(inp["shape"]), path)
        check_output(manifest, int(out["shape"][-1]), path)
        self._batch = int(inp["shape"][0])

    def _resize(self, n: int) -> None:
        inp = self._interp.get_input_details()[0]
        self._interp.resize_tensor_input(inp["index"], [n, *inp["shape"][1:]], strict=False)
        self._interp.allocate_tensors()
        self._batch = n

    def infer(self, batch: np.ndarray) -> np.ndarray:
        if self._interp is None:
            raise RuntimeError("LiteRTBackend.infer called before load")
        n = batch.shape[0]
        if n == 0:
            return np.zeros((0, self._interp.get_output_details()[0]["shape"][-1]), np.float32)
        if n != self._batch:
            self._resize(n)
        inp = self._interp.get_input_details()[0]
        out = self._interp.get_output_details()[0]
        x = batch
        if inp["dtype"] in (np.int8, np.uint8):
            scale, zero = inp["quantization"]
            info = np.iinfo(inp["dtype"])
            x = np.clip(np.round(batch / scale + zero), info.min, info.max).astype(inp["dtype"])
        self._interp.set_tensor(inp["index"], x.astype(inp["dtype"], copy=False))
        self._interp.invoke()
        y = self._interp.get_tensor(out["index"])
        if out["dtype"] in (np.int8, np.uint8):
            scale, zero = out["quantization"]
            return (y.astype(np.float32) - zero) * np.float32(scale)
        return y.astype(np.float32, copy=False)

    def close(self) -> None:
        self._interp = None
