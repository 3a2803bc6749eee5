"""The optional YuNet detector behind the same interface as Haar (model from ../shared/weights/yunet)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgefer.cli import main
from edgefer.runtime.detect import DetectorError, YuNetConfig, YuNetDetector
from edgefer.runtime.detectors import create_detector
from edgefer.runtime.tracking import TrackConfig, TrackingDetector

from .conftest import SHARED, need

YUNET = SHARED / "weights" / "yunet" / "face_detection_yunet_2023mar.onnx"


@pytest.fixture
def yunet_model() -> Path:
    return need(YUNET, "the YuNet face detector weights")


@pytest.mark.parametrize("name,minimum", [("justin.jpg", 1), ("two_people.jpg", 2), ("12_angry_men.jpg", 5)])
def test_yunet_finds_faces_in_shared_media(media, yunet_model, name, minimum):
    img = cv2.imread(str(media / name))
    boxes = YuNetDetector(YuNetConfig(str(yunet_model))).detect(img)
    assert len(boxes) >= minimum
    h, w = img.shape[:2]
    for b in boxes:
        assert 0 <= b.x and 0 <= b.y and b.x + b.w <= w and b.y + b.h <= h
    assert [b.w * b.h for b in boxes] == sorted((b.w * b.h for b in boxes), reverse=True)


def test_yunet_no_faces_and_other_channel_layouts(media, yunet_model):
    det = YuNetDetector(YuNetConfig(str(yunet_model)))
    assert det.detect(cv2.imread(str(media / "no-faces.jpg"))) == []
    bgr = cv2.imread(str(media / "justin.jpg"))
    assert len(det.detect(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))) >= 1  # grey frames are widened to BGR
    assert len(det.detect(cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA))) >= 1


def test_yunet_box_agrees_with_haar(media, yunet_model):
    from edgefer.runtime.detect import HaarDetector

    img = cv2.imread(str(media / "justin.jpg"))
    (haar,) = HaarDetector().detect(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY))
    yunet = YuNetDetector(YuNetConfig(str(yunet_model))).detect(img)[0]
    centre = np.array([yunet.x + yunet.w / 2, yunet.y + yunet.h / 2])
    assert np.linalg.norm(centre - [haar.x + haar.w / 2, haar.y + haar.h / 2]) < 0.25 * haar.w


def test_yunet_behind_the_tracker(yunet_model):
    det = create_detector(YuNetConfig(str(yunet_model)), TrackConfig(detect_every=4))
    assert isinstance(det, TrackingDetector) and det.needs_colour


def test_missing_or_corrupt_yunet_model_is_a_clear_error(tmp_path):
    with pytest.raises(DetectorError, match="opencv_zoo"):
        YuNetDetector(YuNetConfig(str(tmp_path / "none.onnx")))
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(DetectorError, match="could not load the YuNet model"):
        YuNetDetector(YuNetConfig(str(bad)))
    with pytest.raises(ValueError, match="score_threshold"):
        YuNetDetector(YuNetConfig(str(bad), score_threshold=1.5))


def test_detect_cli_yunet_needs_a_model(tmp_path, capsys):
    img = tmp_path / "x.png"
    cv2.imwrite(str(img), np.zeros((64, 64, 3), np.uint8))
    assert main(["detect", "--source", str(img), "--detector", "yunet"]) == 2
    assert "--yunet-model" in capsys.readouterr().err


def test_detect_cli_with_yunet(media, yunet_model, tiny_artifacts):
    from edgefer.runtime.commands import run_detect
    from edgefer.runtime.detect import YuNetConfig as Cfg

    out = io.StringIO()
    run_detect(str(media / "two_people.jpg"), str(tiny_artifacts / "tiny_int8.tflite"), haar=Cfg(str(yunet_model)),
               out=out, summary_out=None, tracking=TrackConfig())
    (event,) = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(event["faces"]) >= 2
    assert set(event["timings_ms"]) == {"read", "detect", "preprocess", "infer"}


def test_recall_benchmark_on_photos_crops_and_clips(yunet_model, tmp_path, capsys):
    """benchmarks/recall.py on a folder with the astronaut photo and a short clip of it (no fer here)."""
    from benchmarks import recall
    from edgefer.samples import astronaut_bgr

    media = tmp_path / "media"
    media.mkdir()
    img = astronaut_bgr()
    cv2.imwrite(str(media / "astronaut.png"), img)
    writer = cv2.VideoWriter(str(media / "astronaut.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (640, 480))
    for _ in range(4):
        writer.write(cv2.resize(img, (640, 480)))
    writer.release()
    out = tmp_path / "recall.json"
    doc = tmp_path / "doc.md"
    doc.write_text(f"before\n{recall.MD_BEGIN}\nold table\n{recall.MD_END}\nafter\n")
    assert recall.main(["--media", str(media), "--yunet-model", str(yunet_model), "--frames", "3", "--repeats", "1",
                        "--json", str(out), "--markdown", str(doc)]) == 0
    text = doc.read_text()
    assert "old table" not in text and text.startswith("before\n") and text.endswith("after\n")
    assert "| astronaut.avi 640x480, stream | 3 | – | 3, –, 0," in text  # no fer here: nothing lost to it
    doc.write_text(f"{recall.MD_BEGIN}\n{recall.MD_END}\n")
    assert recall.main(["--from-json", str(out), "--markdown", str(doc)]) == 0  # the table alone, from the JSON
    assert doc.read_text() == text[len("before\n"):-len("after\n")]
    result = json.loads(out.read_text())
    inputs = result["inputs"]
    assert set(inputs) == {"astronaut.png", "tight crops (wide, 350x350)", "tight crops (tall, 350x350)",
                           "astronaut.avi 640x480, stream", "astronaut.avi 640x480, every frame a still"}
    photo = inputs["astronaut.png"]
    assert photo["reference_faces"] == 1 and "fer" not in photo
    assert photo["settings"]["haar (default)"]["found"] == 1 and photo["settings"]["yunet"]["found"] == 1
    crops = inputs["tight crops (wide, 350x350)"]
    assert crops["frames"] == 1 and crops["settings"]["haar (default)"]["found"] == 1  # the padded second look
    clip = inputs["astronaut.avi 640x480, stream"]
    assert clip["frames"] == 3 and clip["settings"]["haar (default)"]["found"] == 3
    # every phase of the detection frames is scored (the astronaut never moves: found on every frame in each)
    assert clip["settings"]["haar (default)"]["by_phase"]["found"] == [3] * TrackConfig().detect_every
    assert "by_phase" not in inputs["astronaut.avi 640x480, every frame a still"]["settings"]["haar (default)"]
    assert "| astronaut.png | 1 |" in capsys.readouterr().out


def test_recall_sweep_rejects_bad_arguments(yunet_model, tmp_path, capsys):
    from benchmarks import recall

    assert recall.main(["--yunet-model", str(tmp_path / "missing.onnx")]) == 2
    assert "does not exist" in capsys.readouterr().err
    doc = tmp_path / "doc.md"
    doc.write_text("no markers\n")
    assert recall.main(["--yunet-model", str(yunet_model), "--media", str(tmp_path), "--markdown", str(doc)]) == 2
    assert "has no recall-table markers" in capsys.readouterr().err  # refused before any measuring
    other = tmp_path / "other.json"
    other.write_text('{"schema": "edgefer-track-dev/2"}')
    assert recall.main(["--from-json", str(other)]) == 2
    assert "is not a benchmarks/recall.py result" in capsys.readouterr().err
