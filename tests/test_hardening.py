"""Faults and hostile use (issue 21): credentials, a full disk, unbounded memory, huge or cut-short
images, corrupt videos, an HTTP client that never speaks, numbers out of range."""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
import tracemalloc
import urllib.request
import zlib
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from edgefer.runtime.images import ImageError, probe, read_image
from edgefer.runtime.redact import redact
from edgefer.runtime.serve import jsonl as jsonl_module
from edgefer.runtime.serve.jsonl import JsonlWriter

from .serve_support import FakeCamera, write_clip, write_config

SECRET = "s3cr3t-pw"
URL = f"rtsp://admin:{SECRET}@192.0.2.7:554/stream1"


# -- 1. credentials ------------------------------------------------------------------------------------

@pytest.mark.parametrize("text,expected", [
    (URL, "rtsp://***@192.0.2.7:554/stream1"),
    (f"cannot open 'http://u:p@ss@cam.local/x?y=1' now", "cannot open 'http://***@cam.local/x?y=1' now"),
    ('{"source": "rtsp://a:b@h/s", "n": 1}', '{"source": "rtsp://***@h/s", "n": 1}'),
    ("rtspsrc location=rtsp://u:p@10.0.0.2/live ! decodebin", "rtspsrc location=rtsp://***@10.0.0.2/live ! decodebin"),
    ("mail me@example.com about rtsp://host/stream", "mail me@example.com about rtsp://host/stream"),
])
def test_redact_removes_url_userinfo_only(text, expected):
    assert redact(text) == expected


def test_credentials_never_surface_in_logs_status_metrics_or_events(tmp_path, caplog):
    from edgefer.runtime.redact import install_log_redaction
    from edgefer.runtime.serve.metrics import ServiceMetrics
    from edgefer.runtime.serve.sdnotify import Notifier
    from edgefer.runtime.sources import SourceError, open_source

    # A source error carries the URL the way OpenCV's exception texts do.
    with pytest.raises(SourceError) as err:
        open_source("rtsp://admin:" + SECRET + "@127.0.0.1:1/stream")
    assert SECRET not in str(err.value) and "rtsp://***@127.0.0.1:1" in str(err.value)

    # Log lines (message, arguments, traceback) through the formatter edgefer installs.
    logger = logging.getLogger("edgefer.test.redact")
    stream = __import__("io").StringIO()
    handler = logging.StreamHandler(stream)
    logger.addHandler(handler)
    try:
        install_log_redaction(logger)
        try:
            raise RuntimeError(f"driver said {URL}")
        except RuntimeError:
            logger.exception("source %s failed", URL)
    finally:
        logger.removeHandler(handler)
    assert SECRET not in stream.getvalue() and "rtsp://***@192.0.2.7" in stream.getvalue()

    # systemd STATUS= (and its newline-safety), metrics labels, JSON-lines events.
    sock_path = tmp_path / "notify.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(str(sock_path))
    try:
        notifier = Notifier({"NOTIFY_SOCKET": str(sock_path)})
        notifier.status(f"cannot open {URL}:\nretrying")
        message = server.recv(4096).decode()
    finally:
        server.close()
    assert SECRET not in message and message.count("\n") == 0 and message.startswith("STATUS=")
    metrics = ServiceMetrics()
    metrics.dropped.inc(reason=f"read failed on {URL}")
    assert SECRET not in metrics.registry.render()
    writer = JsonlWriter(tmp_path / "e.jsonl")
    writer.write({"error": f"read failed on {URL}"})
    writer.close()
    assert SECRET not in (tmp_path / "e.jsonl").read_text()


def test_detect_cli_keeps_the_password_out_of_its_error():
    run = subprocess.run([sys.executable, "-m", "edgefer", "detect", "--source",
                          f"rtsp://admin:{SECRET}@127.0.0.1:1/stream"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 2, run.stderr
    assert SECRET not in run.stdout + run.stderr and "rtsp://***@127.0.0.1:1" in run.stderr


# -- 2. a full disk -----------------------------------------------------------------------------------

class Disk:
    """A small file system that fills up: a real 64 KiB tmpfs when this test may mount one, else a
    simulated one (``os.write`` of the JSON-lines writer fails with a short write, then ENOSPC)."""

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch):
        self.root = root
        self.real = False
        self._filler = root / "filler"
        self._full = False
        if os.geteuid() == 0 and shutil.which("mount"):
            run = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0755", "tmpfs", str(root)],
                                 capture_output=True)
            self.real = run.returncode == 0
        if not self.real:
            real_write = os.write

            def write(fd: int, data: bytes) -> int:
                if self._full:
                    if len(data) > 8:
                        return real_write(fd, data[: len(data) // 2])  # the short write of a filling disk
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                return real_write(fd, data)

            monkeypatch.setattr(jsonl_module.os, "write", write)

    def fill(self) -> None:
        """Take all free space but a few bytes."""
        if not self.real:
            self._full = True
            return
        fd = os.open(self._filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        try:
            for block in (b"\0" * 4096, b"\0"):
                try:
                    while os.write(fd, block):
                        pass
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC, exc
        finally:
            os.close(fd)

    def free(self) -> None:
        if self.real:
            self._filler.unlink()
        self._full = False

    def close(self) -> None:
        if self.real:
            subprocess.run(["umount", "-l", str(self.root)], check=False)


@pytest.fixture
def disk(tmp_path, monkeypatch):
    root = tmp_path / "disk"
    root.mkdir()
    d = Disk(root, monkeypatch)
    yield d
    d.close()


def _event(seq: int) -> dict:
    return {"seq": seq, "time": 1.0, "faces": [{"track": 1, "box": [1, 2, 3, 4], "label": "happy", "score": 0.9,
                                                   "pad": "x" * (seq % 97)}]}


def test_jsonl_on_a_full_disk_writes_whole_lines_warns_once_and_resumes(disk, caplog):
    path = disk.root / "events.jsonl"
    writer = JsonlWriter(path, max_bytes=1 << 30, backups=0)
    assert all(writer.write(_event(i)) for i in range(20))
    disk.fill()
    caplog.set_level(logging.WARNING, logger="edgefer.runtime.serve.jsonl")
    results = [writer.write(_event(i)) for i in range(20, 80)]
    assert not all(results), f"the {'tmpfs' if disk.real else 'simulated disk'} never filled up"
    first_lost = results.index(False)
    assert not any(results[first_lost:]), "a write succeeded on a full disk"
    assert writer.error and writer.lost == len(results) - first_lost
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "cannot write to the event log" in warnings[0].getMessage()
    text = path.read_bytes()
    assert text.endswith(b"\n"), "a half-written line was left behind"
    kept = [json.loads(line)["seq"] for line in text.splitlines()]
    assert kept == list(range(20 + first_lost))

    disk.free()
    assert writer.write(_event(1000)) and writer.error is None
    assert any("writable again" in r.getMessage() for r in caplog.records)
    writer.close()
    kept = [json.loads(line)["seq"] for line in path.read_bytes().splitlines()]
    assert kept == list(range(20 + first_lost)) + [1000]


def test_service_reports_a_failing_output_in_healthz_and_metrics(disk, caplog):
    from edgefer.runtime.serve.config import parse_config
    from edgefer.runtime.serve.service import Service

    grey = np.full((120, 160, 3), 90, np.uint8)
    config = parse_config(f'[source]\nspec = "fake"\nreconnect_initial_s = 0.01\n[outputs]\nemit = "all"\n'
                          f'[outputs.http]\nenabled = false\n[outputs.jsonl]\nenabled = true\n'
                          f'path = "{disk.root / "events.jsonl"}"\n')
    service = Service(config, opener=lambda spec, opts: FakeCamera([grey] * 5), max_frames=5)
    service.state = "running"
    service._last_frame = time.monotonic()
    disk.fill()
    caplog.set_level(logging.WARNING)
    try:
        for i in range(40):
            service._emit({"seq": i, "faces": [], "pad": "y" * 200})
        health = service.health()
        assert not health["ok"] and not health["outputs"]["jsonl"]["ok"]
        assert "space" in health["outputs"]["jsonl"]["error"].lower()
        text = service.metrics.registry.render()
        dropped = float(next(line.split()[-1] for line in text.splitlines()
                             if line.startswith('edgefer_events_dropped_total{output="jsonl"}')))
        assert dropped > 0 and 'edgefer_output_up{output="jsonl"} 0' in text
        assert sum("event log" in r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING) == 1
        disk.free()
        service._emit({"seq": 99, "faces": []})
        health = service.health()
        assert health["outputs"]["jsonl"]["ok"] and health["ok"]
    finally:
        service._close_outputs()
        service.recognizer.close()


# -- 3. bounds and --check-config ------------------------------------------------------------------------

def test_config_reports_every_problem_at_once_and_bounds_numbers():
    from edgefer.runtime.serve.config import ConfigError, parse_config

    text = ('[detector]\ndetect_width = 10\nscale_factor = inf\n[model]\nthreads = 100000\n'
            '[health]\nstale_after_s = nan\n[source]\nfsp = 3\nmax_image_pixels = 0\n')
    with pytest.raises(ConfigError) as err:
        parse_config(text, "k.toml")
    lines = str(err.value).splitlines()
    assert [line.split(": ")[1] for line in lines] == [
        "detector.detect_width", "detector.scale_factor", "model.threads", "health.stale_after_s", "source.fsp",
        "source.max_image_pixels"]
    assert lines[0].startswith("k.toml:2: detector.detect_width: must be ") and "from 32" in lines[0]
    assert "4 per usable core" in lines[2] and "finite" in lines[1] and "finite" in lines[3]


def test_cli_numbers_are_bounded_with_the_option_named(capsys):
    from edgefer.cli import main

    for args, named in ((["--threads", "100000"], "--threads"), (["--scale-factor", "nan"], "--scale-factor"),
                        (["--scale-factor", "1"], "--scale-factor"), (["--min-neighbors", "-1"], "--min-neighbors"),
                        (["--max-frames", "-1"], "--max-frames"), (["--max-image-pixels", "0"], "--max-image-pixels"),
                        (["--detect-every", "0"], "--detect-every")):
        with pytest.raises(SystemExit) as exit_:
            main(["detect", "--source", "x.png", *args])
        assert exit_.value.code == 2
        assert f"argument {named}:" in capsys.readouterr().err
    with pytest.raises(ValueError, match="threads must be an integer from 1"):
        from edgefer.runtime.classifier import EmotionClassifier

        EmotionClassifier(None, None, 100000)


def _check(config: Path, capsys) -> tuple[int, str]:
    from edgefer.cli import main

    code = main(["serve", "--config", str(config), "--check-config"])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_check_config_loads_what_the_service_loads(tmp_path, capsys, monkeypatch):
    from edgefer.runtime.classifier import default_model

    shipped = default_model("litert")
    garbage = tmp_path / "garbage.tflite"
    garbage.write_bytes(os.urandom(4096))
    mismatched = tmp_path / "mismatched.tflite"
    mismatched.write_bytes(os.urandom(4096))
    shutil.copy(shipped.with_name(shipped.name + ".json"), mismatched.with_name(mismatched.name + ".json"))
    # Garbage whose manifest matches it (sha256 and all): only loading it finds the problem.
    loadable_sidecar = json.loads(shipped.with_name(shipped.name + ".json").read_text())
    from edgefer.runtime.manifest import sha256_of

    loadable_sidecar["sha256"] = sha256_of(garbage)
    garbage.with_name(garbage.name + ".json").write_text(json.dumps(loadable_sidecar))
    not_a_dir = tmp_path / "plain-file"
    not_a_dir.write_text("")

    cases = {
        "garbage": ({"model": {"path": str(garbage)}}, ["model.path:", "garbage.tflite"]),
        "mismatched": ({"model": {"path": str(mismatched)}}, ["sha256"]),
        "unwritable": ({"outputs.jsonl": {"enabled": True, "path": str(not_a_dir / "events.jsonl")}},
                       ["outputs.jsonl.path", "is not a folder"]),
        "detect_width": ({"detector": {"detect_width": 10}}, ["detector.detect_width"]),
        "threads": ({"model": {"threads": 100000}}, ["model.threads"]),
        "all at once": ({"model": {"path": str(garbage)}, "detector": {"detect_width": 10},
                         "outputs.jsonl": {"enabled": True, "path": str(not_a_dir / "e.jsonl")}},
                        ["detector.detect_width:", "model.path:", "outputs.jsonl.path:"]),
    }
    for name, (sections, expected) in cases.items():
        code, text = _check(write_config(tmp_path / f"{name}.toml", sections), capsys)
        assert code == 2, f"{name}: --check-config passed:\n{text}"
        for fragment in expected:
            assert fragment in text, f"{name}: {fragment!r} missing from:\n{text}"

    # A backend that is not installed.
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    code, text = _check(write_config(tmp_path / "nobackend.toml", {"model": {"backend": "onnx"}}), capsys)
    assert code == 2 and "pip install 'edgefer[onnx]'" in text, text
    monkeypatch.delitem(sys.modules, "onnxruntime")

    code, text = _check(write_config(tmp_path / "good.toml", {
        "outputs.jsonl": {"enabled": True, "path": str(tmp_path / "state" / "events.jsonl")}}), capsys)
    assert code == 0 and "configuration OK" in text and "loads and runs" in text, text
    assert not (tmp_path / "state").exists(), "--check-config must not create anything"


# -- 4. bounded memory of the timing summary ------------------------------------------------------------

def test_timing_summary_memory_is_flat_over_many_frames():
    from edgefer.runtime.pipeline import TimingSummary

    rng = np.random.default_rng(0)
    values = rng.lognormal(1.0, 0.5, 60_000)
    summary = TimingSummary()

    def feed(lo: int, hi: int) -> None:
        for v in values[lo:hi]:
            summary.add(SimpleNamespace(analysis=True, faces=[], timings_ms={
                "read": float(v), "detect": float(v) * 2, "preprocess": 0.1, "infer": float(v) / 3}))

    feed(0, 5_000)
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        feed(5_000, 60_000)
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    grown = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    assert grown < 20_000, f"55,000 frames grew the summary by {grown} bytes"
    d = summary.as_dict()["stages_ms"]["read"]
    assert d["p50_ms"] == pytest.approx(float(np.median(values)), rel=0.011)
    assert d["p95_ms"] == pytest.approx(float(np.percentile(values, 95)), rel=0.011)
    assert d["mean_ms"] == pytest.approx(float(values.mean()), abs=1e-3) and d["max_ms"] == round(values.max(), 3)


# -- 5 and 7. images: pixel budget from the header, cut-short files ------------------------------------------

def huge_png(path: Path, side: int = 20000) -> Path:
    """A ~400 KB PNG of side x side grey pixels (zeros compress to almost nothing)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = zlib.compress(b"\0" * (side + 1) * side, 9)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", raw) + chunk(b"IEND", b""))
    return path


def test_image_budget_is_checked_from_the_header_before_decoding(tmp_path):
    path = huge_png(tmp_path / "bomb.png")
    assert path.stat().st_size < 1_000_000
    tracemalloc.start()
    try:
        with pytest.raises(ImageError, match=r"20000 x 20000 = 400\.0 MP is over the 50 MP budget"):
            read_image(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 5_000_000, f"reading the header cost {peak} bytes"
    small = huge_png(tmp_path / "small.png", 100)
    assert read_image(small).shape == (100, 100, 3)
    with pytest.raises(ImageError, match="over the 0.005 MP budget"):
        read_image(small, max_pixels=5000)


@pytest.mark.parametrize("ext", [".png", ".jpg", ".bmp", ".tif", ".webp", ".pgm"])
def test_probe_reads_every_format_and_finds_cut_short_files(ext):
    img = np.random.default_rng(1).integers(0, 255, (120, 160, 3), np.uint8)
    data = cv2.imencode(ext, img[..., 0] if ext == ".pgm" else img)[1].tobytes()
    header = probe(data)
    assert (header.width, header.height, header.truncated) == (160, 120, None)
    cut = data[: len(data) * 2 // 3]
    try:
        assert probe(cut).truncated, f"a cut-short {ext} passed"
    except ImageError:
        pass  # (TIFF: the directory itself is gone)


def test_eval_skips_and_lists_a_cut_short_jpeg(tmp_path):
    from edgefer.runtime.datasets import load_class_folders

    rng = np.random.default_rng(2)
    folder = tmp_path / "happy"
    folder.mkdir()
    for i in range(3):
        cv2.imwrite(str(folder / f"{i}.jpg"), rng.integers(0, 255, (48, 48), np.uint8))
    data = (folder / "2.jpg").read_bytes()
    (folder / "2.jpg").write_bytes(data[: len(data) // 2])
    assert cv2.imread(str(folder / "2.jpg")) is not None, "OpenCV itself accepts the cut-short JPEG"
    ds = load_class_folders(tmp_path)
    assert len(ds) == 2 and ds.skipped == [str(folder / "2.jpg")]


# -- 6. a video corrupted mid-stream ------------------------------------------------------------------

def test_a_cut_short_video_reports_errors_and_fails_detect(tmp_path):
    from edgefer.runtime.commands import run_detect
    from edgefer.runtime.sources import SourceError, open_source

    clip = write_clip(tmp_path / "clip.avi", frames=60)
    data = clip.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) // 3])
    with open_source(str(cut)) as frames:
        got = list(frames)
    errors = [f.error for f in got if f.error]
    good = sum(f.image is not None for f in got)
    assert 0 < good < 30 and frames.incomplete and f"of the 60 it declares" in frames.incomplete
    assert errors[-1] == frames.incomplete
    with open_source(str(clip)) as frames:
        assert sum(f.image is not None for f in frames) == 60 and frames.incomplete is None

    out = __import__("io").StringIO()
    with pytest.raises(SourceError, match="cut short or corrupt"):
        run_detect(str(cut), out=out, summary_out=None)
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(events) == len(got) and sum("error" in e for e in events) == len(errors)


# -- 8. the HTTP endpoint --------------------------------------------------------------------------------

def test_http_bounds_connections_times_out_idle_ones_and_hides_versions(caplog):
    from edgefer.runtime.serve.http import HealthServer

    server = HealthServer("127.0.0.1", 0, lambda: {"ok": True}, lambda: "m 1\n", max_connections=8,
                          idle_timeout_s=2.0)
    baseline = threading.active_count()
    sockets = []
    try:
        for _ in range(300):  # half-open: connect, never send a request
            s = socket.create_connection((server.host, server.port), timeout=5)
            sockets.append(s)
        time.sleep(0.3)
        assert threading.active_count() <= baseline + 8, threading.active_count()
        assert server.refused >= 200, server.refused  # (a few slots free up as idle ones time out)
        for s in sockets:
            s.close()
        deadline = time.monotonic() + 10
        while True:  # once the idle ones timed out, a real request is served
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/healthz", timeout=2) as resp:
                    headers, body = resp.headers, resp.read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        assert json.loads(body) == {"ok": True}
        assert headers["Server"] == "edgefer", headers["Server"]
        idle = socket.create_connection((server.host, server.port), timeout=10)
        started = time.monotonic()
        assert idle.recv(1) == b"", "the server answered a client that sent nothing"  # it hung up on it
        assert 1.5 <= time.monotonic() - started < 9, time.monotonic() - started
        idle.close()
        time.sleep(1.0)
        assert threading.active_count() <= baseline + 1
    finally:
        for s in sockets:
            s.close()
        server.close()


def test_http_client_hanging_up_is_no_traceback(capfd):
    from edgefer.runtime.serve.http import HealthServer

    def slow_big_metrics() -> str:
        time.sleep(0.2)
        return "x" * (8 << 20)

    server = HealthServer("127.0.0.1", 0, lambda: {"ok": True}, slow_big_metrics)
    try:
        for _ in range(3):
            s = socket.create_connection((server.host, server.port))
            s.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST on close
            s.close()
        time.sleep(1.0)
    finally:
        server.close()
    err = capfd.readouterr().err
    assert "Traceback" not in err and "BrokenPipe" not in err and "ConnectionReset" not in err, err


def test_http_warns_when_bound_beyond_loopback(caplog):
    from edgefer.runtime.serve.http import HealthServer, is_loopback

    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.0.2.1")
    caplog.set_level(logging.WARNING, logger="edgefer.runtime.serve.http")
    server = HealthServer("0.0.0.0", 0, lambda: {"ok": True}, lambda: "")
    server.close()
    assert any("reachable from the network" in r.getMessage() for r in caplog.records)
    caplog.clear()
    server = HealthServer("127.0.0.1", 0, lambda: {"ok": True}, lambda: "")
    server.close()
    assert not caplog.records


def test_detect_memory_is_flat_over_many_frames(monkeypatch):
    """``run_detect`` end to end (source, detector, events, summary) over 5,000 frames: what the first
    1,000 allocated is all it keeps (the old summary grew ~216 bytes a frame: ~860 KB here)."""
    import io

    from edgefer.runtime import commands
    from edgefer.runtime.sources import Frame

    frame = np.random.default_rng(0).integers(0, 255, (48, 64, 3), np.uint8)
    marks: dict[int, int] = {}

    class Stream:
        live, description = True, "synthetic"

        def __iter__(self):
            for i in range(5_000):
                if i in (1_000, 4_999):
                    marks[i] = tracemalloc.get_traced_memory()[0]
                yield Frame(i, time.time(), frame, "synthetic")

        def close(self):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            pass

    class Discard(io.StringIO):
        def write(self, text: str) -> int:
            return len(text)

    monkeypatch.setattr(commands, "open_source", lambda spec, options=None: Stream())
    tracemalloc.start()
    try:
        result = commands.run_detect("synthetic", out=Discard(), summary_out=None)
    finally:
        tracemalloc.stop()
    assert result["frames"] == 5_000
    grown = marks[4_999] - marks[1_000]
    assert grown < 100_000, f"4,000 frames grew memory by {grown} bytes"
