"""`edgefer train` / `edgefer baseline` end to end on generated data: protocols, heads, transfer, k-fold, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgefer.runtime.labels import EMOTIONS

from .train_fixtures import write_ckplus48, write_rafdb

TINY = dict(input_size=32, alpha=0.5, batch_size=16, lr=3e-3, augment=False, bn_momentum=0.8, seed=0)


@pytest.fixture(scope="module")
def ck48(tmp_path_factory) -> Path:
    return write_ckplus48(tmp_path_factory.mktemp("ck48"), subjects=6, per_subject=3)


@pytest.fixture(scope="module")
def rbf_run(synthetic_data, tmp_path_factory) -> Path:
    from edgefer.train.trainer import TrainConfig, run_training

    out = tmp_path_factory.mktemp("rbf_run")
    run_training(TrainConfig(data=str(synthetic_data), out=str(out), model="cnn2", head="rbf-svm", epochs=3,
                             rbf_c=[1.0, 10.0], svm_cv=2, rff_components=2048, **TINY))
    return out


def test_subject_protocol_with_svm_top_and_class_weights(ck48, tmp_path):
    import keras

    from edgefer.train.trainer import TrainConfig, run_training

    meta = run_training(TrainConfig(data=str(ck48), out=str(tmp_path), dataset="ckplus48", protocol="subject",
                                    test_fraction=0.34, model="cnn2", head="svm-top", balance="weights", epochs=3,
                                    **TINY))
    assert meta["head"] == "svm" and meta["head_kind"] == "svm-top" and meta["svm"] is None
    assert meta["dataset"] == {"layout": "ckplus48", "protocol": "subject", "fold": None,
                               "test": "ckplus48 subject: test", "test_faces": 42}
    assert set(meta["metrics"]) == {"val_svm_top", "test_svm_top", "val_svm_top_flip", "test_svm_top_flip"}
    report = json.loads((tmp_path / "data_report.json").read_text())
    assert len(report["test_subjects"]) == 2 and report["train"] + report["val"] + report["test"] == 126
    # training.sources: who trained, who selected, who was only tested (eval-cross holds out the last).
    sources = {s["role"]: s for s in meta["training"]["sources"]}
    assert {s["dataset"] for s in sources.values()} == {"ckplus"}
    assert sources["test"]["subjects"] == sorted(report["test_subjects"])
    assert not set(sources["test"]["subjects"]) & set(sources["train"]["subjects"] + sources["validation"]["subjects"])
    assert sum(s["faces"] for s in sources.values()) == 126
    for name in ("model.keras", "cnn.keras", "confusion_svm_top.json", "confusion_test_svm_top.png",
                 "roc_test_svm_top.json", "curves.png", "probabilities.png", "gradcam.png", "report.txt"):
        assert (tmp_path / name).is_file(), name
    model = keras.models.load_model(tmp_path / "model.keras")
    assert model.layers[-1].name == "svm_head" and model.layers[-1].activation.__name__ == "linear"
    assert meta["figures"] == {"training_curves": "curves.png", "probability_bars": "probabilities.png",
                               "gradcam": "gradcam.png"}


def test_rbf_head_records_grid_agreement_and_softmax_difference(rbf_run):
    meta = json.loads((rbf_run / "meta.json").read_text())
    svm = meta["svm"]
    assert svm["kind"] == "rbf" and svm["C"] in (1.0, 10.0) and len(svm["cv_accuracy"]) == 6
    assert svm["approximation"] == "random Fourier features, D=2048"
    assert 0.0 <= svm["fold_agreement"] <= 1.0
    m = meta["metrics"]
    assert {"val_softmax", "val_svm", "val_svm_folded"} <= set(m)
    assert m["svm_minus_softmax_points"] == round((m["val_svm"]["accuracy"] - m["val_softmax"]["accuracy"]) * 100, 2)
    # The exact RBF SVM must learn the separable generated classes.
    assert m["val_svm"]["accuracy"] > 0.5
    assert (rbf_run / "roc_svm_folded.json").is_file() and (rbf_run / "svm.joblib").is_file()


def test_transfer_fine_tunes_a_trained_extractor(rbf_run, ck48, tmp_path):
    from edgefer.train.trainer import TrainConfig, run_training

    meta = run_training(TrainConfig(data=str(ck48), out=str(tmp_path), dataset="ckplus48", protocol="published",
                                    test_fraction=0.2, head="softmax", init_from=str(rbf_run / "model.keras"),
                                    epochs=1, **TINY))
    assert meta["architecture"]["name"] == "cnn2" and meta["architecture"]["init_from"].endswith("model.keras")
    assert meta["head"] == "softmax" and "test_softmax" in meta["metrics"]
    assert meta["dataset"]["test_faces"] == 25


def test_hog_baseline_subject_kfold(ck48, tmp_path):
    from edgefer.train.classical import BaselineConfig, run_baseline

    meta = run_baseline(BaselineConfig(data=str(ck48), out=str(tmp_path), dataset="ckplus48", protocol="kfold",
                                       folds=3, features="hog"))
    assert meta["kfold"]["folds"] == 3 and len(meta["kfold"]["per_fold"]) == 3
    assert meta["metrics"]["test_svm"]["samples"] == 126
    per_fold = [f["test_svm"]["accuracy"] for f in meta["kfold"]["per_fold"]]
    assert meta["metrics"]["test_svm"]["accuracy"] == pytest.approx(np.mean(per_fold))
    assert all((tmp_path / f"fold_{i:02d}" / "confusion_test_svm.json").is_file() for i in range(3))
    assert meta["architecture"]["name"] == "hog" and meta["svm"]["C"] in (0.0001, 0.001, 0.01, 0.1)


def test_pca_baseline_on_rafdb_official_split(tmp_path):
    from edgefer.train.classical import BaselineConfig, run_baseline

    root = write_rafdb(tmp_path / "raf", per_class=6)
    meta = run_baseline(BaselineConfig(data=str(root), out=str(tmp_path / "out"), dataset="rafdb", features="pca",
                                       pca_components=20, svm_cv=2))
    assert meta["dataset"]["protocol"] == "official" and meta["dataset"]["test_faces"] == 42
    assert meta["metrics"]["test_svm"]["accuracy"] > 1 / len(EMOTIONS)
    assert meta["architecture"]["params"] > 20 * 48 * 48


def test_hog_features_shape():
    from edgefer.train.classical import hog_features

    feats = hog_features(np.zeros((2, 48, 48), np.uint8))
    assert feats.shape == (2, 5 * 5 * 4 * 9)


@pytest.mark.parametrize("argv,message", [
    (["--dataset", "ckplus48", "--val", "x"], "--val is for class-folder data"),
    (["--model", "hybrid", "--init-from", "m.keras"], "--hybrid-parts"),
    (["--augment-config", "spin=2"], "bad augmentation setting"),
    (["--dataset", "rafdb", "--protocol", "official"], "RAF-DB image folder"),
])
def test_cli_errors_are_specific(ck48, tmp_path, capsys, argv, message):
    from edgefer.cli import main

    root = tmp_path / "empty"
    (root / "EmoLabel").mkdir(parents=True)
    (root / "EmoLabel" / "list_patition_label.txt").write_text("train_00001.jpg 1\n")
    data = str(root) if "rafdb" in argv else str(ck48)
    assert main(["train", "--data", data, "--out", str(tmp_path / "out"), *argv]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.slow
def test_hybrid_trains_both_parts_then_the_projection(synthetic_data, tmp_path):
    from edgefer.train.trainer import TrainConfig, run_training

    meta = run_training(TrainConfig(data=str(synthetic_data), out=str(tmp_path), model="hybrid",
                                    fc_width=64, projection=32, epochs=2, hybrid_head_epochs=2, svm_c=[0.1],
                                    **{**TINY, "alpha": 0.25}))
    assert meta["architecture"]["name"] == "hybrid_mobilenet_vgg16"
    assert meta["architecture"]["feature_dim"] == 256 + 32
    assert meta["svm"]["fold_agreement"] == 1.0
    assert (tmp_path / "mobilenet" / "cnn.keras").is_file() and (tmp_path / "vgg16" / "cnn.keras").is_file()
    assert (tmp_path / "gradcam.png").is_file()


def test_hybrid_takes_its_mobilenet_as_an_onnx(tiny_artifacts, synthetic_data, tmp_path):
    """The FER2013 hybrid's MobileNet is an fp32 ONNX (the only FER2013-only MobileNet kept): read back into
    Keras and frozen beside a VGG16 cnn.keras; only the projection and the head train."""
    from edgefer.runtime.preprocess import InputSpec
    from edgefer.train.trainer import TrainConfig, run_training
    from edgefer.train.vgg import build_vgg16

    vgg = tmp_path / "vgg16.keras"
    build_vgg16(InputSpec(height=32, width=32, channels=3), len(EMOTIONS), fc_width=32).save(vgg)
    meta = run_training(TrainConfig(data=str(synthetic_data), out=str(tmp_path / "out"), model="hybrid",
                                    hybrid_parts=[str(tiny_artifacts / "tiny_fp32.onnx"), str(vgg)],
                                    projection=16, hybrid_head_epochs=1, svm_c=[0.1],
                                    **{**TINY, "alpha": 0.25}))
    assert meta["architecture"]["name"] == "hybrid_mobilenet_vgg16"
    assert meta["architecture"]["feature_dim"] == 256 + 16


@pytest.mark.slow
def test_training_subject_kfold_writes_every_fold(ck48, tmp_path):
    from edgefer.train.trainer import TrainConfig, run_training

    meta = run_training(TrainConfig(data=str(ck48), out=str(tmp_path), dataset="ckplus48", protocol="kfold",
                                    folds=2, model="cnn2", epochs=1, svm_c=[0.1], **TINY))
    assert meta["kfold"]["folds"] == 2 and meta["metrics"]["test_svm"]["samples"] == 126
    assert (tmp_path / "fold_01" / "model.keras").is_file()


def test_transfer_to_another_input_size_shares_the_trained_layers(tiny_run):
    """A 32-pixel run fine-tuned at 40 pixels: same trained weights, new input size, fresh head."""
    import keras
    import numpy as np

    from edgefer.runtime.preprocess import InputSpec
    from edgefer.train.fit import transfer_model

    src = keras.models.load_model(tiny_run / "cnn.keras")
    spec = InputSpec.from_dict({**json.loads((tiny_run / "meta.json").read_text())["input"], "height": 40,
                                "width": 40})
    model = transfer_model(tiny_run / "cnn.keras", 7, 0.0, "softmax", spec)
    assert tuple(model.input.shape) == (None, 40, 40, 3) and tuple(model.output.shape) == (None, 7)
    trained = [layer.name for layer in src.layers if layer.get_weights() and layer.name.startswith("conv")]
    assert trained
    for name in trained:
        for a, b in zip(src.get_layer(name).get_weights(), model.get_layer(name).get_weights()):
            np.testing.assert_array_equal(a, b)
    assert model.predict(np.zeros((2, 40, 40, 3), np.float32), verbose=0).shape == (2, 7)


def test_export_split_writes_the_runs_own_faces(ck48, tmp_path):
    """The exported test folder reproduces the run's test accuracy, so artifacts can be checked on it."""
    import keras

    from edgefer.runtime.datasets import load_dataset
    from edgefer.runtime.preprocess import InputSpec
    from edgefer.train.data import predict_batches
    from edgefer.train.export_split import export_run_faces, main
    from edgefer.train.trainer import TrainConfig, run_training

    run = tmp_path / "run"
    meta = run_training(TrainConfig(data=str(ck48), out=str(run), dataset="ckplus48", protocol="subject",
                                    test_fraction=0.34, model="cnn2", head="softmax", epochs=1, **TINY))
    counts = export_run_faces(run, tmp_path / "faces")
    report = json.loads((run / "data_report.json").read_text())
    assert counts == {"train": report["train"], "val": report["val"], "test": report["test"]}
    spec = InputSpec.from_dict(meta["input"])
    test = load_dataset(tmp_path / "faces" / "test", "val", (spec.height, spec.width))
    model = keras.models.load_model(run / "model.keras")
    accuracy = float((predict_batches(model, test.images, spec).argmax(1) == test.labels).mean())
    assert accuracy == pytest.approx(meta["metrics"]["test_softmax"]["accuracy"])
    with pytest.raises(SystemExit, match="2"):
        main([str(tmp_path / "no_run"), str(tmp_path / "x")])


def test_every_head_is_also_scored_with_test_time_flip(tiny_run, synthetic_data):
    """The runtime classifies each face with its mirror image (flip on by default): runs report that too."""
    import keras

    from edgefer.runtime.datasets import load_class_folders
    from edgefer.runtime.metrics import classification_summary
    from edgefer.runtime.preprocess import InputSpec
    from edgefer.train.data import predict_batches

    meta = json.loads((tiny_run / "meta.json").read_text())
    m = meta["metrics"]
    assert {"val_softmax", "val_softmax_flip", "val_svm", "val_svm_flip"} <= set(m)
    val = load_class_folders(synthetic_data / "val")
    cnn = keras.models.load_model(tiny_run / "cnn.keras")
    spec = InputSpec(height=32, width=32, channels=3)
    plain = predict_batches(cnn, val.images, spec)
    mirror = predict_batches(cnn, np.ascontiguousarray(val.images[:, :, ::-1]), spec)
    assert not np.allclose(plain, mirror)  # the mirrored faces are other inputs
    for key, scores in (("val_softmax", plain), ("val_softmax_flip", (plain + mirror) / 2)):
        expected = classification_summary(val.labels, scores.argmax(1), meta["labels"])
        assert m[key]["accuracy"] == pytest.approx(expected["accuracy"]) and m[key]["samples"] == len(val)
    assert "== val_svm_flip ==" in (tiny_run / "report.txt").read_text()
