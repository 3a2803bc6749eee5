"""Dynamic-range TFLite: depthwise and head weights go back to float, exactly what int8 stood for."""

from __future__ import annotations

import numpy as np
import pytest

from edgefer.convert.tflite_weights import dequantize_weights


def _grid_model():
    """Depthwise (1,152 weights) + Dense (2,048) whose weights lie on their per-channel int8 grid."""
    import keras

    rng = np.random.default_rng(0)
    inp = keras.Input((6, 6, 128))
    dw = keras.layers.DepthwiseConv2D(3, padding="same")
    head = keras.layers.Dense(16)
    model = keras.Model(inp, head(keras.layers.GlobalAveragePooling2D()(dw(inp))))

    def on_grid(shape, axis):
        k = rng.integers(-127, 128, size=shape)
        k = np.moveaxis(k, axis, -1)
        k[..., 0, :] = 127  # every channel reaches 127, so the converter's scale is exactly `step`
        k = np.moveaxis(k.reshape(np.moveaxis(np.empty(shape), axis, -1).shape), -1, axis)
        step = rng.uniform(0.001, 0.01, size=shape[axis])
        return (k * step.reshape([-1 if i == axis else 1 for i in range(len(shape))])).astype(np.float32)

    dw.set_weights([on_grid((3, 3, 128, 1), 2), rng.normal(size=128).astype(np.float32)])
    head.set_weights([on_grid((128, 16), 1), rng.normal(size=16).astype(np.float32)])
    return model


def _run(data: bytes, x: np.ndarray) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_content=data)
    interp.resize_tensor_input(interp.get_input_details()[0]["index"], list(x.shape))
    interp.allocate_tensors()
    interp.set_tensor(interp.get_input_details()[0]["index"], x)
    interp.invoke()
    return interp.get_tensor(interp.get_output_details()[0]["index"])


def test_dynamic_model_gets_float_depthwise_and_head_weights():
    tf = pytest.importorskip("tensorflow")
    model = _grid_model()
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    hybrid = converter.convert()
    floated, changed = dequantize_weights(hybrid)
    assert changed == {"DEPTHWISE_CONV_2D": 1, "FULLY_CONNECTED": 1}

    x = np.random.default_rng(1).normal(size=(2, 6, 6, 128)).astype(np.float32)
    keras_out = model.predict(x, verbose=0)
    # On-grid weights dequantise to themselves: the float model is the Keras model; the hybrid
    # one also rounds its input to int8 on the fly and is measurably off.
    assert np.abs(_run(floated, x) - keras_out).max() < 1e-4
    assert np.abs(_run(hybrid, x) - keras_out).max() > 1e-3
    again, changed_again = dequantize_weights(floated)
    assert changed_again == {} and _run(again, x) == pytest.approx(_run(floated, x))


def test_model_without_int8_weights_is_left_alone():
    tf = pytest.importorskip("tensorflow")
    data = tf.lite.TFLiteConverter.from_keras_model(_grid_model()).convert()
    out, changed = dequantize_weights(data)
    assert changed == {} and len(out) == pytest.approx(len(data), rel=0.01)
