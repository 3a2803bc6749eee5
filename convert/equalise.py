"""Per-channel equalisation of a float head's input, for QDQ models that keep the head in float.

An INT8 model quantises the head's input (the pooled CNN features) with one per-tensor
scale, set by the few channels that reach ~3.5, while most channels stay far below one
step of it: their variation, multiplied by the large weights a folded SVM gives them, is
where most of the INT8 score error comes from (and why :mod:`.condition` replaces the
quietest by their mean). When the head itself stays in float (a 7x1024 linear layer: a
negligible share of the work, which the QDQ format, onnxruntime and TensorRT all allow),
each channel can instead be brought up to a common peak before it is quantised: the layer
that produces it is scaled by ``s`` per channel (``relu(s z) = s relu(z)`` for ``s > 0``)
and the head's weights for it are divided by ``s``. Every channel then uses the int8 grid,
and no feature needs to be dropped.

ReLU6 caps a scaled channel at ``6 / s`` of its original unit, so the scaling is exact in
float only while the channel stays below that; channels are scaled to a peak of
``target`` (1.0) on the calibration faces, which keeps them exact up to ``6 / target``
times that peak. The parity gate measures the result against the original Keras model.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgefer.runtime.preprocess import InputSpec

from .adaround import plain_relu

#: A channel whose calibration peak is below this is treated as dead and left alone.
DEAD = 1e-6


def _producer_chain(model: Any) -> tuple[Any, Any] | str:
    """``(scalable layer, relu)`` whose output reaches the last Dense through linear pooling only, or why not."""
    import keras

    head = model.layers[-1]
    if not isinstance(head, keras.layers.Dense) or head.activation not in (None, keras.activations.linear):
        return "the last layer is not a linear Dense head"
    op = head.input._keras_history.operation
    while isinstance(op, (keras.layers.GlobalAveragePooling2D, keras.layers.Flatten, keras.layers.Dropout)):
        if len(op._outbound_nodes) != 1:
            return f"{op.name} feeds more than the head"
        op = op.input._keras_history.operation
    if not plain_relu(op):
        return f"the head's input comes from {type(op).__name__} {op.name!r}, not a (capped) ReLU"
    relu = op
    op = relu.input._keras_history.operation
    if len(op._outbound_nodes) != 1:
        return f"{op.name} feeds more than the ReLU before the head"
    if isinstance(op, keras.layers.BatchNormalization) and op.scale and op.center:
        return op, relu
    if isinstance(op, (keras.layers.Conv2D, keras.layers.Dense)) and op.use_bias \
            and op.activation in (None, keras.activations.linear):
        return op, relu
    return f"the ReLU before the head follows {type(op).__name__} {op.name!r}, which cannot be scaled per channel"


def equalise_head_input(
    model: Any, calibration: np.ndarray, spec: InputSpec, target: float = 1.0,
) -> tuple[Any, dict[str, Any]]:
    """A copy of ``model`` whose head-input channels peak at ``target`` or more on ``calibration`` (module doc).

    Returns ``(model, record)``; ``model`` itself, with ``record["applied"]`` False and the
    reason, when the head's input is not a scalable layer followed by a ReLU and pooling.
    """
    import keras

    from edgefer.train.data import predict_batches

    chain = _producer_chain(model)
    if isinstance(chain, str):
        return model, {"applied": False, "reason": chain}
    producer, relu = chain
    # Per channel at the ReLU's output, before pooling: the cap applies to each pixel, not to their mean.
    relu_out = predict_batches(keras.Model(model.inputs, relu.output), calibration, spec)
    peaks = relu_out.reshape(-1, relu_out.shape[-1]).max(axis=0).astype(np.float64)
    scale = np.where(peaks > DEAD, np.maximum(1.0, target / np.maximum(peaks, DEAD)), 1.0)
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    layer = clone.get_layer(producer.name)
    weights = layer.get_weights()
    # BatchNormalization: gamma and beta; Conv2D/Dense: the kernel's output channels (last axis) and the bias.
    weights[0] = weights[0] * scale
    weights[1] = weights[1] * scale
    layer.set_weights([w.astype(np.float32) for w in weights])
    kernel, bias = clone.layers[-1].get_weights()
    clone.layers[-1].set_weights([(kernel / scale[:, None]).astype(np.float32), bias])
    cap = relu.max_value
    scaled = scale > 1.0
    return clone, {
        "applied": bool(scaled.any()), "layer": producer.name, "target_peak": target,
        "scaled_channels": int(scaled.sum()), "dead_channels": int((peaks <= DEAD).sum()),
        "channels": int(scale.size), "max_scale": float(scale.max()),
        "exact_below": (f"{float(cap) / target:g}x each scaled channel's calibration peak" if cap is not None
                        else "always (uncapped ReLU)"),
    }
