"""Give chosen operators of a dynamic-range TFLite model their weights back in float.

A dynamic-range model keeps every large weight tensor in int8 and runs each op as a
"hybrid" kernel that quantises its input on the fly. That suits the 1x1 convolutions
(XNNPACK runs them as int8 GEMMs on dynamically quantised rows), but not two others:

- ``DEPTHWISE_CONV_2D``: XNNPACK takes no hybrid depthwise convolution, so it falls back
  to TFLite's own kernel: ``benchmarks/ops.py`` on the shipped model's dynamic-range
  TFLite before this change found it at about 2 MACs per cycle, 60 % of the model's
  time, on the 2-core benchmark machine. XNNPACK runs it in float about five times
  faster, and the depthwise layers hold 3 % of the MACs and 1 % of the weights.
- ``FULLY_CONNECTED``: the folded-SVM head, 7 x 1024 weights whose large values move
  the scores most when rounded, for 0.03 % of the MACs.

The float weights are the int8 ones dequantised (``q x scale`` per channel), so the
model computes the values the int8 weights stand for, without rounding its input.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

FLOAT_WEIGHT_OPS = ("DEPTHWISE_CONV_2D", "FULLY_CONNECTED")


def dequantize_weights(data: bytes, op_names: Sequence[str] = FLOAT_WEIGHT_OPS) -> tuple[bytes, dict[str, int]]:
    """``data`` with the int8 weights (input 1) of every ``op_names`` operator stored as float32.

    Returns the new model and how many operators of each name were changed. Operators
    whose weights are already float (TFLite leaves small tensors unquantised) are kept.
    """
    from edgefer.runtime.backends.litert import flatbuffer_tools

    schema, fu = flatbuffer_tools()
    model = fu.read_model_from_bytearray(bytearray(data))
    changed: dict[str, int] = {}
    for graph in model.subgraphs:
        for op in graph.operators:
            name = fu.opcode_to_name(model, op.opcodeIndex)
            if name not in op_names or len(op.inputs) < 2:
                continue
            weights = graph.tensors[int(op.inputs[1])]
            if weights.type != schema.TensorType.INT8:
                continue
            q = weights.quantization
            stored = model.buffers[weights.buffer].data
            if q is None or q.scale is None or stored is None:
                raise ValueError(f"{name} weights {weights.name!r} are int8 without a scale or data; "
                                 "cannot dequantise them")
            values = np.frombuffer(bytes(stored), np.int8).reshape([int(d) for d in weights.shape])
            scale = np.asarray(q.scale, np.float64)
            zero = np.asarray(q.zeroPoint if q.zeroPoint is not None else [0], np.float64)
            if scale.size > 1:  # per channel along quantizedDimension
                shape = [1] * values.ndim
                shape[int(q.quantizedDimension)] = -1
                scale, zero = scale.reshape(shape), zero.reshape(shape) if zero.size > 1 else zero
            real = ((values.astype(np.float64) - zero) * scale).astype(np.float32)
            model.buffers[weights.buffer].data = np.frombuffer(real.tobytes(), np.uint8)
            weights.type = schema.TensorType.FLOAT32
            weights.quantization = None
            # The op is now a plain float op; its hybrid version number no longer applies.
            model.operatorCodes[op.opcodeIndex].version = 1
            changed[name] = changed.get(name, 0) + 1
    return bytes(fu.convert_object_to_bytearray(model)), changed
