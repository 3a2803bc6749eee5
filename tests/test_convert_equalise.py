"""Equalising a float head's input channels (convert/equalise.py) on small generated Keras models."""

from __future__ import annotations

import numpy as np
import pytest

from edgefer.runtime.preprocess import InputSpec

keras = pytest.importorskip("keras")

SPEC = InputSpec(height=8, width=8, channels=3)


def _model(seed: int = 0, bn: bool = True, relu_max: float | None = 6.0):
    """face -> Conv -> [BN] -> ReLU(6) -> GAP -> Dense(7), channels of very different ranges."""
    keras.utils.set_random_seed(seed)
    inp = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(6, 3, padding="same", use_bias=not bn, name="conv")(inp)
    if bn:
        x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.ReLU(max_value=relu_max, name="relu")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    out = keras.layers.Dense(7, name="head")(x)
    model = keras.Model(inp, out)
    conv = model.get_layer("conv")
    weights = conv.get_weights()
    weights[0] = weights[0] * np.array([1.0, 0.1, 0.01, 0.001, 2.0, 0.5], np.float32)  # spread the channel ranges
    conv.set_weights(weights)
    return model


def _faces(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 8, 8), dtype=np.uint8)


@pytest.mark.parametrize("bn", [True, False])
def test_equalised_model_computes_the_same_scores_with_every_live_channel_up_to_the_target(bn):
    from edgefer.convert.equalise import equalise_head_input
    from edgefer.runtime.preprocess import preprocess_faces

    model = _model(bn=bn)
    calibration = _faces(64, 1)
    equalised, record = equalise_head_input(model, calibration, SPEC)
    assert record["applied"] and record["layer"] == ("bn" if bn else "conv")
    assert record["exact_below"].startswith("6x")
    x = preprocess_faces(calibration, SPEC)
    np.testing.assert_allclose(equalised.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-4, atol=1e-5)
    relu = keras.Model(equalised.inputs, equalised.get_layer("relu").output).predict(x, verbose=0)
    peaks = relu.reshape(-1, relu.shape[-1]).max(0)
    live = peaks > 1e-6
    assert np.all(peaks[live] >= 1.0 - 1e-4) and record["scaled_channels"] >= 3
    assert model.get_layer("head").get_weights()[0] is not equalised.get_layer("head").get_weights()[0]
    np.testing.assert_array_equal(model.get_layer("conv").get_weights()[0],
                                  _model(bn=bn).get_layer("conv").get_weights()[0])  # the original is untouched


def test_a_head_that_cannot_be_equalised_says_why():
    from edgefer.convert.equalise import equalise_head_input

    inp = keras.Input((8, 8, 3))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3, activation="relu")(inp))
    model = keras.Model(inp, keras.layers.Dense(7, activation="softmax")(x))
    same, record = equalise_head_input(model, _faces(8, 2), SPEC)
    assert same is model and not record["applied"] and "linear Dense" in record["reason"]
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3, activation="relu")(inp))
    model = keras.Model(inp, keras.layers.Dense(7)(x))
    same, record = equalise_head_input(model, _faces(8, 2), SPEC)
    assert same is model and "not a (capped) ReLU" in record["reason"]


@pytest.mark.parametrize("int8_head", [False, True])
def test_qdq_conversion_keeps_the_head_in_float_unless_asked(tiny_run, synthetic_data, tmp_path, int8_head):
    """The tiny MobileNet of conftest through `edgefer convert --to onnx:int8 [--onnx-int8-head]`."""
    onnx = pytest.importorskip("onnx")
    from edgefer.cli import main
    from edgefer.convert.onnx_quant import head_nodes
    from edgefer.runtime.manifest import Manifest

    flags = ["--onnx-int8-head"] if int8_head else []
    assert main(["convert", "--model", str(tiny_run / "model.keras"), "--out", str(tmp_path), "--name", "m",
                 "--to", "onnx:int8", "--calib-data", str(synthetic_data), "--calib-faces", "40",
                 "--val-data", str(synthetic_data), "--max-drop", "100", "--min-agreement", "0", *flags]) == 0
    extra = Manifest.load(tmp_path / "m_int8.onnx").extra
    proto = onnx.load(str(tmp_path / "m_int8.onnx"))
    (gemm,) = [n for n in proto.graph.node if n.op_type in ("Gemm", "MatMul")]
    # The head's weights are a plain initializer when it stays in float, a DequantizeLinear output when not.
    producers = {out: n.op_type for n in proto.graph.node for out in n.output}
    weight_source = producers.get(gemm.input[1], "initializer")
    if int8_head:
        assert extra["quantization"]["float_nodes"] == [] and "head_equalisation" not in extra
        assert "int8_conditioning" in extra and weight_source == "DequantizeLinear"
        assert head_nodes(proto.graph) == []  # its output is quantised too: a DequantizeLinear makes the output
    else:
        assert extra["quantization"]["float_nodes"] == [gemm.name] == [n.name for n in head_nodes(proto.graph)]
        assert extra["head_equalisation"]["applied"] and "int8_conditioning" not in extra
        assert weight_source == "initializer"
