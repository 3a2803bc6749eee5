"""Manifests, sha256 checks, the export-format table and the backend registry."""

from __future__ import annotations

import json

import pytest

from edgefer.runtime.backends import BACKEND_NAMES, create_backend
from edgefer.runtime.formats import FORMATS, format_for_path, get_format
from edgefer.runtime.manifest import Manifest, ModelError, sha256_of, sidecar_path
from edgefer.runtime.preprocess import InputSpec


def _write(tmp_path, content=b"model-bytes"):
    art = tmp_path / "m.onnx"
    art.write_bytes(content)
    Manifest("onnx", "fp32", ["a", "b"], InputSpec(), "svm", sha256_of(art)).write(art)
    return art


def test_manifest_round_trip(tmp_path):
    art = _write(tmp_path)
    m = Manifest.load(art)
    assert m.labels == ["a", "b"] and m.head == "svm" and m.input == InputSpec()
    assert sidecar_path(art).name == "m.onnx.json"


def test_manifest_sha_mismatch_is_reported(tmp_path):
    art = _write(tmp_path)
    art.write_bytes(b"tampered")
    with pytest.raises(ModelError, match="does not match its manifest"):
        Manifest.load(art)


def test_manifest_missing_or_broken(tmp_path):
    art = tmp_path / "x.tflite"
    with pytest.raises(ModelError, match="does not exist"):
        Manifest.load(art)
    art.write_bytes(b"x")
    with pytest.raises(ModelError, match="no manifest"):
        Manifest.load(art)
    sidecar_path(art).write_text("{not json")
    with pytest.raises(ModelError, match="not valid JSON"):
        Manifest.load(art)
    sidecar_path(art).write_text(json.dumps({"format": "tflite"}))
    with pytest.raises(ModelError, match="lacks"):
        Manifest.load(art)


def test_format_table_drives_suffixes_and_errors():
    assert format_for_path("a/b.tflite").backend == "litert"
    assert format_for_path("m.ONNX").backend == "onnx"
    assert all(f.backend in BACKEND_NAMES or f.backend == "tensorrt" for f in FORMATS.values())
    with pytest.raises(ValueError, match="valid formats: tflite, onnx"):
        get_format("coreml")
    with pytest.raises(ValueError, match="suffix"):
        format_for_path("model.pt")


def test_unknown_backend_lists_valid_ones():
    with pytest.raises(ValueError, match="valid backends: litert, onnx"):
        create_backend("openvino")


def test_calibration_round_trips_and_is_validated(tmp_path):
    from edgefer.runtime.manifest import Calibration, Manifest, ModelError

    art = tmp_path / "m.onnx"
    art.write_bytes(b"x")
    m = Manifest("onnx", "fp32", ["a", "b"], InputSpec(), "svm", sha256_of(art), calibration=Calibration(1.7, "val", 0.1, 0.02))
    m.write(art)
    assert Manifest.load(art).calibration == Calibration(1.7, "val", 0.1, 0.02)
    data = m.to_dict()
    for bad in ({"temperature": 0}, {"temperature": float("nan")}, {"temperature": 1.0, "colour": 1}, 3):
        with pytest.raises(ModelError, match="calibration"):
            Manifest.from_dict({**data, "calibration": bad})
    without = {k: v for k, v in data.items() if k != "calibration"}
    assert Manifest.from_dict(without).calibration is None


def test_legacy_int8_sample_record_under_calibration_still_loads(tmp_path):
    """Manifests written before the temperature record kept the INT8 calibration sample under 'calibration'."""
    from edgefer.runtime.manifest import Manifest

    art = tmp_path / "m.tflite"
    art.write_bytes(b"x")
    data = Manifest("tflite", "int8", ["a", "b"], InputSpec(), "svm", sha256_of(art)).to_dict()
    data["calibration"] = {"faces": 294, "data": "fer2013", "seed": 0}
    m = Manifest.from_dict(data)
    assert m.calibration is None
    assert m.extra["int8_calibration"] == {"faces": 294, "data": "fer2013", "seed": 0}
