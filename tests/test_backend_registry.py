"""The backend registry (one record per backend) and the onnx backend's choice of execution providers."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from edgefer.runtime.backends import BACKENDS, BACKEND_NAMES, backend_for_suffix, create_backend, get_backend
from edgefer.runtime.formats import FORMATS, format_for_path

GPU_BUILD = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]


def test_one_record_per_backend_owns_suffixes_probe_and_install_hint():
    assert BACKEND_NAMES == ("litert", "onnx", "tensorrt")
    for name, record in BACKENDS.items():
        assert record.name == name and record.suffixes and record.probe and record.install
        assert backend_for_suffix(record.suffixes[0].upper()) is record
        assert name in str(record.unavailable()) and record.install in str(record.unavailable())
    # the export formats name their backend; suffix and install hint come from its record
    for fmt in FORMATS.values():
        assert fmt.suffix == BACKENDS[fmt.backend].suffixes[0] and fmt.needs == BACKENDS[fmt.backend].install
        assert format_for_path(f"x/m{fmt.suffix}") is fmt
    assert backend_for_suffix(".pt") is None
    assert BACKENDS["onnx"].providers[-1] == "CPUExecutionProvider"
    assert not BACKENDS["litert"].providers and not BACKENDS["tensorrt"].providers


def test_probe_reflects_what_is_importable(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime" else real(name))
    assert not get_backend("onnx").installed()
    from edgefer.runtime import classifier

    assert not classifier.backend_installed("onnx")


@pytest.mark.parametrize("name", ["native", "openvino"])
def test_unknown_backend_names_the_valid_ones(name):
    with pytest.raises(ValueError, match=f"unknown backend '{name}'; valid backends: litert, onnx, tensorrt"):
        create_backend(name)


def test_providers_apply_to_onnx_only():
    with pytest.raises(ValueError, match="onnx backend only"):
        create_backend("litert", providers=["CPUExecutionProvider"])


def test_provider_choice_prefers_tensorrt_then_cuda_then_cpu():
    from edgefer.runtime.backends.onnx import choose_providers, parse_providers

    assert choose_providers(GPU_BUILD) == GPU_BUILD
    assert choose_providers(["CUDAExecutionProvider", "CPUExecutionProvider"]) == [
        "CUDAExecutionProvider", "CPUExecutionProvider"]
    # a build's other providers (e.g. Azure) are never picked on their own; CPU is always there
    assert choose_providers(["AzureExecutionProvider", "CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    assert choose_providers([]) == ["CPUExecutionProvider"]
    # an explicit choice is kept in its order, short names expanded
    assert parse_providers("cuda, cpu") == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert parse_providers("") is None and parse_providers(None) is None
    assert choose_providers(GPU_BUILD, ["cpu"]) == ["CPUExecutionProvider"]
    assert choose_providers(GPU_BUILD, ["cuda", "TensorrtExecutionProvider"]) == [
        "CUDAExecutionProvider", "TensorrtExecutionProvider"]
    with pytest.raises(ValueError, match="this onnxruntime has no CUDAExecutionProvider; it has CPUExecutionProvider"):
        choose_providers(["CPUExecutionProvider"], ["cuda"])


def _faces(spec, n=2):
    return np.random.default_rng(0).uniform(-1, 1, (n, spec.height, spec.width, spec.channels)).astype(np.float32)


def test_onnx_backend_runs_on_cpu_and_says_so(caplog):
    pytest.importorskip("onnxruntime")
    from edgefer.runtime.classifier import EmotionClassifier

    with caplog.at_level(logging.INFO, logger="edgefer"):
        clf = EmotionClassifier(backend="onnx", providers=["cpu"])
    try:
        assert clf.backend_info()["providers"] == ["CPUExecutionProvider"]
        assert clf.backend.infer(_faces(clf.spec)).shape == (2, len(clf.labels))
    finally:
        clf.close()
    assert any("runs on CPUExecutionProvider" in r.getMessage() for r in caplog.records)


def test_onnx_backend_asks_onnxruntime_for_the_chosen_providers(monkeypatch, tmp_path):
    """With a GPU build's provider list (faked), the session is asked for TensorRT, CUDA, CPU, with an engine cache."""
    ort = pytest.importorskip("onnxruntime")
    from edgefer.runtime.backends.onnx import OnnxBackend
    from edgefer.runtime.classifier import default_model
    from edgefer.runtime.manifest import Manifest

    asked = {}
    real_session = ort.InferenceSession

    def session(path, opts, providers, provider_options):
        asked.update(providers=providers, options=provider_options)
        return real_session(path, opts, providers=["CPUExecutionProvider"])  # this machine has no GPU

    monkeypatch.setattr(ort, "get_available_providers", lambda: GPU_BUILD)
    monkeypatch.setattr(ort, "InferenceSession", session)
    monkeypatch.setenv("CACHE_DIRECTORY", str(tmp_path))
    path = default_model("onnx")
    backend = OnnxBackend()
    backend.load(path, Manifest.load(path))
    assert asked["providers"] == GPU_BUILD
    assert asked["options"][0] == {"trt_engine_cache_enable": True,
                                   "trt_engine_cache_path": str(tmp_path / "onnxruntime-trt")}
    assert asked["options"][1:] == [{}, {}]
    assert backend.info()["providers"] == ["CPUExecutionProvider"]  # what the session really runs on
    backend.close()
    # an explicit choice overrides the preference
    backend = OnnxBackend(providers=["cuda"])
    backend.load(path, Manifest.load(path))
    assert asked["providers"] == ["CUDAExecutionProvider"]
    backend.close()
