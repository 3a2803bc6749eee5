"""LiteRT backend for ``.tflite`` (ai-edge-litert, else tflite_runtime, else tensorflow.lite)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from ..manifest import Manifest, ModelError
from . import BACKENDS, BackendUnavailable, check_input, check_output
from .vendor_log import vendor_stderr_to_log

log = logging.getLogger(__name__)


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
        raise BACKENDS["litert"].unavailable() from None


def flatbuffer_tools() -> tuple[Any, Any]:
    """LiteRT's flatbuffer schema and ``flatbuffer_utils``, to read and rewrite ``.tflite`` files without TensorFlow."""
    try:
        from ai_edge_litert import schema_py_generated as schema
        from ai_edge_litert.tools import flatbuffer_utils
    except ImportError:
        raise BackendUnavailable("reading or rewriting a .tflite graph needs LiteRT's flatbuffer tools: "
                                 "pip install 'edgefer[litert]' (ai-edge-litert) flatbuffers") from None
    return schema, flatbuffer_utils


class LiteRTBackend:
    """Runs TFLite models; quantises int8/uint8 inputs and dequantises outputs itself."""

    name = "litert"

    def __init__(self) -> None:
        self._interp: Any = None  # the vendor's Interpreter once loaded
        self._batch = 0
        # Input and output details, read once per (re)allocation: the interpreter builds
        # fresh dicts on every get_*_details call, a measurable cost per one-face call.
        self._in: dict[str, Any] = {}
        self._out: dict[str, Any] = {}
        self._library = ""
        self._threads: int | None = None

    def load(self, path: Path, manifest: Manifest, threads: int | None = None) -> None:
        Interpreter = _interpreter_class()
        try:
            # The first allocation creates the XNNPACK delegate, which announces itself on fd 2.
            with vendor_stderr_to_log(log):
                self._interp = Interpreter(model_path=str(path), num_threads=threads)
                self._interp.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"LiteRT could not load {path}: {exc}") from None
        self._library = Interpreter.__module__.split(".")[0]
        self._threads = threads
        self._read_details()
        check_input(manifest, tuple(self._in["shape"]), path)
        check_output(manifest, int(self._out["shape"][-1]), path)

    def _read_details(self) -> None:
        self._in = self._interp.get_input_details()[0]
        self._out = self._interp.get_output_details()[0]
        self._batch = int(self._in["shape"][0])

    def _resize(self, n: int) -> None:
        self._interp.resize_tensor_input(self._in["index"], [n, *self._in["shape"][1:]], strict=False)
        self._interp.allocate_tensors()
        self._read_details()

    def infer(self, batch: np.ndarray) -> np.ndarray:
        if self._interp is None:
            raise RuntimeError("LiteRTBackend.infer called before load")
        n = batch.shape[0]
        if n == 0:
            return np.zeros((0, self._out["shape"][-1]), np.float32)
        if n != self._batch:
            self._resize(n)
        inp, out = self._in, self._out
        x = batch
        if inp["dtype"] in (np.int8, np.uint8):
            scale, zero = inp["quantization"]
            info = np.iinfo(inp["dtype"])
            # One float32 temporary, rounded and clipped in place.
            q = np.divide(batch, scale, dtype=np.float32)
            q += zero
            np.rint(q, out=q)
            np.clip(q, info.min, info.max, out=q)
            x = q
        self._interp.set_tensor(inp["index"], x.astype(inp["dtype"], copy=False))
        self._interp.invoke()
        y = self._interp.get_tensor(out["index"])
        if out["dtype"] in (np.int8, np.uint8):
            scale, zero = out["quantization"]
            return (y.astype(np.float32) - zero) * np.float32(scale)
        return y.astype(np.float32, copy=False)

    def info(self) -> dict[str, Any]:
        return {"backend": self.name, "library": self._library, "threads": self._threads}

    def close(self) -> None:
        self._interp = None
