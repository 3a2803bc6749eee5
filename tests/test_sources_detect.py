"""Frame sources and the Haar detector."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgefer.runtime.detect import DetectorError, HaarConfig, HaarDetector, find_haar_cascade
from edgefer.runtime.sources import DirectorySource, ImageFileSource, SourceError, VideoCaptureSource, open_source

from .conftest import MEDIA


def _noise(seed: int, shape=(120, 160, 3)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, shape, dtype=np.uint8)


def test_image_file_source(tmp_path):
    path = tmp_path / "a.png"
    cv2.imwrite(str(path), _noise(0))
    with open_source(str(path)) as src:
        assert isinstance(src, ImageFileSource)
        frames = list(src)
    assert len(frames) == 1 and frames[0].image.shape == (120, 160, 3) and frames[0].error is None


def test_single_bad_file_fails_before_running(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8 truncated")
    with pytest.raises(SourceError, match="cannot decode"):
        open_source(str(bad))
    with pytest.raises(SourceError, match="does not exist"):
        open_source(str(tmp_path / "missing.jpg"))


def test_directory_source_reports_bad_items_and_continues(tmp_path):
    cv2.imwrite(str(tmp_path / "1.png"), _noise(1))
    (tmp_path / "2.jpg").write_bytes(b"garbage")
    cv2.imwrite(str(tmp_path / "3.png"), _noise(3))
    (tmp_path / "notes.txt").write_text("ignored")
    with open_source(str(tmp_path)) as src:
        assert isinstance(src, DirectorySource)
        frames = list(src)
    assert [f.index for f in frames] == [0, 1, 2]
    assert frames[1].image is None and "2.jpg" in frames[1].error
    assert frames[0].image is not None and frames[2].image is not None


def test_empty_directory_is_an_error(tmp_path):
    with pytest.raises(SourceError, match="no images"):
        open_source(str(tmp_path))


def test_video_file_source(tmp_path):
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (160, 120))
    for i in range(7):
        writer.write(_noise(i))
    writer.release()
    with open_source(str(path)) as src:
        assert isinstance(src, VideoCaptureSource)
        frames = list(src)
    assert len(frames) == 7
    # position_s is where the frame sits in the clip; timestamp is when it was read (epoch seconds).
    assert frames[-1].position_s == pytest.approx(0.6, abs=0.01)
    assert frames[0].timestamp > 1.6e9 and frames[-1].timestamp >= frames[0].timestamp


def test_open_failures_give_advice_for_their_kind_of_source(tmp_path):
    # A network stream that refuses the connection: advice about URLs and reachability, not webcams.
    with pytest.raises(SourceError) as info:
        open_source("rtsp://127.0.0.1:9/nothing")
    assert "URL" in str(info.value) and "video' group" not in str(info.value)
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video at all")
    with pytest.raises(SourceError, match="complete video") as info:
        open_source(str(bad))
    assert "video' group" not in str(info.value)


def test_missing_camera_is_a_clear_error():
    with pytest.raises(SourceError, match="/dev/video99 does not exist"):
        open_source("/dev/video99")
    with pytest.raises(SourceError, match="cannot open video source 97"):
        open_source("97")


def test_picamera2_off_a_pi_names_the_package():
    pytest.importorskip("numpy")
    try:
        import picamera2  # noqa: F401
    except ImportError:
        with pytest.raises(SourceError, match="python3-picamera2"):
            open_source("picamera2")
    else:
        pytest.skip("picamera2 is installed here; the off-Pi error cannot be observed")


def test_cascade_found_and_explicit_path_checked(tmp_path):
    assert find_haar_cascade().name == "haarcascade_frontalface_default.xml"
    with pytest.raises(DetectorError, match="does not exist"):
        find_haar_cascade(tmp_path / "nope.xml")
    with pytest.raises(DetectorError, match="looked in"):
        find_haar_cascade(name="haarcascade_does_not_exist.xml")


def test_detector_rejects_bad_scale_factor():
    with pytest.raises(ValueError, match="scale_factor"):
        HaarDetector(HaarConfig(scale_factor=1.0))


@pytest.mark.parametrize("name,minimum", [("justin.jpg", 1), ("two_people.jpg", 2), ("12_angry_men.jpg", 5)])
def test_faces_found_in_shared_media(media: Path, name, minimum):
    img = cv2.imread(str(media / name), cv2.IMREAD_GRAYSCALE)
    boxes = HaarDetector().detect(img)
    assert len(boxes) >= minimum
    for b in boxes:
        assert 0 <= b.x and 0 <= b.y and b.x + b.w <= img.shape[1] + 1 and b.y + b.h <= img.shape[0] + 1


def test_no_faces_in_no_faces_jpg(media: Path):
    img = cv2.imread(str(media / "no-faces.jpg"), cv2.IMREAD_GRAYSCALE)
    assert HaarDetector().detect(img) == []


def test_downscaled_detection_maps_boxes_back(media: Path):
    img = cv2.imread(str(media / "two_people.jpg"), cv2.IMREAD_GRAYSCALE)
    full = HaarDetector(HaarConfig(detect_width=None)).detect(img)
    small = HaarDetector(HaarConfig(detect_width=560)).detect(img)
    assert len(small) >= 2
    for s in small[:2]:
        centre = np.array([s.x + s.w / 2, s.y + s.h / 2])
        nearest = min(np.linalg.norm(centre - [f.x + f.w / 2, f.y + f.h / 2]) for f in full)
        assert nearest < 0.25 * s.w


def test_second_cascade_confirms_the_face_and_not_the_mission_patch():
    # The demo picture as `make demo` writes it (JPEG): the bare-window cascade also puts a box on the patch.
    from edgefer.runtime.detect import VERIFY_CASCADE, Box, confirmed, find_haar_cascade
    from edgefer.samples import astronaut_bgr

    jpeg = cv2.imdecode(cv2.imencode(".jpg", astronaut_bgr())[1], cv2.IMREAD_COLOR)
    grey = cv2.cvtColor(jpeg, cv2.COLOR_BGR2GRAY)
    verifier = cv2.CascadeClassifier(str(find_haar_cascade(name=VERIFY_CASCADE)))
    assert confirmed(verifier, grey, Box(174, 62, 104, 104))
    assert not confirmed(verifier, grey, Box(278, 122, 136, 136))
    assert not confirmed(verifier, grey, Box(0, 0, 4, 4))  # too small a patch to search: not a face
    bare = HaarConfig(1.2, 2, min_face_windows=1.0, min_face=48, min_face_ratio=0.0)
    assert len(HaarDetector(dataclasses.replace(bare, verify=False)).detect(grey)) == 2
    (face,) = HaarDetector(dataclasses.replace(bare, verify=True)).detect(grey)
    assert abs(face.x - 174) < 10 and abs(face.y - 62) < 10


def _confirmed_in_one_call(verifier, grey, box, side, step):
    """The confirmation as one detectMultiScale call over every level (what ``confirmed`` must equal)."""
    from edgefer.runtime.detect import VERIFY_MARGIN, Box

    margin = round(VERIFY_MARGIN * box.w)
    region = Box(box.x - margin, box.y - margin, box.w + 2 * margin, box.h + 2 * margin).clipped(*grey.shape[::-1])
    patch = region.crop(grey)
    r = side / box.w
    low, high = round(0.7 * side), round(1.4 * side) + 1
    if patch.size == 0 or min(round(patch.shape[0] * r), round(patch.shape[1] * r)) < low:
        return False
    patch = cv2.resize(patch, None, fx=r, fy=r, interpolation=cv2.INTER_AREA if r < 1 else cv2.INTER_LINEAR)
    return len(verifier.detectMultiScale(patch, step, 1, minSize=(low, low), maxSize=(high, high))) > 0


def test_level_by_level_confirmation_answers_as_one_call_does():
    # confirmed() searches level by level and stops at the first group of two windows; on detector boxes
    # (faces and false ones) and on random boxes it must say what one call over all levels says.
    from edgefer.runtime.detect import DEFAULT_CASCADE, VERIFY_CASCADE, Box, confirmed, find_haar_cascade
    from edgefer.samples import astronaut_bgr

    greys = [cv2.cvtColor(astronaut_bgr(), cv2.COLOR_BGR2GRAY)]
    for name in ("two_people.jpg", "justin.jpg"):
        if (MEDIA / name).exists():
            greys.append(cv2.imread(str(MEDIA / name), cv2.IMREAD_GRAYSCALE))
    verifier = cv2.CascadeClassifier(str(find_haar_cascade(name=VERIFY_CASCADE)))
    proposer = cv2.CascadeClassifier(str(find_haar_cascade(name=DEFAULT_CASCADE)))
    rng = np.random.default_rng(0)
    answers = []
    for grey in greys:
        boxes = [Box(*map(int, b)) for b in np.asarray(proposer.detectMultiScale(grey, 1.1, 1, minSize=(24, 24)))
                 .reshape(-1, 4)]
        for _ in range(15):
            w = int(rng.integers(20, min(grey.shape) // 2))
            boxes.append(Box(int(rng.integers(-10, grey.shape[1] - w)), int(rng.integers(-10, grey.shape[0] - w)), w, w))
        for box in boxes:
            for side, step in ((40, 1.05), (32, 1.1)):
                expected = _confirmed_in_one_call(verifier, grey, box, side, step)
                assert confirmed(verifier, grey, box, side, step) == expected, (box, side, step)
                answers.append(expected)
    assert any(answers) and not all(answers)  # both answers were exercised


def test_confirmation_of_a_box_mostly_outside_the_frame_says_no_instead_of_failing():
    # A box mapped back from a padded or shrunk image can reach past the frame; what is left inside is too
    # small to resize to the verifier's size (OpenCV refused it with an assertion before).
    from edgefer.runtime.detect import VERIFY_CASCADE, Box, confirmed, find_haar_cascade

    verifier = cv2.CascadeClassifier(str(find_haar_cascade(name=VERIFY_CASCADE)))
    grey = np.full((480, 640), 128, np.uint8)
    assert not confirmed(verifier, grey, Box(635, 100, 400, 400))
    assert not confirmed(verifier, grey, Box(-395, -395, 400, 400))


def test_a_box_inside_a_larger_one_is_dropped_as_part_of_the_same_face():
    from edgefer.runtime.detect import Box, drop_nested

    face, mouth, other = Box(100, 50, 160, 160), Box(140, 140, 60, 60), Box(300, 60, 80, 80)
    assert drop_nested([mouth, other, face]) == [face, other]
    assert drop_nested([]) == []
