"""TensorRT: engine/device compatibility, clear errors without TensorRT, and real builds on a GPU.

The build-and-run tests need TensorRT's python bindings, cuda-python or pycuda, and a CUDA
GPU; without them they skip saying which is missing.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from edgefer.runtime.backends import BACKEND_NAMES, BackendUnavailable, create_backend
from edgefer.runtime.backends.tensorrt import engine_mismatch
from edgefer.runtime.manifest import Manifest, ModelError, sha256_of, sidecar_path
from edgefer.runtime.preprocess import InputSpec

BUILT = {"version": "10.3.0", "compute_capability": "8.7", "device": "Orin"}


def test_engine_from_the_same_stack_is_accepted():
    assert engine_mismatch(BUILT, "10.3.0", "8.7") is None


def test_engine_mismatch_names_version_and_gpu():
    why = engine_mismatch(BUILT, "10.7.0", "8.6")
    assert "built with TensorRT 10.3.0, this device has 10.7.0" in why
    assert "compute capability 8.7 (Orin), this GPU is 8.6" in why
    assert "does not say" in engine_mismatch(None, "10.3.0", "8.7")


def _gpu_ready() -> str | None:
    """Why the GPU tests cannot run here, or ``None``."""
    if importlib.util.find_spec("tensorrt") is None:
        return "TensorRT python bindings are not installed (python3-libnvinfer / pip install tensorrt)"
    if importlib.util.find_spec("cuda") is None and importlib.util.find_spec("pycuda") is None:
        return "neither cuda-python nor pycuda is installed"
    try:
        from edgefer.runtime.backends.cuda_mem import CudaContext

        CudaContext().close()
    except Exception as exc:  # no driver, no device: any CUDA failure means no GPU here
        return f"no usable CUDA GPU: {exc}"
    return None


def test_tensorrt_backend_is_registered_and_reports_missing_library(tmp_path):
    assert "tensorrt" in BACKEND_NAMES
    if importlib.util.find_spec("tensorrt") is not None:
        pytest.skip("TensorRT is installed here; the missing-library message cannot be observed")
    engine = tmp_path / "m_int8.engine"
    engine.write_bytes(b"not an engine")
    manifest = Manifest("tensorrt", "int8", ["a", "b"], InputSpec(), "svm", sha256_of(engine),
                        extra={"tensorrt": BUILT})
    with pytest.raises(BackendUnavailable, match="TensorRT's python bindings"):
        create_backend("tensorrt").load(engine, manifest)


def test_convert_to_tensorrt_without_tensorrt_fails_before_any_work(tmp_path):
    if importlib.util.find_spec("tensorrt") is not None:
        pytest.skip("TensorRT is installed here")
    from edgefer.convert.run import ConversionError, run_conversion

    model = tmp_path / "never-loaded.keras"
    model.write_bytes(b"the check comes before TensorFlow loads anything")
    with pytest.raises(ConversionError, match="builds the engine on the GPU device.*TensorRT's python bindings"):
        run_conversion(model, tmp_path, tmp_path, tmp_path, ["tensorrt:fp16"])


@pytest.fixture(scope="module")
def gpu() -> None:
    why = _gpu_ready()
    if why:
        pytest.skip(f"TensorRT engine tests need a CUDA GPU with TensorRT: {why}")


@pytest.fixture(scope="module")
def engines(gpu, synthetic_data, tmp_path_factory):
    """fp16 and INT8 (QDQ) engines of the two-branch hybrid model, parity-gated by `run_conversion`."""
    from edgefer.convert.run import run_conversion
    from edgefer.runtime.datasets import load_dataset

    from .convert_models import SPEC, save_run, two_branch_model

    root = tmp_path_factory.mktemp("trt")
    ds = load_dataset(synthetic_data, "train", (SPEC.height, SPEC.width))
    _, hybrid = two_branch_model(ds.images, ds.labels)
    model = save_run(hybrid, root / "run", "linear", len(ds))
    report = run_conversion(model, root / "art", synthetic_data, synthetic_data, ["tensorrt:fp16", "tensorrt:int8"],
                            name="hybrid", num_calib=70)
    return root / "art", report


def test_engines_pass_parity_and_record_their_stack(engines):
    art, report = engines
    names = [Path(a["path"]).name for a in report["artifacts"]]
    assert names == ["hybrid_fp32.onnx", "hybrid_fp16.engine", "hybrid_int8.onnx", "hybrid_int8.engine"]
    assert all(a["parity"]["passed"] for a in report["artifacts"])
    import tensorrt as trt

    rec = Manifest.load(art / "hybrid_int8.engine").extra["tensorrt"]
    assert rec["version"] == trt.__version__ and rec["int8_route"] == "qdq" and rec["built_from"] == "hybrid_int8.onnx"


def test_engine_runs_batches_larger_than_its_profile(engines):
    from edgefer.runtime.classifier import EmotionClassifier

    art, _ = engines
    faces = np.random.default_rng(0).integers(0, 255, (70, 32, 32), dtype=np.uint8)
    trt_scores = EmotionClassifier(art / "hybrid_fp16.engine").predict_dataset(faces, batch_size=70)
    onnx_scores = EmotionClassifier(art / "hybrid_fp32.onnx").predict_dataset(faces, batch_size=70)
    assert trt_scores.shape == (70, 7)
    np.testing.assert_allclose(trt_scores, onnx_scores, atol=0.05 * np.abs(onnx_scores).max())


def test_mismatched_engine_is_refused_with_rebuild_message(engines, tmp_path):
    from edgefer.runtime.classifier import EmotionClassifier

    art, _ = engines
    engine = tmp_path / "old.engine"
    shutil.copy(art / "hybrid_fp16.engine", engine)
    data = json.loads(sidecar_path(art / "hybrid_fp16.engine").read_text())
    data["tensorrt"]["version"] = "8.5.2"
    sidecar_path(engine).write_text(json.dumps(data))
    with pytest.raises(ModelError, match="built with TensorRT 8.5.2.*rebuild it on this device"):
        EmotionClassifier(engine)


def test_entropy_calibrator_route_builds_an_int8_engine(gpu, engines, synthetic_data, tmp_path):
    """The TensorRT 8.x route: fp32 ONNX + IInt8EntropyCalibrator2 on the same real faces."""
    import tensorrt as trt

    from edgefer.convert.tensorrt_build import build_engine
    from edgefer.runtime.datasets import load_dataset

    if int(trt.__version__.split(".")[0]) >= 11:
        pytest.skip(f"TensorRT {trt.__version__} has removed implicit INT8 calibration")
    art, _ = engines
    faces = load_dataset(synthetic_data, "train", (32, 32)).images[:64]
    record = build_engine(art / "hybrid_fp32.onnx", tmp_path / "e.engine", "int8", InputSpec(32, 32, 3),
                          "entropy", faces)
    assert record["int8_route"] == "entropy" and (tmp_path / "e.engine").stat().st_size > 0


def test_onnx_model_only_builds_engines(tmp_path):
    from edgefer.convert.run import ConversionError, run_conversion

    onnx_file = tmp_path / "m_fp32.onnx"
    onnx_file.write_bytes(b"checked only after the targets")
    with pytest.raises(ConversionError, match="only TensorRT engines can be built.*not tflite"):
        run_conversion(onnx_file, tmp_path / "out", None, tmp_path, ["tflite"])


def test_engine_built_on_device_from_the_onnx_artifact(engines, synthetic_data, tmp_path):
    """The TensorFlow-free route: the QDQ ONNX artifact -> INT8 engine, gated against that ONNX model."""
    from edgefer.convert.run import run_conversion

    art, _ = engines
    report = run_conversion(art / "hybrid_int8.onnx", tmp_path, None, synthetic_data, ["tensorrt:int8"],
                            name="device")
    (entry,) = report["artifacts"]
    assert entry["parity"]["passed"] and entry["parity"]["reference"] == "ONNX hybrid_int8.onnx"
    assert Manifest.load(tmp_path / "device_int8.engine").extra["tensorrt"]["built_from"] == "hybrid_int8.onnx"
