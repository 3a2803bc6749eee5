"""AdaRound: learn whether each INT8 weight rounds up or down, so every layer's output survives quantisation.

Rounding each weight to its nearest int8 step minimises the error of the weights, not of the
layer's output, and those errors add up through 28 layers (Nagel et al., "Up or Down? Adaptive
Rounding for Post-Training Quantization", ICML 2020). AdaRound keeps each weight's int8 grid
(the per-channel scale ``max|w| / 127`` that the TFLite converter and onnxruntime compute) and
learns, layer by layer, a soft up/down choice that reconstructs the float layer's output from
the *quantised* model's input, annealed to a hard choice. Here that input also carries the
per-tensor int8 activation rounding of the target format, and the layer's bias (int32 in the
int8 model, so effectively float) is fitted with the rounding: together they offset the error
and the mean shift that the int8 activations bring, which rounding alone cannot.

The result is a copy of the model whose weights already lie on the int8 grid (BatchNorm is
folded for the rounding and unfolded afterwards, so the converter's own folding lands on the
same integers). Each weight moves by less than one quantisation step and each bias a little;
the parity gate still compares every artifact with the original model.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgefer.runtime.preprocess import InputSpec, preprocess_faces

log = logging.getLogger(__name__)

# Rectified sigmoid stretch from the paper: lets h(V) reach exactly 0 and 1.
_ZETA, _GAMMA = 1.1, -0.1
_BATCH = 32


@dataclass(frozen=True)
class ActivationScheme:
    """How the target format quantises activations: per tensor, int8, symmetric (zero point 0) or not.

    ``centred``: bounded activations (ReLU6) are shifted to be centred on zero before symmetric
    rounding, as the QDQ ONNX export does (:mod:`.onnx_centre`).
    """

    symmetric: bool
    centred: bool = False

    def fake_quant(self, x: np.ndarray, lo: float, hi: float, centre: float = 0.0) -> np.ndarray:
        """``x`` rounded to the int8 grid a calibrated range ``[lo, hi]`` gives, back in float.

        ``centre`` is the shift the graph subtracts before quantising this tensor (0: none).
        """
        if centre:
            return (self.fake_quant(x - centre, lo - centre, hi - centre) + np.float32(centre)).astype(np.float32)
        lo, hi = min(lo, 0.0), max(hi, 0.0)
        if hi == lo:
            return x
        if self.symmetric:
            scale = max(-lo, hi) / 127.0
            return (np.clip(np.round(x / scale), -127, 127) * scale).astype(np.float32)
        scale = (hi - lo) / 255.0
        zero = np.round(-128 - lo / scale)
        return ((np.clip(np.round(x / scale) + zero, -128, 127) - zero) * scale).astype(np.float32)


class AdaRoundUnsupported(ValueError):
    """The model is not a single chain of layers AdaRound knows how to replay."""


def _chain_layers(model: Any) -> list[Any]:
    """The model's layers in order, checking that each one reads the previous one's output."""
    import keras

    layers = list(model.layers)
    nested = [layer.name for layer in layers if isinstance(layer, keras.Model)]
    if nested:
        raise AdaRoundUnsupported(f"layer(s) {', '.join(nested)} are nested models, whose weights it cannot reach")
    for prev, layer in zip(layers, layers[1:]):
        inbound = layer.input
        if isinstance(inbound, (list, tuple)) or inbound._keras_history.operation is not prev:
            raise AdaRoundUnsupported(
                f"layer {layer.name!r} does not read only {prev.name!r}: AdaRound replays single-chain models "
                "(MobileNet, VGG16, the small CNNs), not branched ones such as the hybrid"
            )
    if not isinstance(layers[0], keras.layers.InputLayer):
        raise AdaRoundUnsupported("the model does not start with an input layer")
    return layers


def _next_is(layer: Any, kind: type) -> Any:
    nodes = layer._outbound_nodes
    if len(nodes) == 1 and isinstance(nodes[0].operation, kind):
        return nodes[0].operation
    return None


def _folded(layer: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, Any]:
    """``(kernel, bias, bn_scale, last)``: the layer's weights with a following BatchNorm folded in."""
    import keras

    cfg = layer.get_config()
    if cfg.get("groups", 1) != 1 or cfg.get("depth_multiplier", 1) != 1:
        raise AdaRoundUnsupported(f"layer {layer.name!r} is a grouped or multiplied convolution")
    if tuple(cfg.get("dilation_rate", (1, 1))) != (1, 1):
        raise AdaRoundUnsupported(f"layer {layer.name!r} is dilated")
    weights = layer.get_weights()
    kernel = weights[0].astype(np.float64)
    depthwise = isinstance(layer, keras.layers.DepthwiseConv2D)
    channels = kernel.shape[2] if depthwise else kernel.shape[-1]
    bias = weights[1].astype(np.float64) if len(weights) > 1 else np.zeros(channels)
    bn = _next_is(layer, keras.layers.BatchNormalization)
    bn_scale = np.ones(channels)
    last = layer
    if bn is not None:
        gamma, beta, mean, var = (np.asarray(w, np.float64) for w in bn.get_weights())
        bn_scale = gamma / np.sqrt(var + bn.epsilon)
        bias = beta + (bias - mean) * bn_scale
        last = bn
    shaped = bn_scale[None, None, :, None] if depthwise else bn_scale
    return kernel * shaped, bias, bn_scale, last


def plain_relu(layer: Any) -> bool:
    """A ReLU layer with no negative slope and no threshold (``min(max(x, 0), max_value)``)."""
    import keras

    return (isinstance(layer, keras.layers.ReLU) and not float(layer.negative_slope or 0.0)
            and not float(layer.threshold or 0.0))


def _output_op(layer: Any, last: Any) -> tuple[Any, float | None]:
    """The op whose output the rounding reconstructs (a following ReLU, else ``last``) and its clip."""
    import keras

    activation = getattr(layer, "activation", None)
    if activation is keras.activations.relu:
        if last is not layer:
            raise AdaRoundUnsupported(f"layer {layer.name!r} applies ReLU before a BatchNorm, which cannot be folded")
        return layer, np.inf
    if activation not in (None, keras.activations.linear):
        raise AdaRoundUnsupported(f"layer {layer.name!r} has a {activation.__name__} activation")
    relu = _next_is(last, keras.layers.ReLU)
    if relu is None or not plain_relu(relu):
        return last, None
    return relu, float(relu.max_value) if relu.max_value is not None else np.inf


def _requantised(layer: Any) -> bool:
    """Whether the int8 model rounds this layer's output (not when the next op is fused into it)."""
    import keras

    if isinstance(layer, (keras.layers.ZeroPadding2D, keras.layers.Dropout, keras.layers.Flatten,
                          keras.layers.Reshape)):
        return False  # these keep their input's scale
    fusable = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.Dense, keras.layers.BatchNormalization)
    fused_next = _next_is(layer, keras.layers.BatchNormalization) or _next_is(layer, keras.layers.ReLU)
    return not (isinstance(layer, fusable) and fused_next is not None)


def _centre_after(layer: Any, previous: float, peak: float) -> float:
    """The shift a centring export subtracts from this layer's output (see :mod:`.onnx_centre`).

    A capped ReLU's output is centred on the middle of ``[0, min(cap, peak)]``, ``peak`` being
    its largest value on the calibration faces; layers that commute with a constant shift
    (padding, pooling, reshaping) pass their input's shift on; others have none.
    """
    import keras

    if isinstance(layer, keras.layers.ReLU):
        cap = layer.max_value
        if plain_relu(layer) and cap is not None and np.isfinite(float(cap)):
            return min(float(cap), peak) / 2 if peak > 0 else float(cap) / 2
        return 0.0
    passes = (keras.layers.ZeroPadding2D, keras.layers.GlobalAveragePooling2D, keras.layers.GlobalMaxPooling2D,
              keras.layers.MaxPooling2D, keras.layers.Dropout, keras.layers.Flatten, keras.layers.Reshape)
    return previous if isinstance(layer, passes) else 0.0


def _batched(model: Any, x: np.ndarray, batch: int) -> Any:
    """``model(x)`` in inference mode, ``batch`` rows at a time: an array, or a list for several outputs.

    A direct call, not ``predict``: ``predict`` traces a new graph for every sub-model, which cost
    more than the rounding itself on small models (one sub-model per layer).
    """
    outs = [model(x[i : i + batch], training=False) for i in range(0, len(x), batch)]
    if isinstance(outs[0], (list, tuple)):
        return [np.concatenate([np.asarray(o[k]) for o in outs]) for k in range(len(outs[0]))]
    return np.concatenate([np.asarray(o) for o in outs])


def _forward(layer: Any):
    """The layer's linear op as ``f(x, folded_kernel, folded_bias)`` in TensorFlow."""
    import keras
    import tensorflow as tf

    if isinstance(layer, keras.layers.Dense):
        return lambda x, w, b: tf.tensordot(x, w, 1) + b  # Dense acts on the last axis at any rank
    cfg = layer.get_config()
    strides, padding = [1, *cfg["strides"], 1], cfg["padding"].upper()
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return lambda x, w, b: tf.nn.depthwise_conv2d(x, w, strides, padding) + b
    return lambda x, w, b: tf.nn.conv2d(x, w, strides, padding) + b


def _channel_axes(layer: Any, ndim: int) -> tuple[int, ...]:
    """Axes reduced to get one scale per output channel (TFLite's and onnxruntime's per-channel axis)."""
    import keras

    return (0, 1, 3) if isinstance(layer, keras.layers.DepthwiseConv2D) else tuple(range(ndim - 1))


def _round_layer(layer: Any, wf: np.ndarray, bias: np.ndarray, clip: float | None, x: np.ndarray,
                 target: np.ndarray, iterations: int, reg_weight: float, rng: np.random.Generator,
                 learn_bias: bool) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """Learn the up/down rounding of ``layer``'s folded kernel ``wf`` (and folded ``bias``, if ``learn_bias``).

    ``clip`` is the ReLU ceiling applied to the output (``None``: no ReLU). Returns the rounded
    folded kernel, the folded bias and stats.
    """
    import keras
    import tensorflow as tf

    axes = _channel_axes(layer, wf.ndim)
    scale = np.abs(wf).max(axis=axes, keepdims=True) / 127.0
    scale[scale == 0] = 1.0
    ratio = wf / scale
    nearest = np.clip(np.round(ratio), -127, 127)
    floor = np.floor(ratio)
    # Each channel's largest weight stays at +-127: it defines the scale the converter recomputes.
    anchor = np.abs(ratio) >= np.abs(ratio).max(axis=axes, keepdims=True)
    rest = np.clip(ratio - floor, 1e-4, 1 - 1e-4)
    V = tf.Variable(-np.log((_ZETA - _GAMMA) / (rest - _GAMMA) - 1).astype(np.float32))
    # The bias stays float (int32 in the int8 model, far finer than a weight step), so it can absorb
    # the mean shift that the int8 input and the rounded weights cause.
    B = tf.Variable(bias.astype(np.float32))
    floor_t, scale_t = tf.constant(floor.astype(np.float32)), tf.constant(scale.astype(np.float32))
    anchor_t, nearest_t = tf.constant(anchor), tf.constant(nearest.astype(np.float32))
    forward = _forward(layer)

    def soft(v):
        return tf.clip_by_value(tf.sigmoid(v) * (_ZETA - _GAMMA) + _GAMMA, 0.0, 1.0)

    def weights(hard: bool):
        up = tf.cast(soft(V) >= 0.5, tf.float32) if hard else soft(V)
        return tf.where(anchor_t, nearest_t, tf.clip_by_value(floor_t + up, -127.0, 127.0)) * scale_t

    def output(inp, w, b):
        y = forward(inp, w, b)
        return tf.clip_by_value(y, 0.0, clip) if clip is not None else y

    optimizer = keras.optimizers.Adam(1e-3)
    trained = [V, B] if learn_bias else [V]

    @tf.function
    def step(inp, want, beta, reg_on):
        with tf.GradientTape() as tape:
            err = tf.reduce_mean(tf.reduce_sum(tf.square(output(inp, weights(False), B) - want), axis=-1))
            # Pushes every soft choice to 0 or 1; beta anneals from 20 (loose) to 2 (binding).
            reg = tf.reduce_sum(1.0 - tf.pow(tf.abs(2.0 * soft(V) - 1.0), beta))
            loss = err + reg_on * reg_weight * reg
        optimizer.apply_gradients(zip(tape.gradient(loss, trained), trained))

    x_t, y_t = tf.constant(x), tf.constant(target)
    warmup = int(0.2 * iterations)
    for it in range(iterations):
        idx = rng.integers(0, len(x), _BATCH)
        progress = max(0.0, (it - warmup) / max(1, iterations - warmup))
        step(tf.gather(x_t, idx), tf.gather(y_t, idx), tf.constant(20.0 - 18.0 * progress, tf.float32),
             tf.constant(0.0 if it < warmup else 1.0))
    rounded = weights(True).numpy().astype(np.float64)
    new_bias = B.numpy().astype(np.float64) if learn_bias else bias

    def error(w: np.ndarray, b: np.ndarray) -> float:
        w_t, b_t = tf.constant(w.astype(np.float32)), tf.constant(b.astype(np.float32))
        out = np.concatenate([np.asarray(output(x_t[i : i + 256], w_t, b_t)) for i in range(0, len(x), 256)])
        return float(np.mean(np.sum(np.square(out - target), axis=-1)))

    stats = {"error_nearest": error(nearest * scale, bias), "error_adaround": error(rounded, new_bias),
             "flipped": float(np.mean(np.round(rounded / scale) != nearest))}
    if stats["error_adaround"] > stats["error_nearest"]:
        # Never worse than nearest rounding on the faces it was fitted on.
        rounded, new_bias, stats["kept_nearest"] = nearest * scale, bias, 1.0
    return rounded, new_bias, stats


def adaround(
    model: Any, faces: np.ndarray, calibration: np.ndarray, spec: InputSpec, *, symmetric_activations: bool,
    centred_activations: bool = False, iterations: int = 1000, reg_weight: float = 0.01, seed: int = 0,
    learn_bias: bool = True, float_head: bool = False,
) -> tuple[Any, dict[str, Any]]:
    """A copy of ``model`` whose conv/dense weights are AdaRounded onto their per-channel int8 grid.

    ``faces`` (real uint8 training faces) drive the reconstruction; ``calibration`` (the faces
    the converter calibrates on) sets the activation ranges the simulated int8 model uses,
    quantised per tensor as the target format does (``symmetric_activations`` for QDQ ONNX/TensorRT,
    asymmetric for TFLite), with ReLU6 outputs centred first if ``centred_activations`` (what the
    QDQ export does by default). With ``learn_bias`` each layer's bias is fitted with its rounding.
    With ``float_head`` the model's last layer (a head the target keeps in float) is left as it is.
    Raises :class:`AdaRoundUnsupported` for a model that is not one chain.
    """
    import keras
    import tensorflow as tf

    layers = _chain_layers(model)
    for layer in layers:  # fail before any work on a layer the replay cannot fold
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.Dense)):
            _output_op(layer, _folded(layer)[3])
    tf.random.set_seed(seed)
    rng = np.random.default_rng(seed)
    scheme = ActivationScheme(symmetric_activations, centred_activations)
    centre = 0.0
    probe = keras.Model(model.inputs, [layer.output for layer in layers[1:]])
    calib_x = preprocess_faces(calibration, spec)
    ranges = {layer.name: (float(np.min(o)), float(np.max(o)))
              for layer, o in zip(layers[1:], _batched(probe, calib_x, 64))}
    x_float = preprocess_faces(faces, spec)
    x = scheme.fake_quant(x_float, float(calib_x.min()), float(calib_x.max()))
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    per_layer: dict[str, dict[str, float]] = {}
    t0 = time.time()
    for layer, twin in zip(layers[1:], clone.layers[1:]):
        if float_head and layer is model.layers[-1]:
            break  # nothing after the head, and the head itself is not rounded
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.Dense)):
            folded, old_bias, bn_scale, last = _folded(layer)
            op, clip = _output_op(layer, last)
            target = _batched(keras.Model(model.inputs, op.output), x_float, 64)
            bn = last if last is not layer else None
            rounded, new_bias, per_layer[layer.name] = _round_layer(
                layer, folded, old_bias, clip, x, np.asarray(target, np.float32), iterations, reg_weight, rng,
                learn_bias and (bn is not None or getattr(layer, "use_bias", False)))
            shaped = bn_scale[None, None, :, None] if isinstance(layer, keras.layers.DepthwiseConv2D) else bn_scale
            weights = twin.get_weights()
            weights[0] = (rounded / shaped).astype(np.float32)
            if bn is None and len(weights) > 1:
                weights[1] = new_bias.astype(np.float32)
            twin.set_weights(weights)
            if bn is not None:  # the folded bias is BatchNorm's beta plus a constant: move beta by the change
                bn_twin = clone.get_layer(bn.name)
                bn_weights = bn_twin.get_weights()
                bn_weights[1] = (bn_weights[1] + (new_bias - old_bias)).astype(np.float32)
                bn_twin.set_weights(bn_weights)
            log.info("AdaRound %s: output error %.4g -> %.4g (%.1f%% of weights flipped, %.0f s)", layer.name,
                     per_layer[layer.name]["error_nearest"], per_layer[layer.name]["error_adaround"],
                     100 * per_layer[layer.name]["flipped"], time.time() - t0)
        x = _batched(twin, x, 256)
        centre = _centre_after(layer, centre, ranges[layer.name][1]) if scheme.centred else 0.0
        if _requantised(layer):
            x = scheme.fake_quant(x, *ranges[layer.name], centre=centre)
    errors = [(s["error_nearest"], s["error_adaround"]) for s in per_layer.values()]
    record = {"applied": True, "faces": int(len(faces)), "iterations": iterations, "reg_weight": reg_weight,
              "seed": seed, "learn_bias": learn_bias, "float_head": float_head,
              "activations": ("int8 symmetric" if symmetric_activations else "int8 asymmetric")
              + (", ReLU6 outputs centred" if centred_activations else ""),
              "layers": len(per_layer), "seconds": round(time.time() - t0, 1),
              "mean_error_ratio": float(np.mean([a / n for n, a in errors if n > 0])) if errors else 1.0,
              "flipped": float(np.mean([s["flipped"] for s in per_layer.values()])) if per_layer else 0.0}
    return clone, record
