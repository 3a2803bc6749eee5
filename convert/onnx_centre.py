"""Centre bounded activations so symmetric INT8 spends its whole range on them.

Symmetric int8 (zero point 0), which TensorRT requires of a QDQ model, gives a tensor the grid
``k * s`` for ``k`` in [-127, 127]. A ReLU6 output lies in [0, 6] and never uses the negative half,
so its step is 6/127 where an asymmetric grid would give 6/255: every activation after every
ReLU6 carries twice the rounding error it needs to, and those errors add up through MobileNet.

This pass rewrites ``y = Clip(x, lo, hi)`` as ``y - c = Clip(x - c, lo - c, hi - c)`` with
``c = (lo + hi) / 2``, subtracting ``c`` in the producing layer's bias, and adds ``c`` back inside
every consumer: a Conv or Gemm gains ``c * sum(W)`` in its bias and pads with ``-c`` instead of 0
(an explicit ``Pad`` node, or the value of an existing one). Ops that commute with a constant
shift (Transpose, Reshape, Squeeze, pooling...) pass it on. Symmetric calibration then sees
``[-3, 3]`` and gets a step of 3/127.

The sum is taken over the consumer's weights *as the quantiser will round them* (symmetric int8,
per output channel unless told otherwise), not the float ones. With the float sum, the int8 model
would compute ``W_q (y - c) + c sum(W)``, so each weight's rounding error would meet ``y - c``,
mostly near ``-c`` because ReLU outputs are mostly small, instead of ``y``: measured on the
shipped model that cost 3 points of agreement. With the rounded sum the int8 model computes
``W_q y`` exactly as before, only from a finer activation grid. In float the rewritten graph
then differs from the original by ``c * sum(W_q - W)`` per channel, less than half a weight step
times ``c`` per kernel element; the parity gate measures the whole artifact against Keras.

A tensor is centred only when its producer and every consumer can absorb the shift; anything
else (a graph output, a residual Add, an op not listed here) leaves it as it is.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

#: Ops whose output is their input shifted by the same constant when the input is shifted.
SHIFT_TRANSPARENT = frozenset({"Transpose", "Reshape", "Squeeze", "Unsqueeze", "Flatten", "Identity",
                               "GlobalAveragePool", "GlobalMaxPool", "MaxPool"})


@dataclass
class CentreReport:
    """What the pass did: centred Clip outputs (tensor name -> shift) and those it left alone (why)."""

    centred: dict[str, float] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The manifest record: how many activations were centred, and why any were not."""
        return {"centred": len(self.centred), "shifts": sorted({round(v, 4) for v in self.centred.values()}),
                "skipped": dict(sorted(self.skipped.items()))}


class _Graph:
    """Name lookups over an ONNX graph that the pass edits in place."""

    def __init__(self, model: Any) -> None:
        from onnx import numpy_helper

        self.graph = model.graph
        self._np = numpy_helper
        self.init = {t.name: t for t in self.graph.initializer}
        self.producer = {o: n for n in self.graph.node for o in n.output}
        self.consumers: dict[str, list[Any]] = {}
        for node in self.graph.node:
            for name in node.input:
                self.consumers.setdefault(name, []).append(node)
        self.outputs = {o.name for o in self.graph.output}
        self._count = 0

    def const(self, name: str) -> np.ndarray | None:
        """The initializer ``name`` as an array, or None when ``name`` is computed by a node."""
        return self._np.to_array(self.init[name]) if name in self.init else None

    def value(self, name: str) -> np.ndarray:
        """The initializer ``name``, which the caller has already checked is one."""
        return self._np.to_array(self.init[name])

    def shared(self, name: str) -> bool:
        """Whether an initializer feeds more than one input (editing it would change the others)."""
        return len(self.consumers.get(name, [])) > 1

    def own_bias(self, node: Any) -> bool:
        """Whether a Conv/Gemm has no bias, or one that is a constant only it reads (so it can be edited)."""
        if len(node.input) < 3 or not node.input[2]:
            return True
        return self.const(node.input[2]) is not None and not self.shared(node.input[2])

    def new_const(self, base: str, value: np.ndarray) -> str:
        self._count += 1
        name = f"{base}__centred{self._count}"
        self.graph.initializer.append(self._np.from_array(np.asarray(value), name))
        # protobuf's append stores a copy: keep the graph's own message so set_const edits reach it.
        self.init[name] = self.graph.initializer[-1]
        return name

    def set_const(self, name: str, value: np.ndarray) -> None:
        self.init[name].CopyFrom(self._np.from_array(np.asarray(value, self.value(name).dtype), name))


def _attr(node: Any, name: str, default: Any = None) -> Any:
    from onnx import helper

    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def _clip_bounds(g: _Graph, node: Any) -> tuple[float, float] | None:
    if node.op_type != "Clip" or len(node.input) != 3:
        return None
    lo, hi = g.const(node.input[1]), g.const(node.input[2])
    if lo is None or hi is None or lo.size != 1 or hi.size != 1 or not np.isfinite([lo.item(), hi.item()]).all():
        return None
    return float(lo.item()), float(hi.item())


def _absorbers(g: _Graph, tensor: str, seen: list[tuple[Any, str]]) -> str | None:
    """Collect (node, input name) pairs that take the shift on ``tensor``; else say why not."""
    if tensor in g.outputs:
        return "is a graph output"
    for node in g.consumers.get(tensor, []):
        if node.op_type in SHIFT_TRANSPARENT:
            why = _absorbers(g, node.output[0], seen)
            if why:
                return why
        elif node.op_type == "Pad":
            mode = _attr(node, "mode", b"constant")
            value = g.const(node.input[2]) if len(node.input) > 2 and node.input[2] else np.zeros(())
            if mode not in (b"constant", "constant") or value is None or value.size != 1 or value.item() != 0.0:
                return f"feeds a non-zero or non-constant Pad ({node.name or node.output[0]})"
            seen.append((node, tensor))
            why = _absorbers(g, node.output[0], seen)
            if why:
                return why
        elif node.op_type == "Conv" and node.input[0] == tensor and g.const(node.input[1]) is not None:
            if _attr(node, "auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
                return f"feeds a Conv with auto_pad ({node.name or node.output[0]})"
            if not g.own_bias(node):
                return f"feeds a Conv whose bias is not its own constant ({node.name or node.output[0]})"
            seen.append((node, tensor))
        elif (node.op_type == "Gemm" and node.input[0] == tensor and not _attr(node, "transA", 0)
              and g.const(node.input[1]) is not None and g.own_bias(node)):
            seen.append((node, tensor))
        else:
            return f"feeds {node.op_type} ({node.name or node.output[0]}), which cannot absorb a shift"
    return None


def _producer(g: _Graph, clip: Any) -> Any | str:
    """The Conv/Gemm whose own bias can absorb a shift of the Clip's input; else why not."""
    node = g.producer.get(clip.input[0])
    if node is None or node.op_type not in ("Conv", "Gemm") or g.const(node.input[1]) is None:
        return "its input is not made by a Conv or Gemm with constant weights"
    if len(g.consumers.get(clip.input[0], [])) != 1:
        return "its input also feeds other ops"
    if not g.own_bias(node):
        return "its producer's bias is not its own constant"
    return node


def _out_channels_bias(g: _Graph, node: Any) -> np.ndarray:
    w = g.value(node.input[1])
    if len(node.input) > 2 and node.input[2]:
        return g.value(node.input[2]).astype(np.float64)
    if node.op_type == "Conv":
        return np.zeros(w.shape[0])
    return np.zeros(w.shape[0] if _attr(node, "transB", 0) else w.shape[1])


def _set_bias(g: _Graph, node: Any, bias: np.ndarray) -> None:
    dtype = g.value(node.input[1]).dtype
    if len(node.input) > 2 and node.input[2]:
        g.set_const(node.input[2], bias.astype(dtype))
        return
    name = g.new_const(f"{node.output[0]}_bias", bias.astype(dtype))
    if len(node.input) > 2:  # an empty optional bias input ("")
        node.input[2] = name
    else:
        node.input.append(name)


def int8_grid(w: np.ndarray, axis: int | None) -> np.ndarray:
    """``w`` rounded as symmetric int8 (scale ``max|w| / 127`` per slice along ``axis``, or per tensor)."""
    w = np.asarray(w, np.float32)
    if axis is None:
        peak = np.abs(w).max()
    else:
        peak = np.abs(w).max(axis=tuple(i for i in range(w.ndim) if i != axis % w.ndim), keepdims=True)
    scale = np.where(peak > 0, peak / np.float32(127), np.float32(1)).astype(np.float32)
    return np.clip(np.round(w / scale), -127, 127) * scale


def _weight_sum(g: _Graph, node: Any, per_channel: bool, rounded: bool = True) -> np.ndarray:
    """Per output: the sum of the weights one input position meets (what a shift adds).

    The weights are taken as int8 will round them, unless ``rounded`` is False (a node the
    quantiser leaves in float).
    """
    w = g.value(node.input[1])
    if node.op_type == "Conv":
        q = (int8_grid(w, 0 if per_channel else None) if rounded else w).astype(np.float64)
        return q.reshape(q.shape[0], -1).sum(axis=1)
    trans_b = _attr(node, "transB", 0)
    q = (int8_grid(w, (0 if trans_b else 1) if per_channel else None) if rounded else w).astype(np.float64)
    return float(_attr(node, "alpha", 1.0)) * (q.sum(axis=1) if trans_b else q.sum(axis=0))


def _absorb(g: _Graph, node: Any, tensor: str, shift: float, per_channel: bool, rounded: bool = True) -> None:
    """Make ``node`` compute the same output from its input shifted by ``-shift``."""
    from onnx import helper

    if node.op_type == "Pad":
        value = g.new_const(f"{node.output[0]}_value", np.array(-shift, np.float32))
        while len(node.input) < 3:
            node.input.append("")
        node.input[2] = value
        return
    beta = float(_attr(node, "beta", 1.0)) if node.op_type == "Gemm" else 1.0
    if node.op_type == "Gemm" and beta == 0.0:
        raise ValueError(f"Gemm {node.name!r} ignores its bias (beta 0); cannot centre its input")
    _set_bias(g, node, _out_channels_bias(g, node) + shift * _weight_sum(g, node, per_channel, rounded) / beta)
    pads = list(_attr(node, "pads", []) or [])
    if node.op_type == "Conv" and any(pads):
        # Zero padding of the original input is -shift padding of the centred one.
        half = len(pads) // 2
        pad_name = g.new_const(f"{node.output[0]}_pads", np.array([0, 0, *pads[:half], 0, 0, *pads[half:]],
                                                                    np.int64))
        value = g.new_const(f"{node.output[0]}_padvalue", np.array(-shift, np.float32))
        padded = f"{node.output[0]}__centred_pad"
        pad = helper.make_node("Pad", [tensor, pad_name, value], [padded], mode="constant",
                               name=f"{node.name or node.output[0]}_centred_pad")
        nodes = list(g.graph.node)
        g.graph.node.insert(nodes.index(node), pad)
        node.input[0] = padded
        for a in node.attribute:
            if a.name == "pads":
                del a.ints[:]
                a.ints.extend([0] * len(pads))


def _drop_unused(g: _Graph) -> None:
    """Remove initializers no node reads any more (the Clips' old shared bounds)."""
    used = {name for node in g.graph.node for name in node.input} | g.outputs
    keep = [t for t in g.graph.initializer if t.name in used]
    del g.graph.initializer[:]
    g.graph.initializer.extend(keep)


def centre_bounded_activations(model: Any, per_channel: bool = True, ceilings: dict[str, float] | None = None,
                               float_nodes: frozenset[str] = frozenset()) -> CentreReport:
    """Rewrite ``model`` (an fp32 ``onnx.ModelProto``, opset >= 11) in place; see the module docstring.

    ``per_channel`` says how the quantiser will round the weights (symmetric int8 per output
    channel, else per tensor), which the shift absorbed by each consumer is computed with.
    ``ceilings`` maps Clip outputs to the largest value they take on calibration data: a Clip
    whose ceiling is below its upper bound is centred on the middle of ``[lo, ceiling]`` and
    clipped there, which is where MinMax calibration would saturate it anyway (the last ReLU6
    of the shipped MobileNet peaks at 3.5, so it gets a step of 1.75/127 instead of 3/127).
    ``float_nodes`` names nodes the quantiser will leave in float (a float head): a shift
    they absorb is summed over their weights as they are.
    """
    g = _Graph(model)
    report = CentreReport()
    for clip in [n for n in g.graph.node if n.op_type == "Clip"]:
        bounds = _clip_bounds(g, clip)
        name = clip.output[0]
        if bounds is None:
            report.skipped[name] = "its bounds are not finite constants"
            continue
        lo, hi = bounds
        if ceilings and name in ceilings and lo < ceilings[name] < hi:
            hi = float(ceilings[name])
        shift = (lo + hi) / 2
        if lo >= hi or abs(shift) < 1e-12:
            continue
        producer = _producer(g, clip)
        if isinstance(producer, str):
            report.skipped[name] = producer
            continue
        absorbers: list[tuple[Any, str]] = []
        why = _absorbers(g, name, absorbers)
        if why:
            report.skipped[name] = why
            continue
        # The producer's output moves by -shift, so its bias does (for Gemm, scaled by beta).
        beta = float(_attr(producer, "beta", 1.0)) if producer.op_type == "Gemm" else 1.0
        if beta == 0.0:
            report.skipped[name] = "its producer ignores its bias (Gemm beta 0)"
            continue
        _set_bias(g, producer, _out_channels_bias(g, producer) - shift / beta)
        clip.input[1] = g.new_const(f"{name}_min", np.array(lo - shift, np.float32))
        clip.input[2] = g.new_const(f"{name}_max", np.array(hi - shift, np.float32))
        for node, tensor in absorbers:
            _absorb(g, node, tensor, shift, per_channel, rounded=node.name not in float_nodes)
        report.centred[name] = shift
    _drop_unused(g)
    if report.skipped:
        log.info("centring left %d bounded activation(s) as they are: %s", len(report.skipped),
                 "; ".join(f"{k}: {v}" for k, v in report.skipped.items()))
    return report
