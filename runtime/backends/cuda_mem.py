"""Device memory, copies and a stream for TensorRT, through cuda-python or else pycuda.

Both libraries are imported lazily, only when a :class:`CudaContext` is made; the
TensorRT backend and the TensorRT engine builder (INT8 calibrator) share this one wrapper.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import BackendUnavailable


def _cudart() -> Any:
    try:
        from cuda.bindings import runtime as cudart  # cuda-python >= 12.6

        return cudart
    except ImportError:
        pass
    try:
        from cuda import cudart  # type: ignore[no-redef]  # older cuda-python layout

        return cudart
    except ImportError:
        return None


class CudaError(RuntimeError):
    """A CUDA runtime call failed; the message names the call and the CUDA error."""


class CudaContext:
    """One CUDA device and stream with malloc/free and host<->device copies.

    Prefers cuda-python (``cuda.bindings.runtime``); falls back to pycuda, which then
    owns a context it pushes here and pops in :meth:`close`.
    """

    def __init__(self, device: int = 0) -> None:
        self._allocs: dict[int, Any] = {}
        self._rt = _cudart()
        self._pycuda: Any = None
        self._ctx: Any = None
        if self._rt is not None:
            self._check("cudaSetDevice", self._rt.cudaSetDevice(device))
            self._stream = self._check("cudaStreamCreate", self._rt.cudaStreamCreate())
            props = self._check("cudaGetDeviceProperties", self._rt.cudaGetDeviceProperties(device))
            self.compute_capability = f"{props.major}.{props.minor}"
            name = props.name
            self.device_name = (name.decode(errors="replace") if isinstance(name, bytes) else str(name)).rstrip("\0")
            return
        try:
            import pycuda.driver as drv  # type: ignore[import-not-found]
        except ImportError:
            raise BackendUnavailable(
                "TensorRT needs cuda-python or pycuda for device buffers: pip install cuda-python "
                "(or pycuda; on Jetson both come with JetPack's python3-libnvinfer setup)"
            ) from None
        drv.init()
        dev = drv.Device(device)
        self._pycuda = drv
        self._ctx = dev.make_context()
        self._stream = drv.Stream()
        major, minor = dev.compute_capability()
        self.compute_capability = f"{major}.{minor}"
        self.device_name = str(dev.name())

    def _check(self, call: str, result: Any) -> Any:
        err, *values = result if isinstance(result, tuple) else (result,)
        if int(err) != 0:
            raise CudaError(f"{call} failed: {err}")
        return values[0] if len(values) == 1 else tuple(values)

    @property
    def stream_handle(self) -> int:
        """The raw ``cudaStream_t`` as an int, what ``execute_async_v3`` takes."""
        return int(self._stream.handle) if self._pycuda else int(self._stream)

    def malloc(self, nbytes: int) -> int:
        """Allocate ``nbytes`` of device memory; returns its address."""
        if self._pycuda:
            alloc = self._pycuda.mem_alloc(max(1, nbytes))
            self._allocs[int(alloc)] = alloc
            return int(alloc)
        ptr = int(self._check("cudaMalloc", self._rt.cudaMalloc(max(1, nbytes))))
        self._allocs[ptr] = ptr
        return ptr

    def free(self, ptr: int) -> None:
        alloc = self._allocs.pop(ptr, None)
        if alloc is None:
            return
        if self._pycuda:
            alloc.free()
        else:
            self._check("cudaFree", self._rt.cudaFree(ptr))

    def to_device(self, ptr: int, host: np.ndarray) -> None:
        """Asynchronous copy of a C-contiguous host array to ``ptr`` on the stream."""
        host = np.ascontiguousarray(host)
        if self._pycuda:
            self._pycuda.memcpy_htod_async(ptr, host, self._stream)
        else:
            kind = self._rt.cudaMemcpyKind.cudaMemcpyHostToDevice
            self._check("cudaMemcpyAsync", self._rt.cudaMemcpyAsync(ptr, host.ctypes.data, host.nbytes, kind,
                                                                    self._stream))

    def to_host(self, host: np.ndarray, ptr: int) -> None:
        """Asynchronous copy from ``ptr`` into the C-contiguous array ``host``; call :meth:`synchronize` after."""
        if self._pycuda:
            self._pycuda.memcpy_dtoh_async(host, ptr, self._stream)
        else:
            kind = self._rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
            self._check("cudaMemcpyAsync", self._rt.cudaMemcpyAsync(host.ctypes.data, ptr, host.nbytes, kind,
                                                                    self._stream))

    def synchronize(self) -> None:
        if self._pycuda:
            self._stream.synchronize()
        else:
            self._check("cudaStreamSynchronize", self._rt.cudaStreamSynchronize(self._stream))

    def close(self) -> None:
        """Free every allocation, the stream and (pycuda) the context."""
        for ptr in list(self._allocs):
            self.free(ptr)
        if self._pycuda:
            if self._ctx is not None:
                self._ctx.pop()
                self._ctx = None
        elif self._stream is not None:
            self._rt.cudaStreamDestroy(self._stream)
        self._stream = None
