"""fp32 targets need no training faces: only INT8 is calibrated."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgefer.convert.run import ConversionError, run_conversion
from edgefer.runtime.manifest import Manifest


def test_fp32_targets_convert_without_calibration_faces(tiny_run, synthetic_data, tmp_path):
    report = run_conversion(tiny_run / "model.keras", tmp_path, None, synthetic_data, ["onnx:fp32", "tflite:fp32"],
                            name="f32", max_drop_points=100.0, min_agreement=0.0)
    assert report["int8_calibration"] is None
    assert sorted(Path(a["path"]).name for a in report["artifacts"]) == ["f32_fp32.onnx", "f32_fp32.tflite"]
    for artifact in ("f32_fp32.onnx", "f32_fp32.tflite"):
        manifest = Manifest.load(tmp_path / artifact)
        assert manifest.precision == "fp32" and manifest.extra.get("int8_calibration") is None
        assert manifest.calibration is not None  # the temperature is still fitted, on the validation faces


def test_an_int8_target_without_calibration_faces_says_what_to_pass(tiny_run, synthetic_data, tmp_path):
    with pytest.raises(ConversionError, match="--calib-data is required for INT8 targets"):
        run_conversion(tiny_run / "model.keras", tmp_path, None, synthetic_data, ["onnx:fp32", "tflite:int8"])
    assert list(tmp_path.iterdir()) == []  # refused before any work
