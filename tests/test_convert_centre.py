"""Centring ReLU6 outputs for symmetric INT8 (convert/onnx_centre.py) on hand-built ONNX graphs.

The graphs are small and generated here; the FER2013 figure comes from `edgefer convert`
(results/conversion/, convert/README.md).
"""

from __future__ import annotations

import numpy as np
import pytest

from edgefer.convert.adaround import ActivationScheme
from edgefer.convert.onnx_centre import centre_bounded_activations, int8_grid

onnx = pytest.importorskip("onnx")


def _graph(rng: np.random.Generator, on_grid: bool, tail: str = "gemm"):
    """face (N,3,8,8) -> Conv(pads 1) -> ReLU6 -> Pad(0) -> depthwise Conv(stride 2) -> ReLU6
    -> depthwise Conv(pads 1) -> ReLU6 -> GAP -> Flatten -> Gemm.

    ``tail="add"`` makes the second ReLU6 feed a residual Add instead, which cannot absorb a shift.
    """
    from onnx import TensorProto, helper, numpy_helper

    def weights(*shape, axis=0):
        w = rng.normal(0, 0.5, shape).astype(np.float32)
        return int8_grid(w, axis).astype(np.float32) if on_grid else w

    def bias(n):
        return rng.normal(0, 1, n).astype(np.float32)

    arrays = {"w1": weights(4, 3, 3, 3), "b1": bias(4), "w2": weights(4, 1, 3, 3), "b2": bias(4),
              "w4": weights(4, 1, 3, 3), "b4": bias(4), "w3": weights(4, 7, axis=1), "b3": np.zeros(7, np.float32),
              "zero": np.array(0.0, np.float32), "six": np.array(6.0, np.float32),
              "pads": np.array([0, 0, 0, 0, 0, 0, 1, 1], np.int64)}
    inits = [numpy_helper.from_array(value, name) for name, value in arrays.items()]
    nodes = [
        helper.make_node("Conv", ["face", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Clip", ["c1", "zero", "six"], ["r1"]),
        helper.make_node("Pad", ["r1", "pads"], ["p1"], mode="constant"),
        helper.make_node("Conv", ["p1", "w2", "b2"], ["c2"], group=4, strides=[2, 2]),
        helper.make_node("Clip", ["c2", "zero", "six"], ["r2"]),
    ]
    if tail == "gemm":
        nodes += [helper.make_node("Conv", ["r2", "w4", "b4"], ["c4"], group=4, pads=[1, 1, 1, 1]),
                  helper.make_node("Clip", ["c4", "zero", "six"], ["r4"]),
                  helper.make_node("GlobalAveragePool", ["r4"], ["g"]), helper.make_node("Flatten", ["g"], ["f"]),
                  helper.make_node("Gemm", ["f", "w3", "b3"], ["logits"])]
        out = helper.make_tensor_value_info("logits", TensorProto.FLOAT, [None, 7])
    else:
        nodes += [helper.make_node("Add", ["r2", "r2"], ["logits"])]
        out = helper.make_tensor_value_info("logits", TensorProto.FLOAT, [None, 4, 4, 4])
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("face", TensorProto.FLOAT, [None, 3, 8, 8])],
                              [out], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)


def _run(model, x):
    import onnxruntime as ort

    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"face": x})[0]


def _values(model, name):
    from onnx import numpy_helper

    return {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}[name]


@pytest.fixture
def x():
    return np.random.default_rng(1).uniform(-1, 1, (5, 3, 8, 8)).astype(np.float32)


def test_centred_graph_computes_the_same_function_when_weights_are_on_the_int8_grid(x):
    model = _graph(np.random.default_rng(0), on_grid=True)
    before = _run(model, x)
    report = centre_bounded_activations(model)
    onnx.checker.check_model(model)
    assert report.to_dict() == {"centred": 3, "shifts": [3.0], "skipped": {}}
    np.testing.assert_allclose(_run(model, x), before, rtol=1e-5, atol=1e-4)
    clips = [n for n in model.graph.node if n.op_type == "Clip"]
    assert [(float(_values(model, c.input[1])), float(_values(model, c.input[2]))) for c in clips] == [(-3, 3)] * 3
    # The existing Pad now pads with -3; the padded Conv reading a centred tensor got an explicit Pad(-3)
    # and no padding of its own; the first Conv reads the (uncentred) input and keeps its own.
    pads = [n for n in model.graph.node if n.op_type == "Pad"]
    assert len(pads) == 2 and [float(_values(model, p.input[2])) for p in pads] == [-3.0, -3.0]
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    assert [[list(a.ints) for a in c.attribute if a.name == "pads"] for c in convs] == [
        [[1, 1, 1, 1]], [], [[0, 0, 0, 0]]]
    assert convs[2].input[0] == pads[1].output[0]
    # The Clips' old shared bounds are gone rather than left as dead initializers.
    assert not {"zero", "six"} & {t.name for t in model.graph.initializer}


def test_off_grid_weights_absorb_the_shift_with_their_int8_rounding(x):
    rng = np.random.default_rng(0)
    model = _graph(rng, on_grid=False)
    w2 = _values(model, "w2").astype(np.float64)
    b2 = _values(model, "b2").astype(np.float64)
    centre_bounded_activations(model)
    depthwise = [n for n in model.graph.node if n.op_type == "Conv"][1]
    # Consumer bias gains 3 * sum(W_q); the producer's -3 comes after (this Conv also feeds the 2nd Clip).
    want = b2 + 3 * int8_grid(w2, 0).astype(np.float64).reshape(4, -1).sum(1) - 3
    np.testing.assert_allclose(_values(model, depthwise.input[2]), want, rtol=1e-6, atol=1e-5)


def test_int8_grid_is_the_one_onnxruntime_stores(tmp_path, x):
    """The shift is absorbed with the weights as onnxruntime rounds them: check against its QDQ model."""
    from onnx import numpy_helper
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    model = _graph(np.random.default_rng(0), on_grid=False)
    onnx.save(model, str(tmp_path / "fp32.onnx"))

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter([{"face": x}])

        def get_next(self):
            return next(self.batches, None)

    quantize_static(str(tmp_path / "fp32.onnx"), str(tmp_path / "int8.onnx"), Reader(), quant_format=QuantFormat.QDQ,
                    per_channel=True, activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                    extra_options={"ActivationSymmetric": True, "WeightSymmetric": True})
    q = onnx.load(str(tmp_path / "int8.onnx"))
    init = {t.name: numpy_helper.to_array(t) for t in q.graph.initializer}
    for name, axis in (("w1", 0), ("w2", 0), ("w4", 0), ("w3", 1)):
        dq = next(n for n in q.graph.node if n.op_type == "DequantizeLinear" and n.output[0].startswith(name))
        scale = init[dq.input[1]].reshape([-1 if i == axis else 1 for i in range(init[dq.input[0]].ndim)])
        stored = init[dq.input[0]].astype(np.float32) * scale
        np.testing.assert_allclose(int8_grid(_values(model, name), axis), stored, rtol=0, atol=1e-7)


def test_a_calibrated_ceiling_below_the_clip_bound_centres_on_the_middle_of_the_calibrated_range():
    model = _graph(np.random.default_rng(0), on_grid=True)
    report = centre_bounded_activations(model, ceilings={"r1": 4.0, "r2": 7.5, "r4": 0.0})
    # r1 peaks at 4 (below 6): centred on 2 and clipped at [-2, 2]. A ceiling above the bound (r2)
    # or at/below the floor (r4, a dead ReLU) leaves the Clip's own bounds in charge.
    assert report.centred == {"r1": 2.0, "r2": 3.0, "r4": 3.0}
    clips = [n for n in model.graph.node if n.op_type == "Clip"]
    assert [(float(_values(model, c.input[1])), float(_values(model, c.input[2]))) for c in clips] == [
        (-2.0, 2.0), (-3.0, 3.0), (-3.0, 3.0)]


def test_a_conv_with_an_empty_optional_bias_gets_one_of_its_own(x):
    model = _graph(np.random.default_rng(0), on_grid=True)
    last_conv = [n for n in model.graph.node if n.op_type == "Conv"][2]
    last_conv.input[2] = ""  # ONNX's "no bias": the conv must gain one in that slot, not a 4th input
    before = _run(model, x)
    assert centre_bounded_activations(model).to_dict()["centred"] == 3
    onnx.checker.check_model(model)
    assert len(last_conv.input) == 3 and last_conv.input[2]
    np.testing.assert_allclose(_run(model, x), before, rtol=1e-5, atol=1e-4)


def test_an_unbounded_clip_is_left_alone(x):
    from onnx import numpy_helper

    model = _graph(np.random.default_rng(0), on_grid=True)
    model.graph.initializer.append(numpy_helper.from_array(np.array(np.inf, np.float32), "inf"))
    clip = next(n for n in model.graph.node if n.op_type == "Clip" and n.output[0] == "r2")
    clip.input[2] = "inf"
    before = _run(model, x)
    report = centre_bounded_activations(model)
    assert "r2" not in report.centred and "finite" in report.skipped["r2"]
    np.testing.assert_allclose(_run(model, x), before, rtol=1e-5, atol=1e-4)


def test_a_clip_that_feeds_a_residual_add_is_left_alone_with_the_reason(x):
    model = _graph(np.random.default_rng(0), on_grid=True, tail="add")
    before = _run(model, x)
    report = centre_bounded_activations(model)
    assert report.to_dict()["centred"] == 1
    assert "Add" in report.skipped["r2"] and "cannot absorb" in report.skipped["r2"]
    np.testing.assert_allclose(_run(model, x), before, rtol=1e-5, atol=1e-4)


def test_centred_fake_quant_halves_the_step_of_a_relu6_output():
    y = np.linspace(0.0, 6.0, 1001, dtype=np.float32)
    plain = ActivationScheme(True).fake_quant(y, 0.0, 6.0)
    centred = ActivationScheme(True, centred=True).fake_quant(y, 0.0, 6.0, centre=3.0)
    assert np.abs(plain - y).max() == pytest.approx(3.0 / 127, rel=1e-3)  # half of 6/127
    assert np.abs(centred - y).max() == pytest.approx(1.5 / 127, rel=1e-3)  # half of 3/127
    assert centred.min() == 0.0 and centred.max() == pytest.approx(6.0)


@pytest.mark.parametrize("centre", [True, False])
def test_symmetric_qdq_conversion_centres_the_relu6_outputs_and_records_it(tiny_run, synthetic_data, tmp_path, centre):
    """The tiny MobileNet of conftest through `edgefer convert --to onnx:int8 [--no-onnx-centring]`."""
    from onnx import numpy_helper

    from edgefer.cli import main
    from edgefer.runtime.manifest import Manifest

    flags = [] if centre else ["--no-onnx-centring"]
    assert main(["convert", "--model", str(tiny_run / "model.keras"), "--out", str(tmp_path), "--name", "m",
                 "--to", "onnx:int8", "--calib-data", str(synthetic_data), "--calib-faces", "40",
                 "--val-data", str(synthetic_data), "--max-drop", "100", "--min-agreement", "0", *flags]) == 0
    record = Manifest.load(tmp_path / "m_int8.onnx").extra["quantization"]["centred_activations"]
    proto = onnx.load(str(tmp_path / "m_int8.onnx"))
    init = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}
    # TensorRT's requirement holds either way: every zero point is 0.
    zero_points = [init[n.input[2]] for n in proto.graph.node if n.op_type == "QuantizeLinear" and len(n.input) > 2]
    assert zero_points and all(not np.any(z) for z in zero_points)
    clips = [(float(init[n.input[1]]), float(init[n.input[2]])) for n in proto.graph.node if n.op_type == "Clip"]
    if centre:
        assert record["centred"] == 27 and record["skipped"] == {}  # 13 dw + 13 pw + conv1 ReLU6s
        # Each on the middle of its calibrated range [0, peak <= 6]: the bounds are +-shift.
        assert all(0 < s <= 3.0 for s in record["shifts"])
        assert all(lo == pytest.approx(-hi) and 0 < hi <= 3.0 for lo, hi in clips) and len(clips) == 27
        assert {round(hi, 4) for _, hi in clips} == set(record["shifts"])
        assert any(n.op_type == "Pad" for n in proto.graph.node)
    else:
        assert record is None and clips == [(0.0, 6.0)] * 27


def test_a_float_head_absorbs_the_shift_with_its_weights_as_they_are(x):
    """A Gemm the quantiser leaves in float: the centred fp32 graph is then exact at the head."""
    model = _graph(np.random.default_rng(0), on_grid=False)
    gemm = next(n for n in model.graph.node if n.op_type == "Gemm")
    gemm.name = "head"
    w3 = _values(model, "w3").astype(np.float64)
    centre_bounded_activations(model, float_nodes=frozenset({"head"}))
    # b3 was zero: the head's bias is now exactly 3 * the float column sums of its weights.
    np.testing.assert_allclose(_values(model, gemm.input[2]), 3 * w3.sum(0), rtol=1e-6)
    rounded = _graph(np.random.default_rng(0), on_grid=False)
    centre_bounded_activations(rounded)
    head = next(n for n in rounded.graph.node if n.op_type == "Gemm")
    np.testing.assert_allclose(_values(rounded, head.input[2]), 3 * int8_grid(w3, 1).astype(np.float64).sum(0),
                               rtol=1e-6)


def test_head_nodes_finds_the_final_linear_layer():
    from onnx import TensorProto, helper, numpy_helper

    from edgefer.convert.onnx_quant import head_nodes

    def graph(nodes, inits):
        return helper.make_graph(nodes, "g", [helper.make_tensor_value_info("f", TensorProto.FLOAT, [None, 4])],
                                 [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 7])],
                                 [numpy_helper.from_array(np.zeros(s, np.float32), n) for n, s in inits.items()])

    gemm = graph([helper.make_node("Gemm", ["f", "w", "b"], ["y"], name="g")], {"w": (4, 7), "b": (7,)})
    assert [n.name for n in head_nodes(gemm)] == ["g"]
    matmul_add = graph([helper.make_node("MatMul", ["f", "w"], ["m"], name="mm"),
                        helper.make_node("Add", ["m", "b"], ["y"], name="add")], {"w": (4, 7), "b": (7,)})
    assert [n.name for n in head_nodes(matmul_add)] == ["add", "mm"]
    softmax = graph([helper.make_node("Gemm", ["f", "w", "b"], ["z"]), helper.make_node("Softmax", ["z"], ["y"])],
                    {"w": (4, 7), "b": (7,)})
    assert head_nodes(softmax) == []
