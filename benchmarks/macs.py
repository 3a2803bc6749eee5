"""Multiply-accumulates of a classifier artifact, and each CPU's int8 rate.

The MAC count is information beside a latency result (how much work one face is);
:func:`int8_peak` (the widest int8 multiply-accumulate instruction's MACs per cycle x
clock x cores, from :data:`INT8_RATES`) is what :mod:`benchmarks.expected` scales the
classifier's time by from one CPU to another. It is optimistic (memory traffic,
depthwise layers and framework overhead are ignored) and taken at the reported clock."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

# (flag that must be present, machine, int8 MACs per cycle per core, why)
INT8_RATES: tuple[tuple[str, str, int, str], ...] = (
    ("avx512_vnni", "x86_64", 128, "2 ports x VPDPBUSD zmm (64 u8*s8 MACs each)"),
    ("avx_vnni", "x86_64", 64, "2 ports x VPDPBUSD ymm (32 MACs each)"),
    ("avx2", "x86_64", 64, "2 ports x VPMADDUBSW ymm (32 u8*s8 products each)"),
    ("asimddp", "aarch64", 32, "2 NEON pipes x SDOT (16 MACs each), e.g. Cortex-A76 (Pi 5), A78AE (Orin)"),
    ("asimd", "aarch64", 16, "2 NEON pipes x SMLAL (8 MACs each), e.g. Cortex-A72 (Pi 4)"),
)


def best_int8_flag(flags: Sequence[str], machine: str) -> str | None:
    """The first flag of :data:`INT8_RATES` this CPU (``flags``, ``machine``) has: its widest int8 instruction."""
    present = set(flags)
    arch = "aarch64" if machine in ("aarch64", "arm64") else machine
    return next((flag for flag, isa_machine, _, _ in INT8_RATES if isa_machine == arch and flag in present), None)


def int8_rate(flags: Sequence[str], machine: str) -> tuple[int | None, str]:
    """int8 MACs per cycle per core for the best ISA extension in ``flags``."""
    best = best_int8_flag(flags, machine)
    for flag, _, rate, why in INT8_RATES:
        if flag == best:
            return rate, f"{flag}: {why}"
    return None, f"no int8 rate known for {machine} with these flags"


def int8_peak(flags: Sequence[str], machine: str, mhz: float | None, cores: int) -> dict[str, Any]:
    """The CPU's int8 peak in MACs per second on ``cores`` cores: the table's MACs per cycle x ``mhz``.

    ``mhz`` is the reported clock: a CPU that boosts past it (or a VM reporting a nominal
    one) runs faster than this says.
    """
    rate, why = int8_rate(flags, machine)
    if rate is None or not mhz:
        return {"macs_per_second": None, "why": why if rate is None else "clock unknown"}
    return {"source": "table x reported clock", "macs_per_cycle_per_core": rate, "mhz": mhz, "cores": cores,
            "macs_per_second": rate * mhz * 1e6 * cores, "why": why,
            "formula": "macs_per_cycle_per_core x mhz x 1e6 x cores"}


def local_int8_peak(info: dict[str, Any], cores: int) -> dict[str, Any]:
    """This machine's :func:`int8_peak` on ``cores`` cores; ``info`` is :func:`benchmarks.device.device_info`'s."""
    from benchmarks.device import local_cpu_flags

    return int8_peak(local_cpu_flags(), info["machine"], info["cpu_max_mhz"], cores)


def tflite_op_macs(path: str | Path) -> list[tuple[str, int]]:
    """``(op name, multiply-accumulates)`` of each operator of a ``.tflite`` model, in execution order.

    Counted for the model's own batch (one face for the shipped models); ops without
    multiply-accumulates (PAD, MEAN, ...) count 0.
    """
    from edgefer.runtime.backends.litert import _interpreter_class

    return _op_macs(_interpreter_class()(model_path=str(path)))


def _op_macs(interp: Any) -> list[tuple[str, int]]:
    shapes = {t["index"]: [int(d) for d in t["shape"]] for t in interp.get_tensor_details()}
    counts = []
    for op in interp._get_ops_details():  # the only way LiteRT exposes its graph from Python
        name, ins, outs = op["op_name"], list(op["inputs"]), list(op["outputs"])
        macs = 0
        if name in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED") and outs:
            out_elems = math.prod(shapes[outs[0]])
            weights = shapes[ins[1]]
            if name == "CONV_2D":
                macs = out_elems * weights[1] * weights[2] * weights[3]
            elif name == "DEPTHWISE_CONV_2D":
                macs = out_elems * weights[1] * weights[2]
            else:
                macs = out_elems * weights[1]
        counts.append((name, macs))
    return counts


def _tflite_macs(path: Path) -> int:
    from edgefer.runtime.backends.litert import _interpreter_class

    interp = _interpreter_class()(model_path=str(path))
    batch = max(1, int(interp.get_input_details()[0]["shape"][0]))
    return sum(macs for _, macs in _op_macs(interp)) // batch


def _onnx_macs(path: Path) -> int:
    try:
        import onnx
        from onnx import shape_inference
    except ImportError:
        raise RuntimeError("counting the MACs of an .onnx model needs the onnx package: pip install onnx") from None
    model = onnx.load(str(path))
    for inp in model.graph.input:  # a symbolic batch axis counts as one face
        dims = inp.type.tensor_type.shape.dim
        if dims and not dims[0].dim_value:
            dims[0].dim_value = 1
    graph = shape_inference.infer_shapes(model).graph
    shapes: dict[str, list[int]] = {}
    for v in list(graph.value_info) + list(graph.output) + list(graph.input):
        shapes[v.name] = [d.dim_value for d in v.type.tensor_type.shape.dim]
    for init in graph.initializer:
        shapes[init.name] = list(init.dims)
    total = 0
    for node in graph.node:
        if node.op_type == "Conv":
            w = shapes[node.input[1]]
            total += math.prod(shapes[node.output[0]]) * w[1] * w[2] * w[3]
        elif node.op_type in ("Gemm", "MatMul"):
            a, out = shapes.get(node.input[0]), shapes.get(node.output[0])
            if a and out:
                total += math.prod(out) * a[-1]
    return total


def count_macs(path: str | Path) -> int:
    """Multiply-accumulates of one face through a ``.tflite`` or ``.onnx`` classifier."""
    path = Path(path)
    if path.suffix == ".tflite":
        return _tflite_macs(path)
    if path.suffix == ".onnx":
        return _onnx_macs(path)
    raise ValueError(f"cannot count the MACs of {path}: only .tflite and .onnx are supported")
