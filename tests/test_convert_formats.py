"""The export-format table, target resolution and the parity gate's verdicts (no conversion runs)."""

from __future__ import annotations

import numpy as np
import pytest

from edgefer.convert.exporters import ExportOptions
from edgefer.convert.parity import Parity, top2_margins
from edgefer.convert.run import ConversionError, resolve_targets
from edgefer.runtime.formats import FORMATS, all_targets, get_format, parse_target


def _names(targets):
    return [f"{f.name}:{p}" for f, p in targets]


def test_table_lists_every_precision_the_issue_asks_for():
    assert FORMATS["tflite"].precisions == ("fp32", "fp16", "dynamic", "int8")
    assert FORMATS["onnx"].precisions == ("fp32", "int8")
    assert FORMATS["tensorrt"].precisions == ("fp16", "int8") and not FORMATS["tensorrt"].portable
    assert _names(all_targets()) == ["tflite:fp32", "tflite:fp16", "tflite:dynamic", "tflite:int8",
                                     "onnx:fp32", "onnx:int8"]
    assert "tensorrt:int8" in _names(all_targets(portable_only=False))


def test_bare_format_keeps_the_shipping_defaults():
    assert parse_target("tflite") == (FORMATS["tflite"], "int8")
    assert parse_target("onnx") == (FORMATS["onnx"], "fp32")
    assert FORMATS["tflite"].artifact_name("default", "int8") == "default_int8.tflite"
    assert FORMATS["onnx"].artifact_name("default", "fp32") == "default_fp32.onnx"


def test_unknown_format_or_precision_lists_the_valid_ones():
    with pytest.raises(ValueError, match="valid formats: tflite, onnx, tensorrt"):
        get_format("coreml")
    with pytest.raises(ValueError, match="valid precisions for onnx: fp32, int8"):
        parse_target("onnx:fp16")
    with pytest.raises(ConversionError, match="--to 'tflite:int4'.*fp32, fp16, dynamic, int8"):
        resolve_targets(["tflite:int4"], ExportOptions())


def test_targets_come_after_what_they_are_built_from():
    qdq = _names(resolve_targets(["tensorrt:int8", "onnx:int8", "tflite"], ExportOptions()))
    assert qdq == ["onnx:fp32", "onnx:int8", "tensorrt:int8", "tflite:int8"]
    entropy = _names(resolve_targets(["tensorrt:int8"], ExportOptions(trt_int8_route="entropy")))
    assert entropy == ["onnx:fp32", "tensorrt:int8"]
    assert _names(resolve_targets(["tensorrt:fp16"], ExportOptions())) == ["onnx:fp32", "tensorrt:fp16"]
    assert len(resolve_targets(["all", "tflite:int8", "onnx"], ExportOptions())) == 6


def _parity(artifact_acc: float, agreement: float) -> Parity:
    return Parity("out/m_int8.tflite", 1000, 0.70, artifact_acc, 0.6, agreement, max_drop_points=1.0,
                  min_agreement=0.98)


def test_gate_checks_drop_and_agreement_and_says_by_how_much():
    assert _parity(0.695, 0.99).passed
    drop = _parity(0.68, 0.99)
    assert not drop.passed
    assert drop.failures == ["accuracy drop 2.00 points vs Keras exceeds the allowed 1 by 1.00 points"]
    disagree = _parity(0.70, 0.955)
    assert not disagree.passed
    assert disagree.failures == ["agreement 95.50 % is 2.50 points below the required 98 %"]
    text = _parity(0.68, 0.955).describe()
    assert text.startswith("m_int8.tflite:") and "FAILED" in text and "drop 2.00" in text and "95.50 %" in text
    assert _parity(0.68, 0.955).to_dict()["passed"] is False


def test_gate_says_how_close_the_disagreements_were():
    np.testing.assert_allclose(top2_margins(np.array([[0.1, 2.0, 1.5], [3.0, -1.0, 0.0]])), [0.5, 3.0])
    tied = _parity(0.70, 0.985)
    tied.margin_median, tied.disagreement_margin_median = 0.9, 0.03
    text = tied.describe()
    assert "median of 0.03" in text and "all faces 0.9" in text
    assert tied.to_dict()["disagreement_margin_median"] == 0.03
    assert "margin" not in _parity(0.70, 1.0).describe()
