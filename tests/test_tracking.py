"""Detect every N frames and track in between; face-size limits tied to the frame; recall on shared clips."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edgefer.runtime.detect import Box, HaarConfig, HaarDetector, detect_scale, face_size_limits
from edgefer.runtime.detectors import create_detector
from edgefer.runtime.pipeline import Pipeline
from edgefer.runtime.recognizer import EmotionRecognizer
from edgefer.runtime.sources import Frame
from edgefer.runtime.tracking import TrackConfig, TrackingDetector


class ScriptedDetector:
    """A test double: returns the box it is told to, and counts its calls."""

    needs_colour = False

    def __init__(self, box_for_frame):
        self.box_for_frame = box_for_frame
        self.calls: list[int] = []
        self.frame = 0

    def detect(self, image):
        self.calls.append(self.frame)
        box = self.box_for_frame(self.frame)
        return [box] if box is not None else []


def _scene(x: int, y: int, patch: np.ndarray, seed: int = 0) -> np.ndarray:
    frame = np.random.default_rng(seed).integers(90, 110, (240, 320), dtype=np.uint8)
    frame[y : y + patch.shape[0], x : x + patch.shape[1]] = patch
    return frame


def _patch(size: int = 60) -> np.ndarray:
    rng = np.random.default_rng(7)
    return cv2.GaussianBlur(rng.integers(0, 255, (size, size), dtype=np.uint8), (5, 5), 0)


def _run(tracker: TrackingDetector, scripted: ScriptedDetector, frames: list[np.ndarray]) -> list[list[Box]]:
    out = []
    for i, f in enumerate(frames):
        scripted.frame = i
        out.append(tracker.detect(f))
    return out


def test_detects_every_n_frames_and_follows_the_face_between():
    patch = _patch()
    xs = [40 + 6 * i for i in range(10)]
    frames = [_scene(x, 50, patch, seed=i) for i, x in enumerate(xs)]
    scripted = ScriptedDetector(lambda i: Box(xs[i], 50, 60, 60))
    tracker = TrackingDetector(scripted, TrackConfig(detect_every=4))
    results = _run(tracker, scripted, frames)
    assert scripted.calls == [0, 4, 8]
    assert tracker.detections == 3 and tracker.tracked == 7
    for i, boxes in enumerate(results):
        assert len(boxes) == 1
        assert abs(boxes[0].x - xs[i]) <= 2 and abs(boxes[0].y - 50) <= 2, (i, boxes[0])


def test_lost_face_triggers_detection_on_the_next_frame():
    patch = _patch()
    frames = [_scene(40, 50, patch, 0), _scene(40, 50, patch, 1)] + [_scene(0, 0, patch[:0], s) for s in (2, 3, 4)]
    scripted = ScriptedDetector(lambda i: Box(40, 50, 60, 60) if i < 2 else None)
    tracker = TrackingDetector(scripted, TrackConfig(detect_every=10, keep_missed=0))
    results = _run(tracker, scripted, frames)
    assert results[1] and results[2] == []  # frame 2: the patch is gone, the track is dropped
    assert scripted.calls[:2] == [0, 3]  # ... and frame 3 is a detection frame at once


def test_face_missed_by_one_detection_pass_is_kept():
    patch = _patch()
    frames = [_scene(40 + 3 * i, 50, patch, i) for i in range(7)]
    scripted = ScriptedDetector(lambda i: Box(40 + 3 * i, 50, 60, 60) if i == 0 else None)
    tracker = TrackingDetector(scripted, TrackConfig(detect_every=3, keep_missed=1))
    results = _run(tracker, scripted, frames)
    assert all(len(b) == 1 for b in results[:6]), results  # detection at 3 missed it, tracking kept it
    assert results[6] == []  # the second missed pass (frame 6) drops it
    assert scripted.calls[:3] == [0, 3, 6]


@pytest.mark.parametrize("face_bottom, kept", [(140, 1), (135, 2)])
def test_a_followed_part_of_a_face_gives_way_to_the_whole_face(face_bottom, kept):
    # Frame 0 finds a small box (say the mouth and chin); frame 3 finds the whole face above it, sharing a
    # quarter of the small box (no centre inside the other): the same face, one box. Sharing an eighth
    # (two people side by side), both stay.
    patch = _patch(40)
    frames = [_scene(100, 130, patch, i) for i in range(4)]
    face = Box(80, 50, 90, face_bottom - 50)
    scripted = ScriptedDetector(lambda i: Box(100, 130, 40, 40) if i == 0 else face if i == 3 else None)
    tracker = TrackingDetector(scripted, TrackConfig(detect_every=3, keep_missed=1))
    results = _run(tracker, scripted, frames)
    assert results[:3] == [[Box(100, 130, 40, 40)]] * 3  # followed between detection passes
    assert len(results[3]) == kept and results[3][0] == face, results[3]


def test_reset_and_new_frame_size_force_detection():
    patch = _patch()
    scripted = ScriptedDetector(lambda i: Box(40, 50, 60, 60))
    tracker = TrackingDetector(scripted, TrackConfig(detect_every=5))
    _run(tracker, scripted, [_scene(40, 50, patch, i) for i in range(2)])
    tracker.reset()
    scripted.frame = 2
    tracker.detect(_scene(40, 50, patch, 2))
    scripted.frame = 3
    tracker.detect(np.zeros((100, 100), np.uint8))
    assert scripted.calls == [0, 2, 3]


def test_pipeline_resets_tracking_between_unrelated_images():
    scripted = ScriptedDetector(lambda i: None)
    tracker = TrackingDetector(scripted, TrackConfig(detect_every=5))

    class NoFaces:
        labels = ["a"]

    pipeline = Pipeline(EmotionRecognizer.from_parts(tracker, NoFaces()))  # no faces: never classifies
    resets = []
    tracker.reset = lambda: resets.append(1)  # type: ignore[method-assign]
    img = np.full((64, 64), 100, np.uint8)
    for i, origin in enumerate(["a.jpg", "b.jpg", "b.jpg", "clip.mp4"]):
        pipeline.process(Frame(i, 0.0, img, origin))
    assert len(resets) == 3


def test_track_config_validation():
    for bad in ({"detect_every": 0}, {"search": 0}, {"min_score": 1.0}, {"template_width": 4}, {"keep_missed": -1}):
        with pytest.raises(ValueError):
            TrackConfig(**bad)


def test_face_size_limits_follow_the_frame():
    assert face_size_limits((480, 640), 24, None, 0.1, 1.0) == (48.0, 480.0)
    assert face_size_limits((720, 1280), 24, 200, 0.1, 0.5) == (72.0, 200.0)
    assert face_size_limits((100, 100), 24, None, 0.1, 1.0)[0] == 24.0
    # Shrink to detect_width, but never below what the smallest face needs in the 24-pixel window.
    assert detect_scale(640, 320, 48, 24) == 0.5
    assert detect_scale(640, 320, 30, 24) == pytest.approx(0.8)
    assert detect_scale(300, 320, 48, 24) == 1.0
    assert detect_scale(640, None, 0, 24) == 1.0


def test_detector_option_validation():
    with pytest.raises(ValueError, match="ratios"):
        HaarDetector(HaarConfig(min_face_ratio=0.5, max_face_ratio=0.2))
    with pytest.raises(ValueError, match="max_face"):
        HaarDetector(HaarConfig(min_face=50, max_face=20))
    with pytest.raises(ValueError, match="detect_width"):
        HaarDetector(HaarConfig(detect_width=10))
    assert isinstance(create_detector(HaarConfig(), TrackConfig(detect_every=1)), HaarDetector)
    assert isinstance(create_detector(HaarConfig(), TrackConfig(detect_every=3)), TrackingDetector)


def test_max_face_ratio_drops_large_faces(media: Path):
    img = cv2.imread(str(media / "justin.jpg"), cv2.IMREAD_GRAYSCALE)  # one face of about half the frame
    assert len(HaarDetector().detect(img)) == 1
    assert HaarDetector(HaarConfig(max_face_ratio=0.3)).detect(img) == []


def _clip_frames(path: Path, count: int) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while len(frames) < count:
        ok, img = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(cv2.resize(img, (640, 480)), cv2.COLOR_BGR2GRAY))
    cap.release()
    return frames


@pytest.mark.parametrize("clip", ["fer_test.mp4", "woman2.mp4"])
def test_default_detect_and_track_keeps_recall_on_clips(media: Path, clip):
    """The shipped defaults (downscaled Haar every 6th frame, tracking between) find the face in at least as
    many frames as Haar run on every full-size frame with fer's settings."""
    frames = _clip_frames(media / clip, 40)
    full = HaarDetector(HaarConfig(min_face=50, min_face_ratio=0.0, detect_width=None))
    fast = create_detector(HaarConfig(), TrackConfig())
    with_face_full = sum(1 for f in frames if full.detect(f))
    with_face_fast = sum(1 for f in frames if fast.detect(f))
    assert with_face_fast >= with_face_full
    assert fast.detections < len(frames) / 2


def test_track_dev_rejects_a_scale_factor_of_one_or_less(capsys):
    """benchmarks/track_dev.py refuses a Haar scale factor that cannot grow the window, before any work."""
    from benchmarks import track_dev

    assert track_dev.main(["--scale-factors", "1.1,1.0"]) == 2
    assert "--scale-factors must each be > 1.0" in capsys.readouterr().err
    assert track_dev.main(["--scale-factors", "1.1;1.2"]) == 2
    assert "numbers separated by commas" in capsys.readouterr().err
