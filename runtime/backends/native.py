"""Native backend: the INT8 ``.tflite`` run by edgefer's own engine (``native_int8.c``).

The engine is compiled on first use with the machine's C compiler and cached (see
``native_build``). It is fast where the CPU has AVX-512 VNNI; elsewhere it runs the same
integer arithmetic through plain C loops. It runs one thread. LiteRT's flatbuffer
schema (``edgefer[litert]``) is used to read the model.
"""

from __future__ import annotations

import ctypes
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..manifest import Manifest, ModelError
from . import check_input, check_output
from .native_plan import Plan, read_plan

_SLACK = 64
_INT_FIELDS = ("kind", "h", "w", "c", "oh", "ow", "oc", "kh", "kw", "sh", "sw", "pt", "pl", "pb", "pr", "k4",
               "npatch", "in_zp", "out_zp", "lo", "hi")


class _OpStruct(ctypes.Structure):
    # Mirrors op_t in native_int8.c; load() checks the two sizes agree.
    _fields_ = [*((name, ctypes.c_int32) for name in _INT_FIELDS), ("mean_scale", ctypes.c_float),
                *((name, ctypes.c_void_p)
                  for name in ("w8", "taps", "bias", "scale", "offsets", "patches", "src", "dst", "scratch"))]


class _BatchStruct(ctypes.Structure):
    # Mirrors batch_t in native_int8.c; load() checks the two sizes agree.
    _fields_ = [("ops", ctypes.c_void_p), ("count", ctypes.c_int32), ("n", ctypes.c_int32),
                ("weights", ctypes.c_void_p), ("weight_bytes", ctypes.c_int64), ("in_count", ctypes.c_int64),
                ("in_scale", ctypes.c_float), ("in_zp8", ctypes.c_int32), ("input", ctypes.c_void_p),
                ("output", ctypes.c_void_p), ("out_count", ctypes.c_int64), ("lut", ctypes.c_void_p)]


def _aligned(size: int) -> np.ndarray:
    """``size`` bytes starting on a 64-byte boundary (a cache line: the engine's vector loads and
    stores never split one, and stores forward to the loads that follow them)."""
    raw = np.empty(size + 64, np.uint8)
    start = -raw.ctypes.data % 64
    return raw[start:start + size]


def _pointer(array: np.ndarray | None) -> int | None:
    return None if array is None else int(array.ctypes.data)


def _share_buffers(plan: Plan, n: int) -> dict[int, np.ndarray]:
    """A uint8 view per activation, tensors whose lifetimes do not overlap sharing memory.

    Fewer, reused buffers keep a batch's activations in L2 between operators. An operator
    never writes into a buffer it reads (its output's buffer was free before it ran).
    """
    first = {plan.input: -1}
    last = {plan.output: len(plan.ops)}
    for i, op in enumerate(plan.ops):
        first.setdefault(op.dst, i)
        last[op.src] = max(last.get(op.src, -1), i)
    order = sorted(plan.tensors, key=lambda t: first.get(t, -1))
    pools: list[list[int]] = []  # tensors per shared buffer, in lifetime order
    for t in order:
        start = first.get(t, -1)
        pool = next((p for p in pools if last.get(p[-1], len(plan.ops)) < start), None)
        if pool is None:
            pools.append([t])
        else:
            pool.append(t)
    views: dict[int, np.ndarray] = {}
    for pool in pools:
        # _SLACK bytes past the end: the implicit GEMM reads each kernel row's run rounded up to 4 bytes,
        # so up to 3 bytes past the last pixel (their weights are 0, the bytes just have to be there).
        memory = _aligned(max(n * plan.tensors[t].size for t in pool) + _SLACK)
        for t in pool:
            views[t] = memory[: n * plan.tensors[t].size + _SLACK]
    return views


def _weight_block(plan: Plan) -> np.ndarray:
    """Move every op's packed weights, in op order, into one cache-aligned block; each op's
    ``w8`` becomes its view of the block (the separate copies are let go).

    The engine prefetches the next ops' weights into L2 as one stream through this block.
    """
    starts, total = {}, 0
    for i, op in enumerate(plan.ops):
        if "w8" in op.arrays:
            starts[i] = total
            total += -(-op.arrays["w8"].nbytes // 64) * 64
    block = _aligned(total)
    for i, start in starts.items():
        arrays = plan.ops[i].arrays
        view = block[start : start + arrays["w8"].nbytes].view(arrays["w8"].dtype)
        view[:] = arrays["w8"]
        arrays["w8"] = view
    return block


class NativeBackend:
    """Runs full-integer TFLite models (MobileNet-style operator set) through the native engine."""

    name = "native"

    def __init__(self) -> None:
        self._lib: Any = None
        self._plan: Plan | None = None
        self._batch = 0
        self._buffers: dict[int, np.ndarray] = {}
        self._scratch: list[np.ndarray | None] = []
        self._structs: Any = None
        self._weights = np.empty(0, np.uint8)
        self._dequantize = np.zeros(256, np.float32)
        self._call = _BatchStruct()
        self._call_address = 0
        self.vnni = False

    def load(self, path: Path, manifest: Manifest, threads: int | None = None) -> None:
        from .native_build import load_library

        plan = read_plan(Path(path))
        self._lib = load_library()
        if (self._lib.edgefer_native_op_size() != ctypes.sizeof(_OpStruct)
                or self._lib.edgefer_native_batch_size() != ctypes.sizeof(_BatchStruct)):
            raise ModelError("the native engine and native.py disagree on op_t's or batch_t's layout: "
                             "rebuild the engine")
        self.vnni = bool(self._lib.edgefer_native_vnni())
        if not self.vnni:
            warnings.warn("the native engine has vector kernels for AVX-512 VNNI only; on this CPU it runs "
                          "plain C loops, far slower than --backend litert", stacklevel=2)
        if threads and threads > 1:
            warnings.warn(f"the native backend runs one thread; --threads {threads} is ignored", stacklevel=2)
        first, last = plan.tensors[plan.input], plan.tensors[plan.output]
        check_input(manifest, (None, *first.shape), path)
        check_output(manifest, int(last.shape[-1]), path)
        self._plan = plan
        self._weights = _weight_block(plan)
        self._dequantize = (np.arange(256, dtype=np.float32) - np.float32(last.zero_point)) * np.float32(last.scale)
        self._batch = 0

    def _allocate(self, n: int) -> None:
        plan = self._plan
        assert plan is not None
        self._buffers = _share_buffers(plan, n)
        sizes = [n * op.scratch_per_image + op.scratch_fixed for op in plan.ops]
        self._scratch = [_aligned(size + _SLACK) if size else None for size in sizes]
        structs = (_OpStruct * len(plan.ops))()
        for s, op, scratch in zip(structs, plan.ops, self._scratch):
            s.kind = op.kind
            for key, value in op.geometry.items():
                setattr(s, key, int(value))
            s.mean_scale = op.mean_scale
            for key in ("w8", "taps", "bias", "scale", "offsets", "patches"):
                setattr(s, key, _pointer(op.arrays.get(key)))
            s.src, s.dst = _pointer(self._buffers[op.src]), _pointer(self._buffers[op.dst])
            s.scratch = _pointer(scratch)
        self._structs = structs
        self._batch = n
        first, last = plan.tensors[plan.input], plan.tensors[plan.output]
        self._call = _BatchStruct(ops=ctypes.addressof(structs), count=len(plan.ops), n=n,
                                  weights=self._weights.ctypes.data, weight_bytes=self._weights.nbytes,
                                  in_count=n * first.size, in_scale=first.scale, in_zp8=first.zero_point - 128,
                                  input=self._buffers[plan.input].ctypes.data,
                                  output=self._buffers[plan.output].ctypes.data, out_count=n * last.size,
                                  lut=self._dequantize.ctypes.data)
        self._call_address = ctypes.addressof(self._call)

    def infer(self, batch: np.ndarray) -> np.ndarray:
        if self._plan is None:
            raise RuntimeError("NativeBackend.infer called before load")
        plan = self._plan
        first, last = plan.tensors[plan.input], plan.tensors[plan.output]
        n = batch.shape[0]
        if n == 0:
            return np.zeros((0, last.shape[-1]), np.float32)
        if n != self._batch:
            self._allocate(n)
        x = np.ascontiguousarray(batch, np.float32)
        if x.size != n * first.size:
            raise ValueError(f"batch of shape {batch.shape} does not match the model's input {first.shape}")
        scores = np.empty((n, last.size), np.float32)
        # The same float32 operations as LiteRT's quantisation, and (q - zero point) * scale looked up
        # for all 256 values of q, in one call (native_int8.c: edgefer_native_infer).
        self._lib.edgefer_native_infer(self._call_address, x.ctypes.data, scores.ctypes.data)
        return scores

    @property
    def op_names(self) -> list[str]:
        """The TFLite operator each engine op runs, in order (one op per operator)."""
        return [op.name for op in self._plan.ops] if self._plan else []

    def run_ops(self, first: int, count: int) -> None:
        """Run ops ``first .. first + count - 1`` on the buffers of the last ``infer`` batch, as they
        are: for timing operators one by one (``benchmarks/ops.py --backend native``)."""
        if self._plan is None or not self._batch:
            raise RuntimeError("NativeBackend.run_ops needs a loaded model and one infer call first")
        if first < 0 or count < 1 or first + count > len(self._plan.ops):
            raise ValueError(f"ops {first}..{first + count - 1} are outside 0..{len(self._plan.ops) - 1}")
        size = ctypes.sizeof(_OpStruct)
        call = self._call
        self._lib.edgefer_native_run(call.ops + first * size, count, call.n, call.weights, call.weight_bytes)

    def close(self) -> None:
        self._plan = None
        self._buffers = {}
        self._scratch = []
        self._structs = None
        self._weights = np.empty(0, np.uint8)
