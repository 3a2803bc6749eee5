"""AdaRound: learned rounding lands on the int8 grid the converters recompute, per format.

Runs on the tiny MobileNet of conftest (the shipped architecture at alpha 0.25, 32 px) with
generated faces; the FER2013 figure comes from `edgefer convert --adaround` (convert/README.md).
"""

from __future__ import annotations

import numpy as np
import pytest

from edgefer.convert.adaround import ActivationScheme, AdaRoundUnsupported, adaround
from edgefer.convert.exporters import ExportOptions
from edgefer.convert.run import run_conversion, sample_calibration
from edgefer.runtime.datasets import load_dataset
from edgefer.runtime.manifest import Manifest
from edgefer.runtime.preprocess import InputSpec


def _expected_ints(model) -> dict[str, np.ndarray]:
    """Per conv/dense layer: its BatchNorm-folded kernel divided by its per-channel scale max|w|/127."""
    import keras

    ints = {}
    for layer in model.layers:
        if not isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.Dense)):
            continue
        kernel = layer.get_weights()[0].astype(np.float64)
        depthwise = isinstance(layer, keras.layers.DepthwiseConv2D)
        nodes = layer._outbound_nodes
        if nodes and isinstance(nodes[0].operation, keras.layers.BatchNormalization):
            bn = nodes[0].operation
            gamma, _, _, var = bn.get_weights()
            s = gamma / np.sqrt(var + bn.epsilon)
            kernel = kernel * (s[None, None, :, None] if depthwise else s)
        axes = (0, 1, 3) if depthwise else tuple(range(kernel.ndim - 1))
        ints[layer.name] = kernel / (np.abs(kernel).max(axis=axes, keepdims=True) / 127.0)
    return ints


@pytest.fixture(scope="module")
def tiny(tiny_run, synthetic_data):
    import json

    import keras

    model = keras.models.load_model(tiny_run / "model.keras")
    spec = InputSpec.from_dict(json.loads((tiny_run / "meta.json").read_text())["input"])
    train = load_dataset(synthetic_data, "train", (spec.height, spec.width))
    return model, spec, sample_calibration(train, 64, 1), sample_calibration(train, 70, 0)


@pytest.fixture(scope="module")
def rounded(tiny):
    model, spec, faces, calibration = tiny
    return adaround(model, faces, calibration, spec, symmetric_activations=False, iterations=60)


def test_every_weight_lands_on_its_int8_grid_with_each_channel_scale_kept(tiny, rounded):
    model, record = rounded
    ints = _expected_ints(model)
    assert len(ints) == record["layers"] == 28  # 13 depthwise + 13 pointwise + conv1 + the folded head
    for name, q in ints.items():
        assert np.abs(q - np.round(q)).max() < 1e-3, name
        assert np.abs(np.round(q)).max() == 127, name  # so the converter recomputes the same scale
    # Something was learned: some weights round the other way than nearest rounding would.
    assert 0 < record["flipped"] < 0.5
    assert record["mean_error_ratio"] <= 1.0


def test_tflite_int8_holds_exactly_the_adarounded_integers(tiny, rounded, tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    from edgefer.convert.tflite import export_tflite

    model, _ = rounded
    _, spec, _, calibration = tiny
    path = tmp_path / "ada_int8.tflite"
    export_tflite(model, "int8", spec, path, calibration)
    interp = Interpreter(model_path=str(path))
    stored = []
    for t in interp.get_tensor_details():
        if np.dtype(t["dtype"]) == np.int8 and t["quantization_parameters"]["scales"].size > 1:
            stored.append(interp.get_tensor(t["index"]))
    for name, q in _expected_ints(model).items():
        q = np.round(q).astype(np.int8)
        # TFLite layouts: conv OHWI, depthwise 1HWC, fully connected (out, in).
        want = q.T if q.ndim == 2 else q[..., 0][None] if "_dw_" in name else q.transpose(3, 0, 1, 2)
        assert any(s.shape == want.shape and np.array_equal(s, want) for s in stored), name


def test_qdq_onnx_holds_exactly_the_adarounded_integers(tiny, rounded, tmp_path):
    import onnx
    from onnx import numpy_helper

    from edgefer.convert.onnx_export import export_onnx
    from edgefer.convert.onnx_quant import quantize_onnx_int8

    model, _ = rounded
    _, spec, _, calibration = tiny
    export_onnx(model, spec, tmp_path / "ada_fp32.onnx")
    quantize_onnx_int8(tmp_path / "ada_fp32.onnx", tmp_path / "ada_int8.onnx", calibration, spec)
    proto = onnx.load(str(tmp_path / "ada_int8.onnx"))
    stored = [numpy_helper.to_array(t) for t in proto.graph.initializer if t.data_type == onnx.TensorProto.INT8]
    for name, q in _expected_ints(model).items():
        q = np.round(q).astype(np.int8)
        # ONNX layouts: conv (O, I, kh, kw), depthwise as a grouped conv (C, 1, kh, kw), MatMul (in, out).
        want = q if q.ndim == 2 else q.transpose(2, 3, 0, 1) if "_dw_" in name else q.transpose(3, 2, 0, 1)
        assert any(s.shape == want.shape and np.array_equal(s, want) for s in stored), name


def test_each_int8_format_gets_its_own_rounding_and_records_it(tiny_run, synthetic_data, tmp_path):
    options = ExportOptions(adaround=("tflite", "onnx"), adaround_iterations=20, adaround_faces=70)
    report = run_conversion(tiny_run / "model.keras", tmp_path, synthetic_data, synthetic_data,
                            ["tflite:int8", "onnx:int8"], name="ada", num_calib=70, max_drop_points=100.0,
                            min_agreement=0.0, options=options)
    assert report["adaround"]["tflite"]["activations"] == "int8 asymmetric"
    assert report["adaround"]["onnx"]["activations"] == "int8 symmetric, ReLU6 outputs centred"
    for artifact in ("ada_int8.tflite", "ada_int8.onnx"):
        record = Manifest.load(tmp_path / artifact).extra["adaround"]
        assert record["applied"] and record["iterations"] == 20 and record["faces"] == 70


def test_a_branched_model_is_refused_before_any_work(tiny):
    import keras

    _, spec, faces, calibration = tiny
    inputs = keras.Input((spec.height, spec.width, spec.channels))
    a = keras.layers.Conv2D(4, 3)(inputs)
    b = keras.layers.Conv2D(4, 3)(inputs)
    out = keras.layers.Dense(7)(keras.layers.GlobalAveragePooling2D()(keras.layers.Add()([a, b])))
    with pytest.raises(AdaRoundUnsupported, match="single-chain"):
        adaround(keras.Model(inputs, out), faces, calibration, spec, symmetric_activations=True, iterations=1)


def test_conversion_refuses_adaround_for_a_branched_model_with_what_to_do(tmp_path, synthetic_data):
    import keras

    from edgefer.convert.run import ConversionError

    from .convert_models import SPEC, save_run

    inputs = keras.Input((SPEC.height, SPEC.width, SPEC.channels))
    a = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(inputs))
    b = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(inputs))
    model = keras.Model(inputs, keras.layers.Dense(7, name="svm_head")(keras.layers.Concatenate()([a, b])))
    path = save_run(model, tmp_path, "linear", 10)
    with pytest.raises(ConversionError, match="convert without --adaround"):
        run_conversion(path, tmp_path / "art", synthetic_data, synthetic_data, ["tflite:int8"], num_calib=20,
                       options=ExportOptions(adaround=("tflite",), adaround_iterations=5, condition_int8_head=False))


@pytest.mark.parametrize("symmetric", [True, False])
def test_activation_fake_quant_matches_the_int8_grid(symmetric):
    x = np.linspace(-1.0, 3.0, 101, dtype=np.float32)
    y = ActivationScheme(symmetric).fake_quant(x, -1.0, 3.0)
    step = 3.0 / 127 if symmetric else 4.0 / 255
    assert np.abs(y - x).max() <= step / 2 + 1e-6
    assert len(np.unique(np.round(y / step, 3))) <= (255 if symmetric else 256)
    assert np.abs(y - x).max() > 0


def test_bias_moves_only_when_learned_and_the_float_model_stays_close(tiny, rounded):
    model, spec, faces, calibration = tiny
    fixed, record = adaround(model, faces, calibration, spec, symmetric_activations=True, iterations=10,
                             learn_bias=False)
    assert record["learn_bias"] is False and record["activations"] == "int8 symmetric"
    betas = [name for name in (layer.name for layer in model.layers) if name.endswith("_bn")]
    for name in betas:
        assert np.array_equal(fixed.get_layer(name).get_weights()[1], model.get_layer(name).get_weights()[1])
    learned, _ = rounded
    assert any(not np.array_equal(learned.get_layer(n).get_weights()[1], model.get_layer(n).get_weights()[1])
               for n in betas)
    # Rounding moves each weight by less than one int8 step: the float function barely changes.
    from edgefer.runtime.preprocess import preprocess_faces

    x = preprocess_faces(faces, spec)
    before, after = model.predict(x, verbose=0), learned.predict(x, verbose=0)
    assert np.abs(after - before).max() < 0.25 * np.abs(before).max()


def test_adaround_on_an_onnx_artifact_says_to_pass_the_keras_model(tmp_path, synthetic_data):
    from edgefer.convert.run import ConversionError

    onnx_path = tmp_path / "m_fp32.onnx"
    onnx_path.write_bytes(b"not read")
    with pytest.raises(ConversionError, match="pass the model.keras"):
        run_conversion(onnx_path, tmp_path / "art", synthetic_data, synthetic_data, ["tensorrt:int8"],
                       options=ExportOptions(adaround=("onnx",)))
