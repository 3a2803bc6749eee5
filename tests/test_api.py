"""The public Python API: ``from edgefer import EmotionRecognizer``."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

import edgefer
from edgefer import EdgeferError, EmotionRecognizer, Face, ImageError
from edgefer.runtime.classifier import default_model
from edgefer.runtime.labels import EMOTIONS
from edgefer.runtime.manifest import Calibration, Manifest
from edgefer.runtime.probabilities import softmax

from .conftest import REPO, SHARED, need


@pytest.fixture(scope="module")
def fer():
    with EmotionRecognizer() as recognizer:
        yield recognizer


def test_import_edgefer_is_cheap():
    code = ("import sys, edgefer\n"
            "heavy = [m for m in ('cv2', 'numpy', 'tensorflow', 'ai_edge_litert', 'onnxruntime') if m in sys.modules]\n"
            "print('HEAVY', heavy)\n"
            "assert callable(edgefer.EmotionRecognizer)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd="/")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "HEAVY []" in proc.stdout


def test_runs_from_the_repository_root_without_the_editable_finder():
    """In the checkout's root, ``edgefer/`` shadows any installed package: its subpackages must still resolve."""
    code = ("import sys\n"
            "sys.meta_path[:] = [f for f in sys.meta_path if '__editable__' not in getattr(f, '__module__', '')]\n"
            "sys.path_hooks[:] = [h for h in sys.path_hooks if '__editable__' not in getattr(h, '__module__', '')]\n"
            "import edgefer\n"
            "from edgefer import EmotionRecognizer\n"
            "import edgefer.runtime.recognizer as r\n"
            "print(r.__file__)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == str(REPO / "runtime" / "recognizer.py")


def test_unknown_public_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        edgefer.Nope  # noqa: B018
    assert "EmotionRecognizer" in dir(edgefer)


def test_detect_on_a_photo_path_and_array(fer, media):
    faces = fer.detect(media / "justin.jpg")
    assert len(faces) == 1 and isinstance(faces[0], Face)
    face = faces[0]
    assert face.label in EMOTIONS and set(face.probabilities) == set(face.scores) == set(EMOTIONS)
    assert sum(face.probabilities.values()) == pytest.approx(1.0)
    assert face.probability == max(face.probabilities.values())
    assert face.scores[face.label] == max(face.scores.values())
    x, y, w, h = face.box
    assert w > 40 and h > 40
    again = fer.detect(cv2.imread(str(media / "justin.jpg")))
    assert again == faces  # the same image as an array gives the same faces
    d = json.loads(json.dumps(face.to_dict()))
    assert set(d) == {"box", "label", "probability", "probabilities", "scores"}
    assert fer.detect(media / "no-faces.jpg") == []
    assert len(fer.detect(str(media / "two_people.jpg"))) >= 2


def test_classify_crops_cut_by_hand(fer, media):
    img = cv2.imread(str(media / "justin.jpg"))
    (face,) = fer.detect(img)
    x, y, w, h = face.box
    crop = img[y : y + h, x : x + w]
    (one,) = fer.classify(crop)
    assert one.label == face.label and one.box == (0, 0, w, h)
    assert one.probabilities == pytest.approx(face.probabilities, abs=1e-6)
    grey = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
    assert [f.label for f in fer.classify([crop, grey])] == [face.label, face.label]
    assert fer.classify([]) == []


@pytest.mark.parametrize("bad,match", [
    ("/no/such/photo.jpg", "/no/such/photo.jpg does not exist"),
    (np.zeros((10, 10, 3), np.float32), "dtype float32; expected uint8"),
    (np.zeros((0, 5, 3), np.uint8), "shape"),
    (np.zeros((10, 10, 7), np.uint8), "shape"),
    ([1, 2, 3], "expected a BGR numpy array or an image path, got list"),
])
def test_bad_images_raise_a_typed_error(fer, bad, match):
    with pytest.raises(ImageError, match=match):
        fer.detect(bad)


def test_undecodable_file_names_the_file(fer, tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(ImageError, match="cannot decode .*broken.jpg") as info:
        fer.detect(bad)
    assert isinstance(info.value, EdgeferError) and isinstance(info.value, ValueError)


def test_setup_errors_are_typed():
    with pytest.raises(edgefer.DetectorError, match="unknown detector 'dlib'"):
        EmotionRecognizer(detector="dlib")
    with pytest.raises(edgefer.ModelError, match="does not exist"):
        EmotionRecognizer(model="/no/such/model.tflite")
    with pytest.raises(EdgeferError):
        EmotionRecognizer(model="/no/such/model.tflite")
    with pytest.raises(EdgeferError, match="unknown backend 'native'"):
        EmotionRecognizer(backend="native")
    assert issubclass(edgefer.BackendUnavailable, EdgeferError)


def test_yunet_detector_is_accepted(media):
    yunet = need(SHARED / "weights" / "yunet" / "face_detection_yunet_2023mar.onnx", "the YuNet weights")
    with EmotionRecognizer(detector="yunet", yunet_model=yunet) as fer:
        assert len(fer.detect(media / "justin.jpg")) == 1


def test_classify_only_recognizer(media):
    with EmotionRecognizer(detector=None) as fer:
        assert fer.detector is None
        assert len(fer.classify(np.full((48, 48), 128, np.uint8))) == 1
        with pytest.raises(edgefer.DetectorError, match="detector=None"):
            fer.detect(np.zeros((48, 48, 3), np.uint8))


def _copy_with_calibration(tmp_path: Path, temperature: float | None) -> Path:
    src = default_model("litert")
    dst = tmp_path / src.name
    shutil.copy(src, dst)
    manifest = Manifest.load(src)
    manifest.calibration = Calibration(temperature, "test") if temperature else None
    manifest.write(dst)
    return dst


def test_probabilities_use_the_manifest_temperature(tmp_path, media):
    model = _copy_with_calibration(tmp_path, 2.5)
    with EmotionRecognizer(model) as fer:
        assert fer.calibrated and fer.scores_kind == "svm_margins"
        (face,) = fer.detect(media / "justin.jpg")
    scores = np.array([[face.scores[k] for k in EMOTIONS]])
    expected = softmax(scores, 2.5)[0]
    assert [face.probabilities[k] for k in EMOTIONS] == pytest.approx(expected.tolist(), abs=1e-9)


def test_each_view_setting_takes_its_own_temperature(tmp_path, media):
    """Averaged views give softer scores, so the manifest holds a temperature per view setting."""
    src = default_model("litert")
    model = tmp_path / src.name
    shutil.copy(src, model)
    manifest = Manifest.load(src)
    temperatures = {"one": 1.0, "flip": 1.5, "zoom": 2.0, "flip+zoom": 2.5}
    manifest.calibration = Calibration(2.5, "test", views=(True, 0.9), temperatures=temperatures)
    manifest.write(model)
    for flip, zoom, name in ((True, 0.9, "flip+zoom"), (False, None, "one"), (True, None, "flip"),
                             (False, 0.8, "zoom")):
        with EmotionRecognizer(model, flip=flip, zoom=zoom) as fer:
            (face,) = fer.detect(media / "justin.jpg")
        scores = np.array([[face.scores[k] for k in EMOTIONS]])
        expected = softmax(scores, temperatures[name])[0]
        assert [face.probabilities[k] for k in EMOTIONS] == pytest.approx(expected.tolist(), abs=1e-9), name


def test_uncalibrated_model_warns_once_and_uses_plain_softmax(tmp_path, media, caplog):
    model = _copy_with_calibration(tmp_path, None)
    caplog.set_level(logging.WARNING, logger="edgefer.runtime.probabilities")
    with EmotionRecognizer(model) as fer:
        assert not fer.calibrated
        (face,) = fer.detect(media / "justin.jpg")
        fer.detect(media / "justin.jpg")
    warnings = [r for r in caplog.records if "no calibration temperature" in r.getMessage()]
    assert len(warnings) == 1
    scores = np.array([[face.scores[k] for k in EMOTIONS]])
    assert [face.probabilities[k] for k in EMOTIONS] == pytest.approx(softmax(scores)[0].tolist(), abs=1e-9)
