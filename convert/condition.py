"""INT8 conditioning of a folded head: features an int8 model cannot see are replaced by their mean.

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
    kernel, bias = (np.asarray(w, np.float64) for w in last.get_weights())
    feats = predict_batches(keras.Model(model.inputs, last.input), calibration, spec).astype(np.float64)
    step = (max(float(feats.max()), 0.0) - min(float(feats.min()), 0.0)) / 255.0
    hidden = feats.std(axis=0) < max_std_steps * step
    record = {"applied": bool(hidden.any()), "hidden_features": int(hidden.sum()), "features": int(hidden.size),
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
