"""Read a full-integer ``.tflite`` into the op list ``native_int8.c`` runs.

Activations become uint8 (int8 + 128, so the 1x1 convolutions are u8 x s8 VNNI dot
products); weights are packed for the engine's GEMM once, here, at load.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..manifest import ModelError

GEMM, DW, PAD, MEAN = 0, 1, 2, 3
NR = 32  # GEMM output columns per packed block (two AVX-512 registers of int32)

_ACTIVATIONS = {0: "NONE", 1: "RELU", 3: "RELU6"}


@dataclass
class Tensor:
    """An activation: shape of one image (batch left out) and its uint8-domain quantisation."""

    index: int
    shape: tuple[int, ...]
    scale: float
    zero_point: int  # uint8 domain: the int8 zero point + 128

    @property
    def size(self) -> int:
        return int(np.prod(self.shape)) if self.shape else 1


@dataclass
class Op:
    """One engine op: geometry, requantisation and the arrays it reads (kept alive here)."""

    kind: int
    src: int
    dst: int
    name: str
    geometry: dict[str, int] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    mean_scale: float = 0.0
    scratch_per_image: int = 0  # bytes of scratch per image of the batch
    scratch_fixed: int = 0  # bytes of scratch whatever the batch


@dataclass
class Plan:
    """The ops in execution order, the activations they pass, the graph's input and output."""

    ops: list[Op]
    tensors: dict[int, Tensor]
    input: int
    output: int


def _quant(tensor: Any, where: str) -> tuple[np.ndarray, np.ndarray]:
    q = tensor.quantization
    if q is None or q.scale is None or len(q.scale) == 0:
        raise ModelError(f"{where}: tensor {tensor.name!r} has no quantisation; the native backend runs "
                         "full-integer (int8) models only: use the int8 .tflite, or --backend litert")
    zero = np.asarray(q.zeroPoint if q.zeroPoint is not None else [0], np.int64)
    return np.asarray(q.scale, np.float32), zero


def _same_padding(size: int, k: int, s: int) -> tuple[int, int, int]:
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return out, total // 2, total - total // 2


def _clamp(activation: int, out: Tensor, where: str) -> tuple[int, int]:
    """The fused activation as a uint8 range, as TFLite computes it (zero point + round(limit / scale))."""
    if activation not in _ACTIVATIONS:
        raise ModelError(f"{where}: fused activation {activation} is not supported by the native backend")
    lo, hi = 0, 255
    if _ACTIVATIONS[activation] in ("RELU", "RELU6"):
        lo = max(lo, out.zero_point)
    if _ACTIVATIONS[activation] == "RELU6":
        hi = min(hi, out.zero_point + int(round(6.0 / out.scale)))
    return lo, hi


def pack_gemm(weights: np.ndarray) -> tuple[np.ndarray, int]:
    """(O, K) int8 -> ``[ceil(O/32)][K/4][32][4]`` (K padded to 4, O to 32, with zeros), and K/4."""
    o, k = weights.shape
    k4 = -(-k // 4)
    blocks = -(-o // NR)
    padded = np.zeros((blocks * NR, k4 * 4), np.int8)
    padded[:o, :k] = weights
    packed = padded.reshape(blocks, NR, k4, 4).transpose(0, 2, 1, 3)
    return np.ascontiguousarray(packed).reshape(-1), k4


def pack_depthwise(weights: np.ndarray) -> np.ndarray:
    """(kh, kw, C) int8 -> ``[ceil(C/16)][kh][2][16][4]``: a kernel row's taps side by side per
    channel, so one VNNI dot product adds a whole kernel row for 16 channels. Variant 0 puts the
    taps in slots 0..kw-1, variant 1 in slots 1..kw (the second output column of a pair, which
    reads the same four input columns; kw <= 3). Unused slots are 0."""
    kh, kw, c = weights.shape
    blocks = -(-c // 16)
    packed = np.zeros((blocks * 16, kh, 2, 4), np.int8)
    by_channel = weights.transpose(2, 0, 1)  # (C, kh, kw)
    if kw <= 4:  # wider kernels run through the engine's generic loop, which reads "taps"
        packed[:c, :, 0, :kw] = by_channel
    if kw <= 3:
        packed[:c, :, 1, 1 : kw + 1] = by_channel
    return np.ascontiguousarray(packed.reshape(blocks, 16, kh, 2, 4).transpose(0, 2, 3, 1, 4)).reshape(-1)


def run_offsets(g: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """Where each output pixel's kernel rows start in its image, for the engine's implicit GEMM.

    ``offsets[pixel][ky]`` is the byte offset of the run of kw*c input bytes when it lies inside
    the image, -1 when its input row is outside (the run is all zero points), and -2 - p when
    only some of its taps are outside: the engine then builds patch p (input row y, first
    column x0, as ``patches[2p], patches[2p + 1]``) per image, zero points in the outside taps.
    """
    oy, ox, ky = np.meshgrid(np.arange(g["oh"]), np.arange(g["ow"]), np.arange(g["kh"]), indexing="ij")
    y = oy * g["sh"] + ky - g["pt"]
    x0 = ox * g["sw"] - g["pl"]
    inside_row = (y >= 0) & (y < g["h"])
    whole = inside_row & (x0 >= 0) & (x0 + g["kw"] <= g["w"])
    offsets = np.where(whole, (y * g["w"] + x0) * g["c"], -1).astype(np.int64)
    partial = inside_row & ~whole
    offsets[partial] = -2 - np.arange(int(partial.sum()))
    patches = np.stack([y[partial], x0[partial]], axis=1).astype(np.int32).reshape(-1)
    return offsets.astype(np.int32).reshape(-1), np.ascontiguousarray(patches)


def _pad(values: np.ndarray, dtype: Any, multiple: int) -> np.ndarray:
    out = np.zeros(-(-len(values) // multiple) * multiple, dtype)
    out[: len(values)] = values
    return out


def _pad32(values: np.ndarray, dtype: Any) -> np.ndarray:
    return _pad(values, dtype, NR)


def _pad16(values: np.ndarray, dtype: Any) -> np.ndarray:
    return _pad(values, dtype, 16)


def _requant_scale(inp: Tensor, w_scale: np.ndarray, out: Tensor, channels: int) -> np.ndarray:
    # float32 and in XNNPACK's order, so both engines round the same products the same way.
    w = np.broadcast_to(np.asarray(w_scale, np.float32), (channels,))
    return (np.float32(inp.scale) * w / np.float32(out.scale)).astype(np.float32)


def read_plan(path: Path) -> Plan:
    """Parse ``path``; an operator or type the engine lacks is a ``ModelError`` that names it."""
    from .litert import flatbuffer_tools

    schema, fu = flatbuffer_tools()
    try:
        model = fu.read_model(str(path))
    except Exception as exc:  # the flatbuffer reader raises whatever the bytes provoke
        raise ModelError(f"cannot read {path} as a .tflite model: {exc}") from None
    if len(model.subgraphs) != 1:
        raise ModelError(f"{path}: {len(model.subgraphs)} subgraphs; the native backend runs one")
    graph = model.subgraphs[0]
    buffers = [b.data for b in model.buffers]

    def constant(index: int) -> np.ndarray | None:
        data = buffers[graph.tensors[index].buffer]
        if data is None or len(data) == 0:
            return None
        t = graph.tensors[index]
        dtype = {schema.TensorType.INT8: np.int8, schema.TensorType.INT32: np.int32,
                 schema.TensorType.INT64: np.int64}.get(t.type)
        if dtype is None:
            raise ModelError(f"{path}: constant {t.name!r} has tensor type {t.type}; the native backend "
                             "reads int8 weights and int32 biases only")
        return np.frombuffer(bytes(data), dtype).reshape([int(d) for d in t.shape])

    tensors: dict[int, Tensor] = {}

    def activation(index: int, where: str) -> Tensor:
        if index not in tensors:
            t = graph.tensors[index]
            if t.type != schema.TensorType.INT8:
                raise ModelError(f"{where}: activation {t.name!r} is not int8; the native backend runs "
                                 "full-integer models only: use the int8 .tflite, or --backend litert")
            scale, zero = _quant(t, where)
            if scale.size != 1:
                raise ModelError(f"{where}: activation {t.name!r} is quantised per channel; not supported")
            tensors[index] = Tensor(index, tuple(int(d) for d in t.shape[1:]), float(scale[0]), int(zero[0]) + 128)
        return tensors[index]

    ops: list[Op] = []
    for position, op in enumerate(graph.operators):
        name = fu.opcode_to_name(model, op.opcodeIndex)
        where = f"{path}: operator {position} ({name})"
        inputs = [int(i) for i in op.inputs]
        opts = op.builtinOptions
        if name in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
            x = activation(inputs[0], where)
            y = activation(int(op.outputs[0]), where)
            w = constant(inputs[1])
            if w is None:
                raise ModelError(f"{where}: weights are not constant; not supported by the native backend")
            w_scale, w_zero = _quant(graph.tensors[inputs[1]], where)
            if np.any(w_zero != 0):
                raise ModelError(f"{where}: weights with a non-zero zero point; not supported")
            bias = constant(inputs[2]) if len(inputs) > 2 and inputs[2] >= 0 else None
            lo, hi = _clamp(int(opts.fusedActivationFunction), y, where)
            if name == "FULLY_CONNECTED":
                k = w.shape[1]
                if x.size != k:
                    raise ModelError(f"{where}: input of {x.size} values for {k} weights per output")
                h = wd = kh = kw = 1
                c, oc = k, w.shape[0]
                pt = pb = pl = pr = 0
                sh = sw = 1
                oh = ow = 1
            else:
                if getattr(opts, "dilationHFactor", 1) != 1 or getattr(opts, "dilationWFactor", 1) != 1:
                    raise ModelError(f"{where}: dilated convolutions are not supported by the native backend")
                h, wd, c = x.shape
                sh, sw = int(opts.strideH), int(opts.strideW)
                if name == "CONV_2D":
                    oc, kh, kw, _ = w.shape
                else:
                    _, kh, kw, oc = w.shape
                    if oc != c:
                        raise ModelError(f"{where}: depth multiplier {oc // c}; the native backend runs 1")
                if int(opts.padding) == schema.Padding.SAME:
                    oh, pt, pb = _same_padding(h, kh, sh)
                    ow, pl, pr = _same_padding(wd, kw, sw)
                else:
                    oh, ow = (h - kh) // sh + 1, (wd - kw) // sw + 1
                    pt = pb = pl = pr = 0
            if y.shape and y.size != oh * ow * oc:
                raise ModelError(f"{where}: output {y.shape} does not match the computed ({oh}, {ow}, {oc})")
            scale = _requant_scale(x, w_scale, y, oc)
            b = np.zeros(oc, np.int64) if bias is None else bias.astype(np.int64).reshape(-1)
            geometry = dict(h=h, w=wd, c=c, oh=oh, ow=ow, oc=oc, kh=kh, kw=kw, sh=sh, sw=sw,
                            pt=pt, pl=pl, pb=pb, pr=pr, in_zp=x.zero_point, out_zp=y.zero_point, lo=lo, hi=hi)
            if name == "DEPTHWISE_CONV_2D":
                if kh > 16:
                    raise ModelError(f"{where}: kernel height {kh}; the native backend runs up to 16")
                taps = w.reshape(kh * kw, oc)
                # The engine reads x, not x - z, so z * sum(w) comes off the bias (as for the GEMM).
                folded = b - x.zero_point * taps.astype(np.int64).sum(axis=0)
                if (np.abs(folded) + 255 * np.abs(taps.astype(np.int64)).sum(axis=0)).max(initial=0) >= 2**31:
                    raise ModelError(f"{where}: the int32 accumulator could overflow; not supported")
                ops.append(Op(DW, x.index, y.index, name, geometry,
                              {"w8": pack_depthwise(w.reshape(kh, kw, oc)), "taps": np.ascontiguousarray(taps),
                               "bias": _pad16(folded, np.int32), "scale": _pad16(scale, np.float32)},
                              scratch_fixed=(kh + 1) * ow * c * 4 + 4 * c))
            else:
                if kh > 16:
                    raise ModelError(f"{where}: kernel height {kh}; the native backend runs up to 16")
                flat = w.reshape(oc, -1)
                # u8 activations carry +zero point: sum((x - z) w) = sum(x w) - z sum(w), folded into the bias.
                adjusted = b - x.zero_point * flat.astype(np.int64).sum(axis=1)
                if np.abs(adjusted).max(initial=0) >= 2**31:
                    raise ModelError(f"{where}: bias overflows int32 after folding the input zero point")
                direct = kh == kw == sh == sw == 1 and pt == pl == 0 and c % 4 == 0
                # A kernel row's kw*c bytes are contiguous in NHWC: the GEMM reads each row's run in place,
                # padded to a multiple of 4 bytes whose extra weights are 0.
                r4 = -(-kw * c // 4)
                rows = np.zeros((oc, kh, r4 * 4), np.int8)
                rows[:, :, : kw * c] = flat.reshape(oc, kh, kw * c)
                packed, k4 = pack_gemm(rows.reshape(oc, -1))
                geometry["k4"] = k4
                arrays = {"w8": packed, "bias": _pad32(adjusted, np.int32), "scale": _pad32(scale, np.float32)}
                scratch_per_image = scratch_fixed = 0
                if not direct:
                    offsets, patches = run_offsets(geometry)
                    arrays.update(offsets=offsets, patches=patches)
                    geometry["npatch"] = len(patches) // 2
                    scratch_per_image = len(patches) // 2 * r4 * 4
                    scratch_fixed = r4 * 4
                ops.append(Op(GEMM, x.index, y.index, name, geometry, arrays,
                              scratch_per_image=scratch_per_image, scratch_fixed=scratch_fixed))
        elif name == "PAD":
            x = activation(inputs[0], where)
            y = activation(int(op.outputs[0]), where)
            pads = constant(inputs[1])
            if pads is None or pads.shape != (4, 2) or pads[0].any() or pads[3].any():
                raise ModelError(f"{where}: only constant padding of height and width is supported")
            if (x.scale, x.zero_point) != (y.scale, y.zero_point):
                raise ModelError(f"{where}: input and output quantisation differ")
            h, wd, c = x.shape
            (pt, pb), (pl, pr) = (int(v) for v in pads[1]), (int(v) for v in pads[2])
            ops.append(Op(PAD, x.index, y.index, name,
                          dict(h=h, w=wd, c=c, oh=h + pt + pb, ow=wd + pl + pr, oc=c, pt=pt, pl=pl, pb=pb, pr=pr,
                               in_zp=x.zero_point, out_zp=y.zero_point, lo=0, hi=255)))
        elif name == "MEAN":
            x = activation(inputs[0], where)
            y = activation(int(op.outputs[0]), where)
            axes = constant(inputs[1])
            if axes is None or len(x.shape) != 3 or sorted(int(a) for a in axes.reshape(-1)) != [1, 2]:
                raise ModelError(f"{where}: only the mean over height and width is supported")
            h, wd, c = x.shape
            ops.append(Op(MEAN, x.index, y.index, name,
                          dict(h=h, w=wd, c=c, oh=1, ow=1, oc=c, in_zp=x.zero_point, out_zp=y.zero_point,
                               lo=0, hi=255),
                          mean_scale=float(np.float32(x.scale) / (np.float32(y.scale) * np.float32(h * wd))),
                          scratch_fixed=4 * c))
        else:
            raise ModelError(f"{where}: the native backend has no {name}; it runs CONV_2D, DEPTHWISE_CONV_2D, "
                             "PAD, MEAN and FULLY_CONNECTED: use --backend litert for this model")
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise ModelError(f"{path}: the native backend runs models with one input and one output")
    first, last = int(graph.inputs[0]), int(graph.outputs[0])
    if first not in tensors or last not in tensors:
        raise ModelError(f"{path}: the graph's input or output is not an int8 activation of its operators")
    return Plan(ops, tensors, first, last)
