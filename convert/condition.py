"""INT8 conditioning of a folded head: branches brought to one scale, features int8 cannot see replaced.

An INT8 model quantises the head's input with one per-tensor scale. When that input
concatenates branches of very different ranges (the hybrid: MobileNet's ReLU6 features
reach ~3, its VGG16 projection ~200), the small branch falls below one quantisation step
and the model degrades to chance. A branch produced by a Dense layer with a ReLU or linear
activation can be scaled exactly (``relu(s * z) = s * relu(z)`` for ``s > 0``), with the head's
rows for it divided by ``s``: the float function is unchanged and both branches share the range.

A folded SVM's Dense kernel is ``coef / std`` per feature, so a feature that barely
varies (a nearly dead ReLU channel) gets a huge weight. In an INT8 model that feature's
variation is far below one quantisation step of the shared activation scale, so it carries
no information there, while its weight sets the kernel's quantisation scale and rounds
every other weight of the class to zero. Replacing such features by their calibration
mean (folded into the bias) keeps what INT8 can represent and restores the kernel's
resolution; the parity gate then measures the result against the original Keras model.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgefer.runtime.preprocess import InputSpec


def _head_branches(model) -> list[tuple[Any, int]] | None:
    """``[(producer or None, width)]`` per input of a Concatenate feeding the head, else ``None``.

    The producer is the Dense layer making that branch when it can be rescaled exactly
    (ReLU or linear activation, output read by the Concatenate alone), otherwise ``None``.
    """
    import keras

    source = model.layers[-1].input._keras_history.operation  # the op that made the head's input
    if not isinstance(source, keras.layers.Concatenate):
        return None
    branches = []
    for tensor in source.input:
        op = tensor._keras_history.operation
        # Exact only if nothing else reads the layer's output and its activation is positively homogeneous.
        exact = (isinstance(op, keras.layers.Dense) and len(op._outbound_nodes) == 1
                 and op.activation in (keras.activations.relu, keras.activations.linear))
        branches.append((op if exact else None, int(tensor.shape[-1])))
    return branches


def balance_head_branches(
    model, feats: np.ndarray, min_ratio: float = 2.0,
) -> tuple[Any, np.ndarray, dict[str, float]]:
    """Scale each exactly rescalable head branch to the range of the others (see the module docstring).

    ``feats`` are the head's inputs on calibration faces. Returns the model (a rescaled copy, or
    ``model`` itself when no branch is off by more than ``min_ratio``), its head inputs (``feats``
    with the same columns scaled: the rescaling is exact, so no second forward pass is needed) and
    ``{producer name: scale}``.
    """
    import keras

    branches = _head_branches(model)
    if branches is None or not any(producer for producer, _ in branches):
        return model, feats, {}
    edges = np.cumsum([0] + [width for _, width in branches])
    ranges = [float(np.abs(feats[:, a:b]).max()) for a, b in zip(edges, edges[1:])]
    fixed = [r for (producer, _), r in zip(branches, ranges) if producer is None]
    target = max(fixed) if fixed else max(ranges)
    scales = {producer.name: target / r for (producer, _), r in zip(branches, ranges)
              if producer is not None and r > 0 and max(target / r, r / target) > min_ratio}
    if not scales:
        return model, feats, {}
    feats = feats.copy()
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    kernel, bias = clone.layers[-1].get_weights()
    for (producer, _), a, b in zip(branches, edges, edges[1:]):
        if producer is None or producer.name not in scales:
            continue
        scale = scales[producer.name]
        layer = clone.get_layer(producer.name)
        layer.set_weights([w * scale for w in layer.get_weights()])
        kernel[a:b] /= scale
        feats[:, a:b] *= scale
    clone.layers[-1].set_weights([kernel, bias])
    return clone, feats, scales


def condition_head_for_int8(
    model: Any, calibration: np.ndarray, spec: InputSpec, max_std_steps: float = 0.5,
) -> tuple[Any, dict[str, Any]]:
    """A copy of ``model`` whose final Dense ignores inputs varying less than ``max_std_steps`` int8 steps.

    The step is that of a per-tensor int8 scale covering the head input's range on the real
    ``calibration`` faces. Returns the model (``model`` itself when nothing changes or the
    last layer is not a linear Dense) and what was done, for the manifest.
    """
    import keras

    from edgefer.train.data import predict_batches

    last = model.layers[-1]
    if not isinstance(last, keras.layers.Dense) or last.activation not in (None, keras.activations.linear):
        return model, {"applied": False, "reason": "the last layer is not a linear Dense head"}
    feats = predict_batches(keras.Model(model.inputs, last.input), calibration, spec).astype(np.float64)
    model, feats, branch_scales = balance_head_branches(model, feats)
    last = model.layers[-1]
    kernel, bias = (np.asarray(w, np.float64) for w in last.get_weights())
    step = (max(float(feats.max()), 0.0) - min(float(feats.min()), 0.0)) / 255.0
    hidden = feats.std(axis=0) < max_std_steps * step
    record = {"applied": bool(hidden.any() or branch_scales), "branch_scales": branch_scales,
              "hidden_features": int(hidden.sum()), "features": int(hidden.size),
              "int8_step": step, "max_std_steps": max_std_steps,
              "max_abs_weight_before": float(np.abs(kernel).max())}
    if not hidden.any():
        return model, record
    new_bias = bias + feats[:, hidden].mean(axis=0) @ kernel[hidden]
    new_kernel = kernel.copy()
    new_kernel[hidden] = 0.0
    record["max_abs_weight_after"] = float(np.abs(new_kernel).max())
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    clone.layers[-1].set_weights([new_kernel.astype(np.float32), new_bias.astype(np.float32)])
    return clone, record
