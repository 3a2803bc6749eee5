"""TensorRT backend for ``.engine`` files built by ``edgefer convert --to tensorrt`` on the device itself.

Uses the TensorRT 10 named-tensor API (``set_input_shape``, ``set_tensor_address``,
``execute_async_v3``) with cuda-python or pycuda buffers. Engines are tied to the TensorRT
version and GPU that built them, so the manifest records both and a mismatched engine is
refused with a message saying to rebuild, before TensorRT is asked to deserialise it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..manifest import Manifest, ModelError
from . import BACKENDS, check_input, check_output

REBUILD_HINT = "rebuild it on this device: edgefer convert --to tensorrt --model <model.keras or fp32/int8 .onnx> ..."


def import_tensorrt() -> Any:
    """The ``tensorrt`` module, or :class:`BackendUnavailable` saying what to install."""
    try:
        import tensorrt as trt  # type: ignore[import-not-found]
    except ImportError:
        raise BACKENDS["tensorrt"].unavailable() from None
    return trt


def engine_mismatch(recorded: dict[str, Any] | None, trt_version: str, compute_capability: str) -> str | None:
    """Why an engine built as ``recorded`` (manifest ``tensorrt`` entry) cannot run here, or ``None``."""
    if not recorded:
        return "its manifest does not say which TensorRT version and GPU built it"
    problems = []
    if recorded.get("version") != trt_version:
        problems.append(f"it was built with TensorRT {recorded.get('version')}, this device has {trt_version}")
    if recorded.get("compute_capability") != compute_capability:
        problems.append(
            f"it was built for GPU compute capability {recorded.get('compute_capability')} "
            f"({recorded.get('device', 'unknown GPU')}), this GPU is {compute_capability}"
        )
    return "; ".join(problems) or None


class TensorRTBackend:
    """Runs a serialised TensorRT engine with a dynamic batch axis (within its optimisation profile)."""

    name = "tensorrt"

    def __init__(self) -> None:
        self._cuda: Any = None
        self._engine: Any = None
        self._context: Any = None
        self._input = ""
        self._output = ""
        self._max_batch = 1
        self._in_ptr = 0
        self._out_ptr = 0
        self._in_dtype: np.dtype = np.dtype(np.float32)
        self._out_dtype: np.dtype = np.dtype(np.float32)
        self._num_classes = 0
        self._info: dict[str, Any] = {"backend": self.name}

    def load(self, path: Path, manifest: Manifest, threads: int | None = None) -> None:
        trt = import_tensorrt()
        from .cuda_mem import CudaContext

        self._cuda = CudaContext()
        why = engine_mismatch(manifest.extra.get("tensorrt"), trt.__version__, self._cuda.compute_capability)
        if why:
            self.close()
            raise ModelError(f"TensorRT engine {path} cannot run here: {why}; engines are not portable, {REBUILD_HINT}")
        logger = trt.Logger(trt.Logger.WARNING)
        self._engine = trt.Runtime(logger).deserialize_cuda_engine(path.read_bytes())
        if self._engine is None:
            self.close()
            raise ModelError(f"TensorRT could not deserialise {path} (corrupt or built elsewhere); {REBUILD_HINT}")
        names = [self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)]
        inputs = [n for n in names if self._engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if self._engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        if len(inputs) != 1 or len(outputs) != 1:
            self.close()
            raise ModelError(f"TensorRT engine {path} has inputs {inputs} and outputs {outputs}; expected one of each")
        self._input, self._output = inputs[0], outputs[0]
        check_input(manifest, tuple(self._engine.get_tensor_shape(self._input)), path)
        out_shape = tuple(self._engine.get_tensor_shape(self._output))
        check_output(manifest, int(out_shape[-1]), path)
        self._num_classes = int(out_shape[-1])
        _, _, max_shape = self._engine.get_tensor_profile_shape(self._input, 0)
        self._max_batch = int(max_shape[0])
        self._in_dtype = np.dtype(trt.nptype(self._engine.get_tensor_dtype(self._input)))
        self._out_dtype = np.dtype(trt.nptype(self._engine.get_tensor_dtype(self._output)))
        self._context = self._engine.create_execution_context()
        sample = (self._max_batch, *(int(d) for d in max_shape[1:]))
        self._in_ptr = self._cuda.malloc(int(np.prod(sample)) * self._in_dtype.itemsize)
        self._out_ptr = self._cuda.malloc(self._max_batch * self._num_classes * self._out_dtype.itemsize)
        self._context.set_tensor_address(self._input, self._in_ptr)
        self._context.set_tensor_address(self._output, self._out_ptr)
        self._info = {"backend": self.name, "library": f"TensorRT {trt.__version__}",
                      "compute_capability": self._cuda.compute_capability, "max_batch": self._max_batch}

    def _run(self, chunk: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(chunk, dtype=self._in_dtype)
        self._context.set_input_shape(self._input, tuple(x.shape))
        out = np.empty((x.shape[0], self._num_classes), self._out_dtype)
        self._cuda.to_device(self._in_ptr, x)
        if not self._context.execute_async_v3(self._cuda.stream_handle):
            raise RuntimeError("TensorRT execute_async_v3 failed (see the TensorRT log above)")
        self._cuda.to_host(out, self._out_ptr)
        self._cuda.synchronize()
        return out.astype(np.float32, copy=False)

    def infer(self, batch: np.ndarray) -> np.ndarray:
        if self._context is None:
            raise RuntimeError("TensorRTBackend.infer called before load")
        if batch.shape[0] == 0:
            return np.zeros((0, self._num_classes), np.float32)
        # The optimisation profile caps the batch; larger batches run in profile-sized chunks.
        chunks = [self._run(batch[i : i + self._max_batch]) for i in range(0, batch.shape[0], self._max_batch)]
        return np.concatenate(chunks)

    def info(self) -> dict[str, Any]:
        return dict(self._info)

    def close(self) -> None:
        self._context = None
        self._engine = None
        if self._cuda is not None:
            self._cuda.close()
            self._cuda = None
