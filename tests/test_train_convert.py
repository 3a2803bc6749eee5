"""The workstation path on a tiny model: train -> SVM fold -> INT8 TFLite / ONNX -> parity."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgefer.runtime.classifier import EmotionClassifier
from edgefer.runtime.datasets import load_dataset
from edgefer.runtime.labels import EMOTIONS
from edgefer.runtime.manifest import Manifest, sha256_of


def test_training_writes_every_output(tiny_run: Path):
    for name in ("cnn.keras", "model.keras", "svm.joblib", "meta.json", "report.txt", "confusion_svm.png",
                 "confusion_softmax.png", "history.csv", "checkpoint/last.keras"):
        assert (tiny_run / name).is_file(), name
    meta = json.loads((tiny_run / "meta.json").read_text())
    assert meta["labels"] == list(EMOTIONS) and meta["head"] == "svm"
    assert meta["svm"]["C"] in (0.01, 0.1)
    m = meta["metrics"]
    assert 0 <= m["val_svm"]["accuracy"] <= 1 and 0 <= m["val_softmax"]["accuracy"] <= 1
    # The generated classes are separable stripes: even the toy run must learn them.
    assert m["val_svm"]["accuracy"] > 0.5
    assert meta["svm"]["fold_agreement"] == 1.0
    assert (tiny_run / "confusion_svm.png").read_bytes()[:4] == b"\x89PNG"


def _fold_check(tiny_run: Path, images: np.ndarray, labels: np.ndarray) -> None:
    import keras

    from edgefer.train.data import predict_batches
    from edgefer.train.model import feature_model
    from edgefer.train.svm import fit_linear_svm, fold_svm

    cnn = keras.models.load_model(tiny_run / "cnn.keras")
    meta = json.loads((tiny_run / "meta.json").read_text())
    from edgefer.runtime.preprocess import InputSpec

    spec = InputSpec.from_dict(meta["input"])
    feats = predict_batches(feature_model(cnn), images, spec)
    assert feats.std(axis=0).max() > 1e-3, "features are degenerate; the check would prove nothing"
    head = fit_linear_svm(feats, labels, [0.1])
    folded = predict_batches(fold_svm(cnn, head), images, spec)
    sk = head.decision_function(feats)
    np.testing.assert_allclose(folded, sk, rtol=1e-3, atol=1e-3 * np.abs(sk).max())
    assert np.array_equal(folded.argmax(1), head.predict(feats))


def test_folded_svm_equals_sklearn_on_generated_faces(tiny_run, synthetic_data):
    ds = load_dataset(synthetic_data, "val", (32, 32))
    _fold_check(tiny_run, ds.images, ds.labels)


def test_folded_svm_equals_sklearn_on_real_fer_features(tiny_run, fer_root):
    """CNN features of real FER2013 faces, LinearSVC fitted on them, folded: identical predictions."""
    ds = load_dataset(fer_root, "val", (32, 32), limit_per_class=60)
    _fold_check(tiny_run, ds.images, ds.labels)


def test_artifacts_have_complete_manifests(tiny_artifacts: Path):
    tfl = tiny_artifacts / "tiny_int8.tflite"
    onx = tiny_artifacts / "tiny_fp32.onnx"
    for art in (tfl, onx):
        m = Manifest.load(art)
        assert m.sha256 == sha256_of(art)
        assert m.labels == list(EMOTIONS) and m.head == "svm"
        assert (m.input.height, m.input.width, m.input.channels) == (32, 32, 3)
        assert m.extra["metrics"]["samples"] > 0
        assert m.extra["training"]["train_faces"] == 280
    assert Manifest.load(tfl).input_quantization["dtype"] == "int8"
    assert Manifest.load(tfl).extra["int8_calibration"]["faces"] == 70
    report = json.loads((tiny_artifacts / "tiny.conversion.json").read_text())
    assert {a["format"] for a in report["artifacts"]} == {"tflite", "onnx"}


def test_tflite_is_full_integer(tiny_artifacts: Path):
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(tiny_artifacts / "tiny_int8.tflite"))
    assert interp.get_input_details()[0]["dtype"] == np.int8
    assert interp.get_output_details()[0]["dtype"] == np.int8


def test_onnx_metadata_props(tiny_artifacts: Path):
    import onnx

    props = {p.key: p.value for p in onnx.load(str(tiny_artifacts / "tiny_fp32.onnx")).metadata_props}
    assert json.loads(props["labels"]) == list(EMOTIONS)
    assert props["head"] == "svm"


def test_artifacts_agree_with_keras(tiny_run, tiny_artifacts, synthetic_data):
    import keras

    from edgefer.train.data import predict_batches

    ds = load_dataset(synthetic_data, "val", (32, 32))
    model = keras.models.load_model(tiny_run / "model.keras")
    clf = EmotionClassifier(tiny_artifacts / "tiny_int8.tflite")
    keras_scores = predict_batches(model, ds.images, clf.spec)
    onnx_scores = EmotionClassifier(tiny_artifacts / "tiny_fp32.onnx").predict_dataset(ds.images)
    np.testing.assert_allclose(onnx_scores, keras_scores, atol=1e-3 * np.abs(keras_scores).max())
    int8_pred = clf.predict_dataset(ds.images).argmax(1)
    # A 6-epoch toy quantises coarsely; the shipped model's agreement is measured on FER2013 (its manifest).
    assert (int8_pred == keras_scores.argmax(1)).mean() >= 0.7


def test_convert_gate_fails_with_nonzero_exit(tiny_run, synthetic_data, tmp_path):
    """A parity threshold no artifact can meet makes `edgefer convert` exit non-zero, saying by how much."""
    proc = subprocess.run(
        [sys.executable, "-m", "edgefer", "convert", "--model", str(tiny_run / "model.keras"), "--out",
         str(tmp_path), "--to", "onnx", "--calib-data", str(synthetic_data), "--val-data", str(synthetic_data),
         "--max-drop", "-1"],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "FAILED" in proc.stderr and "points" in proc.stderr


def test_convert_rejects_unknown_format(tiny_run, synthetic_data, tmp_path):
    from edgefer.convert.run import ConversionError, run_conversion

    with pytest.raises(ConversionError, match="valid formats"):
        run_conversion(tiny_run / "model.keras", tmp_path, synthetic_data, synthetic_data, ["coreml"])


def test_resume_continues_from_checkpoint(tiny_run, synthetic_data, tmp_path):
    """--resume with as many epochs as already done skips fitting and reuses the best CNN."""
    import shutil

    from edgefer.train.trainer import TrainConfig, run_training

    out = tmp_path / "run"
    shutil.copytree(tiny_run, out, ignore=shutil.ignore_patterns("artifacts"))
    state = json.loads((out / "checkpoint" / "state.json").read_text())
    meta = run_training(TrainConfig(
        data=str(synthetic_data), out=str(out), input_size=32, alpha=0.25, epochs=state["epoch"], batch_size=8,
        svm_c=[0.1], augment=False, resume=True, bn_momentum=0.8,
    ))
    before = json.loads((tiny_run / "meta.json").read_text())
    assert meta["metrics"]["val_softmax"] == before["metrics"]["val_softmax"]
