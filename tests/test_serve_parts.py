"""The pieces of `edgefer serve`: smoothing, metrics, JSON-lines log, sd_notify, frame saver, CSI source."""

from __future__ import annotations

import json
import os
import socket

import numpy as np
import pytest

from edgefer.runtime.detect import Box
from edgefer.runtime.serve.frames import FrameSaver
from edgefer.runtime.serve.jsonl import JsonlWriter
from edgefer.runtime.serve.metrics import Registry, ServiceMetrics
from edgefer.runtime.serve.sdnotify import Notifier
from edgefer.runtime.serve.smoothing import FaceTracker, iou
from edgefer.runtime.serve.soak import late_growth, parse_metrics
from edgefer.runtime.sources import CaptureOptions, SourceError, gstreamer_available, nvargus_pipeline, open_source

LABELS = ["angry", "happy", "sad"]


def _probs(*rows):
    return np.asarray(rows, np.float32)


def test_iou():
    assert iou(Box(0, 0, 10, 10), Box(0, 0, 10, 10)) == 1.0
    assert iou(Box(0, 0, 10, 10), Box(20, 20, 5, 5)) == 0.0
    assert iou(Box(0, 0, 10, 10), Box(5, 0, 10, 10)) == pytest.approx(50 / 150)


def test_tracker_smooths_and_holds_label_below_min_confidence():
    tracker = FaceTracker(LABELS, alpha=0.5, min_hits=1, min_confidence=0.65)
    (face,) = tracker.update([Box(10, 10, 50, 50)], _probs([0.9, 0.1, 0.0]))
    assert face.label == "angry" and face.track == 1
    # One noisy frame says "happy": the EMA keeps angry on top.
    (face,) = tracker.update([Box(12, 10, 50, 50)], _probs([0.1, 0.9, 0.0]))
    assert face.label == "angry" and face.probabilities["angry"] == pytest.approx(0.5)
    # happy takes the top spot but below min_confidence: the label holds.
    (face,) = tracker.update([Box(14, 10, 50, 50)], _probs([0.1, 0.7, 0.0]))
    assert face.probabilities["happy"] > face.probabilities["angry"] and face.label == "angry"
    (face,) = tracker.update([Box(14, 10, 50, 50)], _probs([0.0, 0.9, 0.0]))
    assert face.label == "happy" and face.track == 1


def test_tracker_new_face_without_confident_label_reports_none():
    tracker = FaceTracker(LABELS, alpha=1.0, min_hits=1, min_confidence=0.8)
    (face,) = tracker.update([Box(0, 0, 40, 40)], _probs([0.5, 0.3, 0.2]))
    assert face.label is None and face.probability == pytest.approx(0.5)


def test_tracker_min_hits_max_missed_and_two_faces():
    tracker = FaceTracker(LABELS, alpha=1.0, min_hits=2, max_missed=1)
    a, b = Box(0, 0, 40, 40), Box(200, 0, 40, 40)
    assert tracker.update([a, b], _probs([1, 0, 0], [0, 0, 1])) == []
    faces = tracker.update([b, a], _probs([0, 0, 1], [1, 0, 0]))
    assert [(f.track, f.label) for f in faces] == [(1, "angry"), (2, "sad")]
    # One frame without face 1: still reported with its last box; two frames: gone.
    faces = tracker.update([b], _probs([0, 0, 1]))
    assert [f.track for f in faces] == [1, 2] and faces[0].box == a
    faces = tracker.update([b], _probs([0, 0, 1]))
    assert [f.track for f in faces] == [2]
    # A face far from every track starts a new one.
    tracker.update([Box(100, 100, 40, 40)], _probs([0, 1, 0]))
    assert max(t.id for t in tracker.tracks) == 3


def test_tracker_handles_empty_frames():
    tracker = FaceTracker(LABELS)
    assert tracker.update([], np.zeros((0, 3), np.float32)) == []


def test_metrics_text_format():
    m = ServiceMetrics()
    m.frames.inc(3)
    m.dropped.inc(reason="bad_frame")
    m.latency.observe(0.004, stage="detect")
    m.latency.observe(0.2, stage="detect")
    text = m.registry.render()
    assert "# TYPE edgefer_frames_total counter\nedgefer_frames_total 3\n" in text
    assert 'edgefer_dropped_frames_total{reason="bad_frame"} 1' in text
    assert 'edgefer_stage_latency_seconds_bucket{stage="detect",le="0.005"} 1' in text
    assert 'edgefer_stage_latency_seconds_bucket{stage="detect",le="+Inf"} 2' in text
    assert 'edgefer_stage_latency_seconds_count{stage="detect"} 2' in text
    values = parse_metrics(text)
    assert values['edgefer_stage_latency_seconds_sum{stage="detect"}'] == pytest.approx(0.204)
    assert m.latency.totals(stage="detect") == (pytest.approx(0.204), 2)


def test_metric_label_values_are_escaped():
    r = Registry()
    r.counter("edgefer_x_total", "x").inc(output='a"b\\c')
    assert 'edgefer_x_total{output="a\\"b\\\\c"} 1' in r.render()


def test_jsonl_appends_whole_lines_and_rotates(tmp_path):
    path = tmp_path / "log" / "events.jsonl"
    writer = JsonlWriter(path, max_bytes=1024, backups=2)
    for i in range(100):
        writer.write({"seq": i, "pad": "x" * 40})
    writer.close()
    files = [path, path.with_name("events.jsonl.1"), path.with_name("events.jsonl.2")]
    assert all(f.exists() for f in files) and not path.with_name("events.jsonl.3").exists()
    seqs = []
    for f in reversed(files):
        assert f.stat().st_size <= 1024
        text = f.read_text()
        assert text.endswith("\n")
        seqs += [json.loads(line)["seq"] for line in text.splitlines()]
    assert seqs == list(range(seqs[0], 100))  # newest lines kept, in order, none torn


def test_jsonl_reopen_appends_and_cuts_a_torn_tail(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text('{"seq":1}\n{"seq":2}\n{"seq":3, "cut by a pow')
    writer = JsonlWriter(path)
    writer.write({"seq": 4})
    writer.close()
    assert [json.loads(line)["seq"] for line in path.read_text().splitlines()] == [1, 2, 4]


def test_jsonl_unwritable_folder_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OSError, match="event log folder"):
        JsonlWriter(blocker / "sub" / "events.jsonl")


def test_sd_notify_messages(tmp_path):
    address = str(tmp_path / "notify.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(address)
    server.settimeout(2)
    notifier = Notifier({"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "2000000", "WATCHDOG_PID": str(os.getpid())})
    assert notifier.watchdog_interval_s == 1.0
    notifier.ready("up")
    assert server.recv(4096).decode().split("\n") == ["READY=1", "STATUS=up", f"MAINPID={os.getpid()}"]
    notifier.watchdog(now=100.0)
    notifier.watchdog(now=100.5)  # within the interval: no second ping
    notifier.watchdog(now=101.1)
    assert [server.recv(4096), server.recv(4096)] == [b"WATCHDOG=1", b"WATCHDOG=1"]
    server.setblocking(False)
    with pytest.raises(BlockingIOError):
        server.recv(4096)
    notifier.close()
    server.close()


def test_sd_notify_is_silent_without_systemd():
    notifier = Notifier({})
    assert not notifier.enabled and notifier.watchdog_interval_s is None
    assert notifier.send(ready=1) is False
    # A watchdog meant for another process (WATCHDOG_PID) is not ours to feed.
    assert Notifier({"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"}).watchdog_interval_s is None


def test_frame_saver_is_rate_limited_and_bounded(tmp_path):
    saver = FrameSaver(tmp_path / "frames", interval_s=10, max_files=2)
    img = np.zeros((20, 20, 3), np.uint8)
    written = [saver.offer(img, i, now=1000.0 + 5 * i) for i in range(8)]
    assert sum(p is not None for p in written) == 4
    assert len(list((tmp_path / "frames").glob("*.jpg"))) == 2


def test_nvargus_pipeline():
    text = nvargus_pipeline(1, 1920, 1080, 30, flip=2, out_width=960, out_height=540)
    assert text.startswith("nvarguscamerasrc sensor-id=1 ! video/x-raw(memory:NVMM), width=1920, height=1080, "
                           "framerate=30/1")
    assert "nvvidconv flip-method=2 ! video/x-raw, width=960, height=540, format=BGRx" in text
    assert text.endswith("appsink drop=true max-buffers=1 sync=false")
    with pytest.raises(ValueError, match="flip"):
        nvargus_pipeline(flip=9)
    with pytest.raises(ValueError, match="fps"):
        nvargus_pipeline(fps=0)


def test_csi_source_without_gstreamer_names_the_fix():
    if gstreamer_available():
        pytest.skip("this OpenCV has GStreamer; the missing-GStreamer error cannot be observed")
    with pytest.raises(SourceError, match="no GStreamer support.*JetPack's OpenCV"):
        open_source("csi:0", CaptureOptions(1280, 720, 30))
    with pytest.raises(SourceError, match="camera number"):
        open_source("csi:x")


def test_late_growth_compares_late_checkpoints():
    cps = [{"frames": 100 * i, "rss_mib": 100.0 + (20 if i == 0 else i * 0.1), "fds": 10} for i in range(10)]
    growth = late_growth(cps)
    assert growth["between_frames"] == [500, 900] and growth["fds"] == 0
    assert growth["rss_mib"] == pytest.approx(0.4)
    assert late_growth(cps[:1])["rss_mib"] is None


def test_tracker_keeps_the_last_raw_scores_beside_the_smoothed_probabilities():
    tracker = FaceTracker(["a", "b"], alpha=0.5, min_hits=1)
    box = Box(0, 0, 10, 10)
    tracker.update([box], np.array([[0.9, 0.1]]), np.array([[1.5, -1.0]]))
    (face,) = tracker.update([box], np.array([[0.1, 0.9]]), np.array([[-0.5, 2.0]]))
    assert face.probabilities == {"a": pytest.approx(0.5), "b": pytest.approx(0.5)}  # smoothed
    assert face.scores == {"a": -0.5, "b": 2.0}  # the latest frame's, not averaged
    (face,) = FaceTracker(["a", "b"], min_hits=1).update([box], np.array([[0.9, 0.1]]))
    assert face.scores is None
