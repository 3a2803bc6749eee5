"""Still images: resolution from the image and its smallest face, a padded second look for tight crops,
YuNet found by path or in its documented places, and the same choice in ``serve``."""

from __future__ import annotations

import io
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgefer.runtime.detect import (DetectorError, HaarConfig, HaarDetector, YuNetConfig, YuNetDetector, find_yunet_model)
from edgefer.runtime.detectors import create_detector
from edgefer.runtime.stills import StillConfig, StillDetector
from edgefer.runtime.tracking import TrackConfig, TrackingDetector

from .conftest import SHARED, need

YUNET = SHARED / "weights" / "yunet" / "face_detection_yunet_2023mar.onnx"


@pytest.fixture
def yunet_model() -> Path:
    return need(YUNET, "the YuNet face detector weights")


def tight_crops(media: Path, yunet_model: Path, side: int = 350) -> list[np.ndarray]:
    """Square crops of the faces YuNet finds in the shared photos, as wide as YuNet's box (cheek to cheek)."""
    judge = YuNetDetector(YuNetConfig(str(yunet_model), detect_width=0, min_face=10, min_face_ratio=0.0))
    crops = []
    for name in ("justin.jpg", "two_people.jpg", "12_angry_men.jpg"):
        img = cv2.imread(str(media / name))
        for box in judge.detect(img):
            s = box.w
            cx, cy = box.x + box.w // 2, box.y + box.h // 2
            x0, y0 = max(cx - s // 2, 0), max(cy - s // 2, 0)
            crop = img[y0:y0 + s, x0:x0 + s]
            crops.append(cv2.resize(crop, (side, side), interpolation=cv2.INTER_AREA))
    return crops


def test_still_limits_follow_the_image():
    engine = HaarDetector()
    still = StillDetector(engine)
    assert still.limits((480, 640)) == (48.0, 480.0, 0.5)  # 48-px faces shrunk to the 24-px window
    assert still.limits((1536, 2048))[0] == 48.0  # a group photo keeps its small faces
    assert still.limits((3000, 4000))[0] == pytest.approx(60.0)  # very large photos: 2 % of the shorter side
    assert still.limits((100, 120))[2] == pytest.approx(0.5)
    # 1.5 windows (36 px) on request.
    assert StillDetector(HaarDetector(HaarConfig(min_face_windows=1.5))).limits((480, 640))[2] == 0.75
    with pytest.raises(ValueError, match="min_face_windows"):
        HaarDetector(HaarConfig(min_face_windows=0.5))
    with pytest.raises(ValueError, match="pad"):
        StillConfig(pad=2.0)
    with pytest.raises(ValueError, match="min_face"):
        StillConfig(min_face=0)


def test_create_detector_by_name_and_input_kind(monkeypatch, yunet_model):
    assert isinstance(create_detector("haar"), HaarDetector)
    assert isinstance(create_detector("haar", TrackConfig(detect_every=3)), TrackingDetector)
    still = create_detector("haar", TrackConfig(detect_every=3), still=True)
    assert isinstance(still, StillDetector) and not still.needs_colour
    assert create_detector(HaarConfig(), still=StillConfig(pad=0)).config.pad == 0
    monkeypatch.setenv("EDGEFER_YUNET", str(yunet_model))
    assert isinstance(create_detector("yunet"), YuNetDetector)
    assert create_detector("yunet", still=True).needs_colour
    with pytest.raises(ValueError, match="unknown face detector 'dlib'"):
        create_detector("dlib")


def test_yunet_model_search_order_and_error(tmp_path, monkeypatch, yunet_model):
    monkeypatch.delenv("EDGEFER_YUNET", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with pytest.raises(DetectorError) as err:
        find_yunet_model()
    message = str(err.value)
    assert str(tmp_path / "cache" / "edgefer" / "face_detection_yunet_2023mar.onnx") in message
    assert "EDGEFER_YUNET" in message and "opencv_zoo" in message
    cached = tmp_path / "cache" / "edgefer" / "face_detection_yunet_2023mar.onnx"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(yunet_model.read_bytes())
    assert find_yunet_model() == cached
    monkeypatch.setenv("EDGEFER_YUNET", str(yunet_model))
    assert find_yunet_model() == yunet_model  # the variable comes first
    assert find_yunet_model(cached) == cached  # an explicit path comes before both
    with pytest.raises(DetectorError, match="does not exist"):
        find_yunet_model(tmp_path / "nope.onnx")


def test_small_faces_of_a_large_photo_are_found(media):
    """The crowd photo in the middle of a 2560x1440 canvas: its faces are 5-11 % of the shorter side, below
    the stream rule's 10 % for most, but well above the still rule's 48 pixels."""
    photo = cv2.imread(str(media / "12_angry_men.jpg"), cv2.IMREAD_GRAYSCALE)
    canvas = np.full((1440, 2560), 128, np.uint8)
    canvas[360:360 + photo.shape[0], 640:640 + photo.shape[1]] = photo
    native = create_detector("haar", still=True).detect(photo)
    stream = HaarDetector().detect(canvas)
    large = create_detector("haar", still=True).detect(canvas)
    assert len(native) >= 5
    assert len(large) >= len(native) > len(stream)


def test_tight_crops_are_found_with_the_padded_look(media, yunet_model):
    crops = tight_crops(media, yunet_model)
    assert len(crops) >= 8
    plain = create_detector("haar", still=StillConfig(pad=0))
    padded = create_detector("haar", still=True)
    found_plain = sum(1 for c in crops if plain.detect(c))
    found = [padded.detect(c) for c in crops]
    assert sum(1 for f in found if f) > found_plain
    assert padded.padded_looks == len(crops) - found_plain
    for boxes in found:
        for b in boxes:  # boxes of the padded look are mapped back into the crop
            assert b.x >= 0 and b.y >= 0 and b.x + b.w <= 350 and b.y + b.h <= 350
    yunet = create_detector(YuNetConfig(str(yunet_model)), still=True)
    assert all(yunet.detect(c) for c in crops)


def test_no_face_photo_stays_empty_after_the_second_look(media):
    detector = create_detector("haar", still=True)
    assert detector.detect(cv2.imread(str(media / "no-faces.jpg"))) == []
    assert detector.padded_looks == 1


def test_detect_command_treats_images_as_stills(media, yunet_model, tiny_artifacts, tmp_path):
    from edgefer.runtime.commands import run_detect

    crop = tight_crops(media, yunet_model)[0]
    cv2.imwrite(str(tmp_path / "face.png"), crop)
    out = io.StringIO()
    run_detect(str(tmp_path / "face.png"), str(tiny_artifacts / "tiny_int8.tflite"), out=out, summary_out=None,
               tracking=TrackConfig())
    (event,) = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(event["faces"]) == 1


def test_serve_config_selects_yunet(yunet_model, tmp_path):
    from edgefer.runtime.serve.config import ConfigError, parse_config

    config = parse_config(f'[detector]\nkind = "yunet"\nyunet_model = "{yunet_model}"\nscore_threshold = 0.8\n')
    runtime = config.detector.runtime_config()
    assert isinstance(runtime, YuNetConfig) and runtime.model == str(yunet_model) and runtime.score_threshold == 0.8
    assert isinstance(create_detector(runtime, TrackConfig()), TrackingDetector)
    haar = parse_config("[detector]\ndetect_width = 0\nmin_face = 40\n").detector.runtime_config()
    assert isinstance(haar, HaarConfig) and haar.detect_width == 0 and haar.min_face == 40
    assert parse_config("").detector.runtime_config() == HaarConfig()
    with pytest.raises(ConfigError, match="detector.kind: must be one of 'haar', 'yunet'"):
        parse_config('[detector]\nkind = "dlib"\n')
    with pytest.raises(ConfigError, match="YuNet model file .* does not exist"):
        parse_config(f'[detector]\nkind = "yunet"\nyunet_model = "{tmp_path / "none.onnx"}"\n')
    with pytest.raises(ConfigError, match="detector.detect_width"):
        parse_config("[detector]\ndetect_width = 16\n")
