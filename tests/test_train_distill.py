"""Distillation (`edgefer train --teacher`): soft targets from a trained teacher, what the student records."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from edgefer.runtime.preprocess import InputSpec


def test_soften_flattens_with_temperature_and_keeps_distributions():
    from edgefer.train.distill import soften

    p = np.array([[0.7, 0.2, 0.1], [0.05, 0.05, 0.9]], np.float32)
    np.testing.assert_allclose(soften(p, 1.0), p, rtol=1e-5)
    warm = soften(p, 4.0)
    np.testing.assert_allclose(warm.sum(axis=1), 1.0, rtol=1e-6)
    assert (warm.argmax(1) == p.argmax(1)).all() and (warm.max(1) < p.max(1)).all()
    with pytest.raises(ValueError, match="temperature"):
        soften(p, 0.0)


def test_sequence_yields_the_given_targets_in_place_of_one_hot_labels():
    from edgefer.train.data import make_sequence

    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (10, 24, 24), dtype=np.uint8)
    labels = np.arange(10) % 7
    targets = rng.dirichlet(np.ones(7), 10).astype(np.float32)
    seq = make_sequence(images, labels, InputSpec(height=24, width=24), 7, 4, None, shuffle=False, workers=1,
                        targets=targets)
    _, y = seq[1]
    np.testing.assert_array_equal(y, targets[4:8])


def test_a_student_trains_on_the_teachers_soft_targets_and_records_its_teacher(tiny_run, synthetic_data, tmp_path):
    """The 32-px MobileNet run teaches a 24-px cnn2: the teacher reads faces at its own input size."""
    from edgefer.train.distill import distillation_targets, load_teacher
    from edgefer.train.trainer import TrainConfig, run_training

    teacher_path = tiny_run / "cnn.keras"
    out = tmp_path / "student"
    meta = run_training(TrainConfig(
        data=str(synthetic_data), out=str(out), model="cnn2", input_size=24, epochs=1, batch_size=16, augment=False,
        svm_c=[0.01], svm_cv=2, teacher=str(teacher_path), distill_weight=0.7, distill_temperature=3.0))
    record = meta["training"]["distillation"]
    assert record["teacher_sha256"] == hashlib.sha256(teacher_path.read_bytes()).hexdigest()
    assert record["weight"] == 0.7 and record["temperature"] == 3.0
    assert record["teacher_architecture"] == "mobilenet_v1" and record["teacher_input"]["height"] == 32

    cached = np.load(out / "checkpoint" / "teacher.npz")["probabilities"]
    assert cached.shape == (meta["training"]["train_faces"], 7)
    np.testing.assert_allclose(cached.sum(axis=1), 1.0, rtol=1e-4)

    # The targets: 0.3 of the one-hot label plus 0.7 of the softened teacher, a distribution per face.
    from edgefer.runtime.datasets import load_class_folders

    train = load_class_folders(synthetic_data / "train", size=(24, 24))
    teacher = load_teacher(teacher_path, train.label_names)
    assert (teacher.spec.height, teacher.spec.width) == (32, 32)
    targets = distillation_targets(teacher, train.images, train.labels, 0.7, 3.0)
    np.testing.assert_allclose(targets.sum(axis=1), 1.0, rtol=1e-5)
    assert (targets[np.arange(len(train)), train.labels] >= 0.3).all()
    assert (targets.max(axis=1) < 1).all()


def test_the_cache_spares_a_resumed_run_the_teachers_pass(tiny_run, synthetic_data, tmp_path, monkeypatch):
    from edgefer.runtime.datasets import load_class_folders
    from edgefer.train import distill

    train = load_class_folders(synthetic_data / "train", size=(32, 32))
    teacher = distill.load_teacher(tiny_run / "cnn.keras", train.label_names)
    cache = tmp_path / "teacher.npz"
    first = distill.distillation_targets(teacher, train.images, train.labels, 0.5, 4.0, cache)

    def no_second_pass(*_args, **_kwargs):
        raise AssertionError("the teacher ran again although its probabilities were cached")

    monkeypatch.setattr(distill, "teacher_probabilities", no_second_pass)
    np.testing.assert_array_equal(distill.distillation_targets(teacher, train.images, train.labels, 0.5, 4.0, cache),
                                  first)
    with pytest.raises(AssertionError, match="ran again"):  # other faces: the cache does not apply
        distill.distillation_targets(teacher, train.images[:-1], train.labels[:-1], 0.5, 4.0, cache)


def test_teachers_without_probabilities_or_with_other_classes_are_refused(tiny_run):
    from edgefer.runtime.labels import EMOTIONS
    from edgefer.train.distill import load_teacher

    with pytest.raises(ValueError, match="Pass the run's cnn.keras"):
        load_teacher(tiny_run / "model.keras", EMOTIONS)  # the SVM folded in: margins, not probabilities
    with pytest.raises(ValueError, match="same classes in the same order"):
        load_teacher(tiny_run / "cnn.keras", [e for e in EMOTIONS if e != "neutral"])
    with pytest.raises(FileNotFoundError, match="--teacher"):
        load_teacher(tiny_run / "nothing.keras", EMOTIONS)


def test_people_the_teacher_or_start_model_saw_count_as_seen_by_the_student(tmp_path):
    from edgefer.train.provenance import seen_subjects, source
    from edgefer.train.trainer import TrainConfig, inherited_sources

    teacher = tmp_path / "teacher" / "cnn.keras"
    teacher.parent.mkdir()
    teacher.write_bytes(b"")  # only its run's meta.json is read here
    (teacher.parent / "meta.json").write_text(json.dumps({"training": {"sources": [
        source("kdef", "train", "KDEF", 10, ["F01", "M02"]), source("kdef", "test", "KDEF", 10, ["F03"])]}}))
    cfg = TrainConfig(data="fer", out="out", teacher=str(teacher))
    inherited = inherited_sources(cfg)
    assert [e["via"] for e in inherited] == [f"teacher {teacher}"]  # test people were never seen: not inherited
    assert seen_subjects(inherited, "kdef") == {"F01", "M02"}
    assert inherited_sources(TrainConfig(data="fer", out="out")) == []


@pytest.mark.parametrize("argv,message", [
    (["--teacher", "t.keras", "--model", "hybrid"], "does not apply to the hybrid"),
    (["--teacher", "t.keras", "--head", "svm-top"], "does not apply to the hybrid"),
    (["--teacher", "t.keras", "--distill-weight", "0"], "must be in (0, 1]"),
    (["--teacher", "t.keras", "--distill-temperature", "-1"], "above 0"),
    (["--teacher", "t.keras", "--epochs", "0", "--init-from", "cnn.keras"], "trains nothing for it to teach"),
])
def test_distillation_settings_are_checked_before_any_work(synthetic_data, tmp_path, capsys, argv, message):
    from edgefer.cli import main

    assert main(["train", "--data", str(synthetic_data), "--out", str(tmp_path / "out"), *argv]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_several_teachers_teach_as_one_ensemble(tiny_run, synthetic_data, tmp_path):
    """--teacher a.keras,b.keras: each network reads faces at its own input size, their probabilities averaged."""
    from edgefer.runtime.datasets import load_class_folders
    from edgefer.train import distill
    from edgefer.train.trainer import TrainConfig, run_training

    other = tmp_path / "other"
    run_training(TrainConfig(data=str(synthetic_data), out=str(other), model="cnn2", input_size=24, epochs=1,
                             batch_size=16, augment=False, svm_c=[0.01], svm_cv=2))
    spec = f"{tiny_run / 'cnn.keras'},{other / 'cnn.keras'}"
    train = load_class_folders(synthetic_data / "train", size=(32, 32))
    teachers = distill.load_teachers(spec, train.label_names)
    assert [(t.spec.height, t.architecture) for t in teachers] == [(32, "mobilenet_v1"), (24, "cnn2")]
    each = [distill.teacher_probabilities(t, train.images) for t in teachers]
    np.testing.assert_allclose(distill.teacher_probabilities(teachers, train.images), (each[0] + each[1]) / 2,
                               atol=1e-6)
    assert not np.allclose(each[0], each[1], atol=1e-3)  # two different networks, so the mean is neither
    record = distill.record(spec, 0.5, 4.0)
    assert record["teacher_architecture"] == "mobilenet_v1 + cnn2" and len(record["teachers"]) == 2
    assert record["teachers"][1]["teacher_sha256"] == hashlib.sha256((other / "cnn.keras").read_bytes()).hexdigest()
    with pytest.raises(ValueError, match="empty entry"):
        distill.teacher_paths(f"{spec},")
    with pytest.raises(ValueError, match="names one file twice"):
        distill.teacher_paths(f"{spec},{tiny_run / 'cnn.keras'}")
