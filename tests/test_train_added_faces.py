"""Training on FER2013-style folders plus other collections' people (`--add-faces`), and `--init-from` an ONNX file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from edgefer.runtime.labels import EMOTIONS
from edgefer.runtime.manifest import sha256_of

from .train_fixtures import write_ckplus48

ROOT = Path(__file__).resolve().parents[1]
SHIPPED_ONNX = ROOT / "runtime" / "models" / "default_fp32.onnx"
TINY = dict(input_size=32, alpha=0.5, batch_size=16, lr=3e-3, augment=False, bn_momentum=0.8, seed=0,
            svm_c=[0.01], svm_cv=2)


@pytest.fixture(scope="module")
def ck48_no_neutral(tmp_path_factory) -> Path:
    """CK+48 folders as published: no neutral class, so added labels must be re-indexed by name."""
    root = write_ckplus48(tmp_path_factory.mktemp("ck48"), subjects=6, per_subject=2)
    shutil.rmtree(root / "neutral")
    return root


def test_added_people_train_and_the_others_are_recorded_as_unseen(synthetic_data, ck48_no_neutral, tmp_path):
    from edgefer.train.provenance import seen_subjects
    from edgefer.train.trainer import TrainConfig, run_training

    meta = run_training(TrainConfig(data=str(synthetic_data), out=str(tmp_path), model="cnn2", epochs=1,
                                    add_faces=[f"ckplus48={ck48_no_neutral}"], add_fraction=0.5, **TINY))
    sources = [s for s in meta["training"]["sources"] if s["dataset"] == "ckplus"]
    roles = {s["role"]: s for s in sources}
    assert set(roles) == {"train", "test"}
    assert len(roles["train"]["subjects"]) == 3 and len(roles["test"]["subjects"]) == 3
    assert not set(roles["train"]["subjects"]) & set(roles["test"]["subjects"])
    assert seen_subjects(meta["training"]["sources"], "ckplus") == set(roles["train"]["subjects"])
    # 40 generated faces a class + 3 people x 2 faces x 6 CK+ classes (contempt dropped, no neutral).
    assert meta["training"]["train_faces"] == 7 * 40 + 3 * 2 * 6
    report = json.loads((tmp_path / "data_report.json").read_text())["added"][0]
    assert report["faces"] == 36 and report["held_out_faces"] == 36
    assert "neutral" not in report["class_counts"]
    assert report["class_counts"] == {e: 6 for e in EMOTIONS if e != "neutral"}


@pytest.mark.parametrize("argv,message", [
    (["--add-faces", "ckplus48"], "write LAYOUT=ROOT"),
    (["--add-faces", "folders=x"], "not one whose people are known"),
    (["--add-faces", "ckplus48=x", "--add-fraction", "1"], "must be between 0 and 1"),
    (["--add-faces", "ckplus48=x", "--dataset", "ckplus"], "adds the people of --dataset ckplus itself"),
])
def test_add_faces_errors_are_specific(synthetic_data, tmp_path, capsys, argv, message):
    from edgefer.cli import main

    assert main(["train", "--data", str(synthetic_data), "--out", str(tmp_path / "out"), *argv]) == 2
    assert message in capsys.readouterr().err


def test_onnx_reads_back_into_keras_with_the_same_scores(tiny_artifacts):
    import onnxruntime as ort

    from edgefer.train.onnx_import import keras_from_onnx

    path = tiny_artifacts / "tiny_fp32.onnx"
    model = keras_from_onnx(path)
    faces = np.random.default_rng(3).uniform(-1, 1, (16, 32, 32, 3)).astype(np.float32)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    want = session.run(None, {session.get_inputs()[0].name: faces})[0]
    got = model.predict(faces, verbose=0)  # softmax over the folded SVM's scores
    np.testing.assert_allclose(got, np.exp(want) / np.exp(want).sum(1, keepdims=True), atol=1e-4)


def test_onnx_import_refuses_what_it_cannot_read(tiny_artifacts, tmp_path):
    from edgefer.train.onnx_import import keras_from_onnx

    bare = tmp_path / "bare.onnx"
    shutil.copy(tiny_artifacts / "tiny_fp32.onnx", bare)
    with pytest.raises(FileNotFoundError, match="manifest"):
        keras_from_onnx(bare)
    manifest = json.loads((tiny_artifacts / "tiny_fp32.onnx.json").read_text())
    (tmp_path / "bare.onnx.json").write_text(json.dumps({**manifest, "precision": "int8"}))
    with pytest.raises(ValueError, match="only an fp32 MobileNet v1 ONNX"):
        keras_from_onnx(bare)


@pytest.mark.skipif(not SHIPPED_ONNX.is_file(), reason="the shipped default_fp32.onnx is not in this checkout")
def test_shipped_model_refits_its_head_from_onnx(synthetic_data, tmp_path):
    import keras

    from edgefer.train.fit import load_init_model
    from edgefer.train.trainer import TrainConfig, run_training

    size = json.loads(Path(str(SHIPPED_ONNX) + ".json").read_text())["input"]["height"]
    with pytest.raises(ValueError, match=rf"takes {size}x{size} faces, not {size + 8}x{size + 8}; pass --input-size {size}"):
        run_training(TrainConfig(data=str(synthetic_data), out=str(tmp_path / "other"), init_from=str(SHIPPED_ONNX),
                                 epochs=0, input_size=size + 8, svm_c=[0.01], svm_cv=2, augment=False))
    # No input size given: the run takes the start model's own.
    meta = run_training(TrainConfig(data=str(synthetic_data), out=str(tmp_path), init_from=str(SHIPPED_ONNX),
                                    epochs=0, svm_c=[0.01], svm_cv=2, augment=False))
    assert meta["training"]["config"]["input_size"] == size
    assert meta["architecture"]["name"] == "mobilenet_v1" and meta["architecture"]["init_from"] == str(SHIPPED_ONNX)
    assert meta["architecture"]["init_from_sha256"] == sha256_of(SHIPPED_ONNX)  # which model, not only where
    # The start model's width, not --alpha's default (the shipped model is half width).
    shipped_alpha = json.loads(Path(str(SHIPPED_ONNX) + ".json").read_text())["architecture"]["alpha"]
    assert shipped_alpha == 0.5 and meta["architecture"]["alpha"] == shipped_alpha
    model = keras.models.load_model(tmp_path / "model.keras")
    # The same extractor and a 7-class SVM head folded in its softmax's place: as many parameters as the import.
    assert model.layers[-1].name == "svm_head" and model.count_params() == load_init_model(SHIPPED_ONNX).count_params()
    # The generated faces are separable on any sane features: the imported extractor is a working one.
    assert meta["metrics"]["val_svm"]["accuracy"] > 0.9


@pytest.mark.skipif(not SHIPPED_ONNX.is_file(), reason="the shipped default_fp32.onnx is not in this checkout")
def test_fine_tuning_from_onnx_keeps_batchnorm_in_inference_mode(tmp_path):
    import keras

    from edgefer.runtime.preprocess import InputSpec
    from edgefer.train.fit import transfer_model

    model = transfer_model(SHIPPED_ONNX, 7, 0.25, "softmax", InputSpec(48, 48, 3))
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(norms) == 27 and not any(layer.trainable for layer in norms)
    assert any(layer.trainable for layer in model.layers if isinstance(layer, keras.layers.Conv2D))


def test_a_start_model_that_saw_the_test_people_is_refused(tmp_path):
    from edgefer.train.provenance import source
    from edgefer.train.trainer import check_init_unseen

    run = tmp_path / "run"
    run.mkdir()
    (run / "meta.json").write_text(json.dumps({"training": {"sources": [
        source("fer2013", "train", "f", 10, None), source("ckplus", "train", "c", 6, ["S100", "S101"])]}}))
    onnx = tmp_path / "m.onnx"
    Path(str(onnx) + ".json").write_text((run / "meta.json").read_text())
    for start in (run / "cnn.keras", onnx):
        with pytest.raises(ValueError, match="trained on 1 ckplus people this run tests on"):
            check_init_unseen(start, [source("ckplus", "test", "c", 4, ["S101", "S102"])])
        check_init_unseen(start, [source("ckplus", "test", "c", 4, ["S102"]), source("kdef", "test", "k", 2, ["F01"])])
    # No record (a run still training has written no meta.json yet): which people it saw is unknown, so refused.
    with pytest.raises(ValueError, match=r"has no record of its training \(.*meta.json is missing\)"):
        check_init_unseen(tmp_path / "still_training" / "cnn.keras", [source("ckplus", "test", "c", 4, ["S101"])])


def test_kfold_adds_other_peoples_faces_to_the_fitting_side_only(ck48_no_neutral, tmp_path):
    """CK+48 10-fold with KDEF people added: they join the fold's fitting faces only, KDEF's neutral (a class
    CK+48 lacks) is left out and counted, and the inner cross-validation knows who each added face is."""
    from edgefer.runtime.preprocess import InputSpec
    from edgefer.train.protocols import prepare_data
    from edgefer.train.trainer import TrainConfig

    from .train_fixtures import write_kdef

    kdef = write_kdef(tmp_path / "kdef")
    spec = InputSpec()

    def fold(out: Path, added: list[str]):
        out.mkdir()
        return prepare_data(TrainConfig(data=str(ck48_no_neutral), out=str(out), dataset="ckplus48", protocol="kfold",
                                        folds=3, fold=0, angles=["S"], add_faces=added), spec, out)

    plain, mixed = fold(tmp_path / "plain", []), fold(tmp_path / "mixed", [f"kdef={kdef}"])
    (added,) = mixed.report["added"]
    assert added["left_out_classes"] == {"neutral": 1}  # one of the two KDEF people, straight photos only
    assert len(mixed.train) == len(plain.train) + added["faces"] and added["faces"] in (5, 6)
    assert len(mixed.val) == len(plain.val) and len(mixed.test) == len(plain.test)
    assert mixed.train.label_names == plain.train.label_names and "neutral" not in mixed.train.label_names
    assert len(mixed.train_subjects) == len(mixed.train)
    kdef_people = {s for s in mixed.train_subjects if s.startswith("kdef:")}
    assert len(kdef_people) == 1 and len(mixed.train_subjects) - added["faces"] == len(plain.train_subjects)
    roles = {(s["dataset"], s["role"]) for s in mixed.sources}
    assert ("kdef", "train") in roles and ("kdef", "test") in roles
    assert json.loads((tmp_path / "mixed" / "data_report.json").read_text())["added"][0]["faces"] == added["faces"]


@pytest.mark.parametrize("flag", ["init_from", "teacher"])
def test_a_missing_start_model_or_teacher_is_named_before_any_data_is_read(flag, tmp_path):
    from edgefer.train.trainer import TrainConfig, run_training

    missing = tmp_path / "runs" / "typo" / "cnn.keras"
    with pytest.raises(FileNotFoundError, match=f"--{flag.replace('_', '-')} {missing}: no such file; give"):
        run_training(TrainConfig(data=str(tmp_path / "no_data_here"), out=str(tmp_path / "out"), **{flag: str(missing)}))


@pytest.mark.skipif(not SHIPPED_ONNX.is_file(), reason="the shipped default_fp32.onnx is not in this checkout")
def test_a_fine_tune_defaults_to_its_start_models_input_size(tmp_path):
    import keras

    from edgefer.train.fit import _keras_input_side, init_input_size

    manifest = json.loads(Path(str(SHIPPED_ONNX) + ".json").read_text())
    assert init_input_size(SHIPPED_ONNX) == manifest["input"]["height"]  # read from the manifest, no import
    inputs = keras.Input((40, 40, 3))
    keras.Model(inputs, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(inputs))).save(tmp_path / "m.keras")
    assert init_input_size(tmp_path / "m.keras") == 40
    assert _keras_input_side(tmp_path / "m.keras") == 40  # from its config, the weights not loaded for it
    (tmp_path / "odd.keras").write_bytes(b"not a zip")
    assert _keras_input_side(tmp_path / "odd.keras") is None  # left to Keras' loader, and its error
    with pytest.raises(FileNotFoundError, match="--init-from .*: no such file"):
        init_input_size(tmp_path / "missing.keras")


def test_a_missing_start_model_is_a_clear_cli_error(tmp_path, capsys):
    from edgefer.cli import main

    (tmp_path / "faces").mkdir()
    assert main(["train", "--data", str(tmp_path / "faces"), "--out", str(tmp_path / "run"),
                 "--init-from", str(tmp_path / "missing.onnx")]) == 2
    assert capsys.readouterr().err.startswith("edgefer: error: ")  # the run's own first complaint, no traceback
