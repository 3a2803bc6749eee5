"""Training on another Keras 3 backend: a tiny run under KERAS_BACKEND=jax (and =torch), TensorFlow blocked, then
converted with TF.

This is the GPU route of train/README.md (a JAX or PyTorch workstation trains, TensorFlow only converts),
shrunk to a toy: the process must finish every step (Grad-CAM included) without TensorFlow, and the
saved model must mean the same thing when TensorFlow loads it. JAX is part of the dev extra; PyTorch
is not (PyPI's Linux wheel is a CUDA build of several GB), so its half runs where torch is installed.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# `import tensorflow` fails in the child: what a JAX-only GPU machine looks like.
_CHILD = """
import sys
sys.modules["tensorflow"] = None
from edgefer.cli import main
sys.exit(main(sys.argv[1:]))
"""


_INSTALL = {"jax": "pip install 'jax[cpu]', part of the dev extra",
            "torch": "pip install torch; a CPU-only build is enough, and much smaller"}


@pytest.fixture(scope="module", params=["jax", "torch"])
def backend_run(request, synthetic_data, tiny_run, tmp_path_factory) -> Path:
    """One run per backend that also distils from a teacher (conftest's TensorFlow-trained tiny run's extractor +
    head): the GPU route of the ablation grid's distilled row, in the same process as every other step (JAX's
    CPU compiles make a second run cost as much as the first)."""
    backend = request.param
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed here ({_INSTALL[backend]})")
    out = tmp_path_factory.mktemp(f"{backend}_run")
    env = {**os.environ, "KERAS_BACKEND": backend, "JAX_PLATFORMS": "cpu"}
    argv = ["train", "--data", str(synthetic_data), "--out", str(out), "--input-size", "32", "--alpha", "0.25",
            "--epochs", "2", "--batch-size", "8", "--lr", "3e-3", "--svm-c", "0.1", "--svm-cv", "2",
            "--bn-momentum", "0.8", "--teacher", str(tiny_run / "cnn.keras"),
            # bfloat16 compute, as a GPU run of the larger networks trains: the saved models still convert alike.
            "--precision", "mixed_bfloat16"]
    proc = subprocess.run([sys.executable, "-c", _CHILD, *argv], env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def test_run_finishes_every_step_without_tensorflow(backend_run):
    meta = json.loads((backend_run / "meta.json").read_text())
    assert meta["head"] == "svm" and meta["training"]["config"]["precision"] == "mixed_bfloat16"
    for name in ("model.keras", "cnn.keras", "gradcam.png", "curves.png", "probabilities.png", "confusion_svm.png"):
        assert (backend_run / name).is_file(), name
    assert meta["figures"]["gradcam"] == "gradcam.png"


def test_trained_model_converts_with_tensorflow(backend_run, synthetic_data, tmp_path):
    from edgefer.convert.run import run_conversion

    meta = json.loads((backend_run / "meta.json").read_text())
    report = run_conversion(backend_run / "model.keras", tmp_path, synthetic_data, synthetic_data, ["onnx"],
                            name="other_backend", num_calib=70, max_drop_points=100.0, min_agreement=0.0)
    # TensorFlow reads the weights as the other backend used them: same validation accuracy ...
    assert report["keras_accuracy"] == pytest.approx(meta["metrics"]["val_svm"]["accuracy"], abs=1e-9)
    (onnx,) = report["artifacts"]
    # ... and the fp32 ONNX export agrees with that Keras model face by face.
    assert onnx["parity"]["agreement"] == 1.0
    assert onnx["temperature"]["temperature"] > 0


def test_distillation_runs_without_tensorflow(backend_run, tiny_run):
    """A teacher's .keras loads and teaches under JAX and PyTorch; its soft targets are cached for a resumed run."""
    record = json.loads((backend_run / "meta.json").read_text())["training"]["distillation"]
    assert record["teacher"] == str(tiny_run / "cnn.keras") and record["teacher_input"]["height"] == 32
    assert (backend_run / "checkpoint" / "teacher.npz").is_file()
