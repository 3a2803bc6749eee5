"""Labels, aliases, dataset loaders, preprocessing and metrics (generated data only)."""

from __future__ import annotations

import logging

import cv2
import numpy as np
import pytest

from edgefer.runtime.datasets import load_class_folders, load_dataset, load_fer2013_csv
from edgefer.runtime.labels import EMOTIONS, canonical_label
from edgefer.runtime.metrics import classification_summary, format_summary
from edgefer.runtime.preprocess import InputSpec, preprocess_faces

from .conftest import synthetic_face, write_class_folders


@pytest.mark.parametrize(
    "name,label",
    [("anger", "angry"), ("Happiness", "happy"), ("sadness", "sad"), ("surprised", "surprise"),
     ("disgusted", "disgust"), ("fearful", "fear"), ("afraid", "fear"), ("NEUTRAL", "neutral"), ("3_happy", "happy")],
)
def test_aliases_map_to_canonical_labels(name, label):
    assert canonical_label(name) == label


def test_unknown_class_is_none():
    assert canonical_label("contempt") is None


def test_class_folders_with_aliases_skip_unknown_and_unreadable(tmp_path, caplog):
    write_class_folders(tmp_path, 3, names={"angry": "anger", "happy": "Happiness", "surprise": "surprised"})
    (tmp_path / "contempt").mkdir()
    cv2.imwrite(str(tmp_path / "contempt" / "x.png"), np.zeros((48, 48), np.uint8))
    (tmp_path / "sadness").mkdir()
    (tmp_path / "sadness" / "broken.jpg").write_bytes(b"not a jpeg")
    with caplog.at_level(logging.WARNING):
        ds = load_class_folders(tmp_path)
    assert len(ds) == 21
    assert ds.class_counts() == {name: 3 for name in EMOTIONS}
    assert ds.images.shape == (21, 48, 48) and ds.images.dtype == np.uint8
    assert any("contempt" in r.message for r in caplog.records)
    assert ds.skipped == [str(tmp_path / "sadness" / "broken.jpg")]


def test_class_folders_resize_and_limit(tmp_path):
    write_class_folders(tmp_path, 5)
    ds = load_class_folders(tmp_path, size=(32, 32), limit_per_class=2)
    assert ds.images.shape == (14, 32, 32)


def test_class_folders_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_class_folders(tmp_path / "nope")
    (tmp_path / "unrelated").mkdir()
    with pytest.raises(ValueError, match="no labelled images"):
        load_class_folders(tmp_path)


def test_fer2013_csv_splits_and_label_order(tmp_path):
    rng = np.random.default_rng(0)
    rows = ["emotion,pixels,Usage"]
    # CSV ids: 0 angry, 1 disgust, 2 fear, 3 happy, 4 sad, 5 surprise, 6 neutral
    for emotion, usage in [(3, "Training"), (6, "Training"), (4, "PublicTest"), (0, "PrivateTest")]:
        pixels = " ".join(str(v) for v in synthetic_face(emotion, rng).ravel())
        rows.append(f"{emotion},{pixels},{usage}")
    rows.append("9,1 2 3,Training")  # bad row: skipped, not fatal
    path = tmp_path / "fer2013.csv"
    path.write_text("\n".join(rows) + "\n")
    train = load_fer2013_csv(path, "train")
    assert [EMOTIONS[i] for i in train.labels] == ["happy", "neutral"]
    assert len(train.skipped) == 1
    assert [EMOTIONS[i] for i in load_dataset(path, "val").labels] == ["sad"]
    with pytest.raises(ValueError, match="unknown split"):
        load_fer2013_csv(path, "holdout")


def test_preprocess_grey_replicated_and_normalised():
    spec = InputSpec(height=48, width=48, channels=3)
    faces = [np.full((96, 80), 255, np.uint8), np.zeros((48, 48, 3), np.uint8)]
    x = preprocess_faces(faces, spec)
    assert x.shape == (2, 48, 48, 3) and x.dtype == np.float32
    assert np.allclose(x[0], 1.0) and np.allclose(x[1], -1.0)
    assert np.array_equal(x[..., 0], x[..., 2])


def test_preprocess_single_channel_and_empty():
    spec = InputSpec(height=32, width=32, channels=1, scale=1 / 255.0, offset=0.0)
    assert preprocess_faces(np.full((3, 32, 32), 51, np.uint8), spec).shape == (3, 32, 32, 1)
    assert preprocess_faces([], spec).shape == (0, 32, 32, 1)


def test_input_spec_round_trip_and_validation():
    spec = InputSpec(height=64, width=64)
    assert InputSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(ValueError, match="missing the key"):
        InputSpec.from_dict({"height": 1})


def test_metrics_known_values():
    y_true = np.array([0, 0, 1, 1, 2, 2])
    y_pred = np.array([0, 1, 1, 1, 2, 0])
    s = classification_summary(y_true, y_pred, ["a", "b", "c"])
    assert s["accuracy"] == pytest.approx(4 / 6)
    assert s["per_class"]["b"]["precision"] == pytest.approx(2 / 3)
    assert s["per_class"]["a"]["recall"] == pytest.approx(0.5)
    assert s["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    f1 = [2 * 0.5 * 0.5 / 1.0, 2 * (2 / 3) / (2 / 3 + 1), 2 * 0.5 / 1.5]
    assert s["macro_f1"] == pytest.approx(np.mean(f1))
    assert "macro-F1" in format_summary(s)
