"""The `edgefer serve` loop: reconnects, bad frames, health/metrics, systemd notify, SIGTERM, kill -9."""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgefer.runtime.detect import HaarDetector
from edgefer.runtime.manifest import Manifest
from edgefer.runtime.probabilities import ProbabilityMap
from edgefer.runtime.serve.config import parse_config
from edgefer.runtime.serve.service import Service
from edgefer.runtime.sources import SourceError
from edgefer.runtime.tracking import TrackingDetector

from .serve_support import FakeCamera, free_port, get, parse_metrics, read_events, start_service, wait_until, write_clip, \
    write_config


def _config(model: Path, extra: str = "") -> str:
    return (f'[model]\npath = "{model}"\n[source]\nspec = "fake"\nreconnect_initial_s = 0.05\n'
            f'reconnect_max_s = 0.2\n[outputs]\nemit = "all"\n[outputs.http]\nenabled = false\n{extra}')


@pytest.fixture
def model(tiny_artifacts) -> Path:
    return tiny_artifacts / "tiny_int8.tflite"


def test_camera_missing_then_lost_is_retried_with_backoff(model):
    grey = np.full((120, 160, 3), 90, np.uint8)
    attempts: list[float] = []
    cameras = [FakeCamera([grey, None, grey, np.zeros((0,), np.uint8), grey]), FakeCamera([grey] * 50)]

    def opener(spec, options):
        attempts.append(time.monotonic())
        if len(attempts) <= 3:
            raise SourceError("camera /dev/video0 does not exist")
        return cameras.pop(0)

    service = Service(parse_config(_config(model)), opener=opener, max_frames=20)
    assert service.run() == 0
    m = service.metrics
    assert m.open_failures.value() == 3
    assert m.reconnects.value() == 1  # the first camera stopped delivering, a second one was opened
    assert m.dropped.value(reason="read_failed") == 1
    assert m.dropped.value(reason="bad_frame") == 1  # an empty array: skipped, counted, the loop goes on
    assert m.frames.value() == 18 and service.seq == 18
    gaps = np.diff(attempts[:4])
    assert gaps[0] >= 0.05 and gaps[1] >= 0.1 and gaps[2] >= 0.2  # 0.05, 0.1, then capped at 0.2
    assert not cameras


def test_finite_source_stops_or_loops(model, tmp_path):
    clip = write_clip(tmp_path / "clip.avi", frames=6)
    once = Service(parse_config(_config(model).replace('spec = "fake"', f'spec = "{clip}"')))
    assert once.run() == 0 and once.metrics.frames.value() == 6
    looped = Service(parse_config(_config(model).replace('spec = "fake"', f'spec = "{clip}"\nloop = true')),
                     max_frames=15)
    assert looped.run() == 0 and looped.metrics.frames.value() == 15


def test_events_carry_only_labels_scores_boxes_and_times(model, tmp_path):
    events = tmp_path / "events.jsonl"
    frames_dir = tmp_path / "frames"
    text = _config(model, f'[outputs.jsonl]\nenabled = true\npath = "{events}"\n'
                          f'[privacy]\ninclude_scores = false\nframes_dir = "{frames_dir}"\n')
    service = Service(parse_config(text), opener=lambda s, o: FakeCamera([np.full((60, 80), 50, np.uint8)] * 4),
                      max_frames=4)
    service.run()
    lines = read_events(events)
    assert len(lines) == 4
    assert all(set(e) == {"seq", "time", "frame", "faces"} for e in lines)
    assert not frames_dir.exists()  # save_frames is off by default: nothing written


def test_events_carry_smoothed_probabilities_and_raw_scores_of_each_face(model, media, tmp_path):
    events = tmp_path / "events.jsonl"
    face = cv2.resize(cv2.imread(str(media / "justin.jpg")), (640, 480))
    text = _config(model, f'[outputs.jsonl]\nenabled = true\npath = "{events}"\n'
                          '[smoothing]\nmin_hits = 1\nmin_confidence = 0.05\n')
    Service(parse_config(text), opener=lambda s, o: FakeCamera([face] * 3), max_frames=3).run()
    lines = read_events(events)
    manifest = Manifest.load(model)
    to_probabilities = ProbabilityMap(manifest)
    assert all(e["scores_kind"] == to_probabilities.scores_kind for e in lines)
    faces = [f for e in lines for f in e["faces"]]
    assert faces
    for f in faces:
        assert set(f) == {"track", "box", "label", "probability", "probabilities", "scores"}
        assert sum(f["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)
        assert f["label"] is None or f["probability"] == f["probabilities"][f["label"]]
    # A track's first event: nothing smoothed yet, so its probabilities are its raw scores' own.
    first = lines[0]["faces"][0]
    raw = np.array([[first["scores"][name] for name in manifest.labels]])
    assert list(to_probabilities(raw)[0]) == pytest.approx([first["probabilities"][n] for n in manifest.labels],
                                                         abs=2e-3)


def test_min_confidence_is_a_probability(model):
    from edgefer.runtime.serve.config import ConfigError

    with pytest.raises(ConfigError, match="min_confidence"):
        parse_config(_config(model, "[smoothing]\nmin_confidence = 1.5\n"))


def test_health_and_metrics_over_http(model):
    port = free_port()
    grey = np.full((120, 160, 3), 90, np.uint8)
    camera_ready = threading.Event()

    def opener(spec, options):
        if not camera_ready.is_set():
            raise SourceError("no camera yet")
        return FakeCamera([grey] * 100_000, delay_s=0.01)

    text = _config(model).replace("enabled = false", f"enabled = true\nport = {port}")
    service = Service(parse_config(text), opener=opener)
    thread = threading.Thread(target=service.run)
    thread.start()
    try:
        # The HTTP server answers before the first camera attempt ("starting"); wait for that attempt to fail.
        status, body = wait_until(
            lambda: (r := get(port, "/healthz")) and json.loads(r[1]).get("state") != "starting" and r,
            30, "/healthz past starting")
        assert status == 503 and json.loads(body)["state"] == "waiting_for_source"
        camera_ready.set()
        status, body = wait_until(lambda: (r := get(port, "/healthz"))[0] == 200 and r, 30, "a healthy service")
        assert json.loads(body)["camera_connected"] is True
        status, text = get(port, "/metrics")
        values = parse_metrics(text)
        assert status == 200 and values["edgefer_frames_total"] >= 1
        assert values["edgefer_source_open_failures_total"] >= 1
        for stage in ("read", "detect", "preprocess", "infer", "total"):
            assert values[f'edgefer_stage_latency_seconds_count{{stage="{stage}"}}'] >= 1
        assert get(port, "/nope")[0] == 404
    finally:
        service.stop()
        thread.join(timeout=30)
    assert not thread.is_alive()
    with pytest.raises(OSError):
        get(port, "/healthz")


def _clip_config(tmp_path: Path, model: Path, clip: Path, **extra) -> Path:
    sections = {
        "source": {"spec": str(clip), "loop": True, "max_fps": 30.0, "reconnect_initial_s": 0.2,
                   "reconnect_max_s": 0.5},
        "model": {"path": str(model)},
        "outputs": {"emit": "all"},
        "outputs.jsonl": {"enabled": True, "path": str(tmp_path / "events.jsonl")},
        "outputs.http": {"enabled": True, "port": free_port()},
        "health": {"status_interval_s": 0.5},
    }
    for key, values in extra.items():
        sections.setdefault(key.replace("__", "."), {}).update(values)
    return write_config(tmp_path / "serve.toml", sections)


def _port(config: Path) -> int:
    return parse_config(config.read_text()).outputs.http.port


def test_systemd_notify_ready_watchdog_and_sigterm(tmp_path, model):
    """The real service process: READY once up, WATCHDOG pings, a missing camera waited for, clean SIGTERM."""
    clip = tmp_path / "clip.avi"  # absent at start: the "camera" appears later
    config = _clip_config(tmp_path, model, clip)
    address = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.settimeout(0.2)
    messages: list[str] = []

    def received(*wanted: str) -> bool:
        try:
            while True:
                messages.extend(sock.recv(4096).decode().split("\n"))
        except (socket.timeout, BlockingIOError):
            pass
        return all(any(m.startswith(w) for m in messages) for w in wanted)

    log = tmp_path / "serve.log"
    proc = start_service(config, log, {"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "1000000"})
    try:
        wait_until(lambda: received("READY=1"), 180, "READY=1", proc, log, step_s=0)
        wait_until(lambda: received("STATUS=cannot open"), 30, "a STATUS about the missing camera", proc, log, 0)
        port = _port(config)
        assert get(port, "/healthz")[0] == 503
        write_clip(tmp_path / "tmp.avi", frames=20).rename(clip)
        wait_until(lambda: get(port, "/healthz")[0] == 200, 60, "a healthy service", proc, log)
        pings = messages.count("WATCHDOG=1")
        wait_until(lambda: received() and messages.count("WATCHDOG=1") >= pings + 3, 10, "watchdog pings",
                   proc, log, 0)
        assert any(m.startswith("MAINPID=") for m in messages)
        assert messages.count("READY=1") == 1
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, log.read_text()
        # A hang check, not a speed target: systemd's TimeoutStopSec is 15 s.
        assert time.monotonic() - t0 < 10
        received()
        assert "STOPPING=1" in messages
    finally:
        if proc.poll() is None:
            proc.kill()
        sock.close()
    assert "stopped:" in log.read_text()
    events = read_events(tmp_path / "events.jsonl")
    assert events and [e["seq"] for e in events] == list(range(1, len(events) + 1))


def test_kill_9_leaves_the_event_log_intact(tmp_path, model):
    clip = write_clip(tmp_path / "clip.avi", frames=20)
    config = _clip_config(tmp_path, model, clip, source={"max_fps": 0.0})
    events = tmp_path / "events.jsonl"
    for round_ in range(2):
        log = tmp_path / f"serve{round_}.log"
        proc = start_service(config, log)
        try:
            before = len(read_events(events)) if events.exists() else 0
            wait_until(lambda: events.exists() and events.stat().st_size > 0
                       and len(events.read_bytes().splitlines()) >= before + 60, 180, "events", proc, log)
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        lines = read_events(events)  # every line parses, the file ends in a newline
        assert len(lines) >= before + 60
    seqs = [e["seq"] for e in lines]
    restart = seqs.index(1, 1)  # the second run appended after the first run's lines
    assert seqs[:restart] == list(range(1, restart + 1))


def test_detect_every_runs_the_detector_on_every_nth_frame_and_resets_on_reconnect(model, media):
    face = cv2.resize(cv2.imread(str(media / "justin.jpg")), (640, 480))
    cameras = [FakeCamera([face] * 12), FakeCamera([face] * 6)]
    service = Service(parse_config(_config(model, "[detector]\ndetect_every = 4\n")),
                      opener=lambda s, o: cameras.pop(0), max_frames=18)
    assert isinstance(service.recognizer.detector, TrackingDetector)
    resets = []
    forget = service.recognizer.detector.reset
    service.recognizer.detector.reset = lambda: (resets.append(service.seen), forget())
    assert service.run() == 0
    # Each opened camera is a new stream (0, 12), even under the same name; the pipeline also
    # resets when the first frame of a new origin arrives (1).
    assert resets == [0, 1, 12]
    # 12 frames with passes at 0, 4, 8, then 6 frames of the reopened camera with passes at 0 and 4.
    assert service.recognizer.detector.detections == 5 and service.recognizer.detector.tracked == 13
    every = Service(parse_config(_config(model, "[detector]\ndetect_every = 1\n")))
    assert isinstance(every.recognizer.detector, HaarDetector)
