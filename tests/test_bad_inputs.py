"""A corpus of bad inputs through ``detect``, ``eval`` and ``serve --check-config`` (issue 21).

Every case must end with a clear message and exit status 0, 1 or 2, never a signal or a
traceback. The corpus is generated; cases are batched (a folder source, a class-folder
tree) so the whole file costs a handful of processes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from .serve_support import write_clip, write_config
from .test_hardening import huge_png

SECRET = "hunter2-secret"


def _edgefer(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    run = subprocess.run([sys.executable, "-m", "edgefer", *args], capture_output=True, text=True, timeout=300,
                         cwd=cwd)
    assert run.returncode in (0, 1, 2), f"edgefer {' '.join(args)} ended with {run.returncode}:\n{run.stderr}"
    assert "Traceback" not in run.stderr, run.stderr
    assert SECRET not in run.stdout + run.stderr
    return run


def _face(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(60, 200, (96, 96, 3), np.uint8)


def _write_corpus(folder: Path) -> dict[str, str | None]:
    """name -> the fragment its error must contain (None: it is a readable image)."""
    folder.mkdir(parents=True, exist_ok=True)
    img = _face()
    jpeg = cv2.imencode(".jpg", img)[1].tobytes()
    png = cv2.imencode(".png", img)[1].tobytes()
    cases: dict[str, str | None] = {}

    def put(name: str, data: bytes, expect: str | None) -> None:
        (folder / name).write_bytes(data)
        cases[name] = expect

    put("empty.jpg", b"", "empty")
    put("truncated.jpg", jpeg[: len(jpeg) // 2], "end-of-image marker")
    put("truncated.png", png[: len(png) // 2], "IEND")
    put("text.png", b"this is not an image\n" * 20, "not an image in a supported format")
    put("random.bmp", os.urandom(2000), "not an image in a supported format")
    put("wrong-suffix.png", jpeg, None)  # a JPEG named .png: still an image
    put("zero-dims.png", png[:16] + b"\0" * 8 + png[24:], "0 x 0")
    huge_png(folder / "huge.png", 8000)  # 64 MP
    cases["huge.png"] = "over the 50 MP budget"
    for name, array in {"sixteen-bit.png": (img.astype(np.uint16) * 257), "rgba.png": np.dstack([img, img[..., :1]]),
                        "grey.png": img[..., 0], "one-pixel.png": img[:1, :1],
                        "sixteen-bit.pgm": img[..., 0].astype(np.uint16) * 257}.items():
        cv2.imwrite(str(folder / name), array)
        cases[name] = None
    for name in ("with space.jpg", "ünïcødé.jpg", "new\nline.jpg", "-leading-dash.jpg"):
        put(name, jpeg, None)
    return cases


def test_detect_on_a_folder_of_bad_images_reports_each_and_goes_on(corpus):
    folder, cases = corpus
    run = _edgefer("detect", "--source", str(folder))
    assert run.returncode == 0, run.stderr
    events = {Path(e["source"]).name: e for e in map(json.loads, run.stdout.splitlines())}
    assert set(events) == set(cases)
    for name, expect in cases.items():
        event = events[name]
        if expect is None:
            assert "error" not in event and "faces" in event, (name, event)
        else:
            assert expect in event.get("error", ""), (name, event)
            assert name in event["error"] or repr(name)[1:-1] in event["error"], (name, event)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, dict[str, str | None]]:
    folder = tmp_path_factory.mktemp("corpus")
    return folder, _write_corpus(folder)


@pytest.mark.parametrize("name,code,expect", [
    ("huge.png", 2, "over the 50 MP budget"),
    ("truncated.jpg", 2, "end-of-image marker"),
    ("-leading-dash.jpg", 0, None),
])
def test_detect_single_bad_files(corpus, name, code, expect):
    run = _edgefer("detect", f"--source={corpus[0] / name}")
    assert run.returncode == code, run.stderr
    if expect:
        assert "edgefer: error: " in run.stderr and expect in run.stderr


def test_detect_on_bad_videos_and_urls(tmp_path):
    clip = write_clip(tmp_path / "clip.avi", frames=40)
    data = clip.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) // 3])
    run = _edgefer("detect", "--source", str(cut), "--quiet")
    assert run.returncode == 2 and "cut short or corrupt" in run.stderr, run.stderr
    assert any("error" in json.loads(line) for line in run.stdout.splitlines())
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(os.urandom(50_000))
    run = _edgefer("detect", "--source", str(garbage))
    assert run.returncode == 2 and "cannot open video source" in run.stderr, run.stderr
    run = _edgefer("detect", "--source", f"rtsp://admin:{SECRET}@127.0.0.1:1/x y")
    assert run.returncode == 2 and "rtsp://***@127.0.0.1:1" in run.stderr, run.stderr


def test_eval_skips_and_lists_every_unreadable_file(tmp_path):
    cases = _write_corpus(tmp_path / "data" / "happy")
    sad = tmp_path / "data" / "sad"
    sad.mkdir()
    for i in range(3):
        cv2.imwrite(str(sad / f"{i}.png"), _face(i + 1))
    run = _edgefer("eval", "--data", str(tmp_path / "data"), "--json")
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    skipped = {Path(p).name for p in result["skipped"]}
    assert skipped == {name for name, expect in cases.items() if expect is not None}
    assert result["samples"] == 3 + sum(expect is None for expect in cases.values())


def test_check_config_on_bad_configurations(tmp_path):
    garbage = tmp_path / "model.tflite"
    garbage.write_bytes(os.urandom(1000))
    config = write_config(tmp_path / "creds.toml", {
        "source": {"spec": f"rtsp://admin:{SECRET}@camera.invalid/stream"},
        "model": {"path": str(garbage), "threads": 100000},
    })
    run = _edgefer("serve", "--config", str(config), "--check-config")
    assert run.returncode == 2 and "model.threads" in run.stderr, run.stderr
    config.write_text(config.read_text().replace("threads = 100000", "threads = 1"))
    run = _edgefer("serve", "--config", str(config), "--check-config")
    assert run.returncode == 2 and "has no manifest" in run.stderr, run.stderr
    binary = tmp_path / "binary.toml"
    binary.write_bytes(os.urandom(300) + b"\xff\xfe")
    run = _edgefer("serve", "--config", str(binary), "--check-config")
    assert run.returncode == 2 and "binary.toml" in run.stderr, run.stderr
    hostile = write_config(tmp_path / "-odd name\u00e9.toml", {"outputs.jsonl": {
        "enabled": True, "path": str(tmp_path / "new\nline dir" / "events.jsonl")}})
    run = _edgefer("serve", f"--config={hostile}", "--check-config")
    assert run.returncode == 0 and "configuration OK" in run.stdout, run.stderr
