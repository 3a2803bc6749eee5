"""devices/arm64: the event comparison, check.sh's arguments, and the committed report behind devices/README.md.

The emulated run itself (`make arm64-check`, root, about 10 minutes cold) runs from .ci/run, not here.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
from pathlib import Path

import pytest

from .conftest import REPO

ARM64 = REPO / "devices" / "arm64"


def _compare():
    spec = importlib.util.spec_from_file_location("arm64_compare", ARM64 / "compare.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


EVENT = {"frame": 0, "timestamp": 1.0, "source": "/x86/a.jpg", "size": [640, 480], "timings_ms": {"detect": 3.0},
         "faces": [{"box": [10, 20, 50, 50], "label": "happy", "score": 0.8513,
                    "scores": {"happy": 0.8513, "sad": -0.9}}]}


def _other(**face) -> dict:
    event = json.loads(json.dumps(EVENT))
    event.update(timestamp=99.0, source="/media/edgefer/a.jpg", timings_ms={"detect": 300.0})
    event["faces"][0].update(face)
    return event


def _run(tmp_path: Path, arm: list[dict], x86: list[dict]) -> dict:
    (tmp_path / "arm.jsonl").write_text("INFO: not an event\n" + "".join(json.dumps(e) + "\n" for e in arm))
    (tmp_path / "x86.jsonl").write_text("".join(json.dumps(e) + "\n" for e in x86))
    return _compare().compare_run(tmp_path / "arm.jsonl", tmp_path / "x86.jsonl")


def test_same_events_match_despite_times_and_paths(tmp_path):
    result = _run(tmp_path, [_other()], [EVENT])
    assert result["match"] and result["events"] == 1 and result["faces"] == 1 and result["labels"] == ["happy"]
    assert result["max_abs_difference"] == 0.0


@pytest.mark.parametrize("face,needle", [
    ({"label": "sad"}, "label: 'sad' on arm64, 'happy' on amd64"),
    ({"box": [11, 20, 50, 50]}, "box[0]: 11 on arm64, 10 on amd64"),
    ({"scores": {"happy": 0.8515, "sad": -0.9}}, "scores.happy: 0.8515 on arm64, 0.8513 on amd64"),
    ({"scores": {"happy": 0.8513}}, "scores.sad: only in amd64"),
])
def test_differences_are_reported(tmp_path, face, needle):
    result = _run(tmp_path, [_other(**face)], [EVENT])
    assert not result["match"] and any(needle in d for d in result["differences"]), result["differences"]


def test_faces_and_labels_a_user_sees_lead_the_differences(tmp_path):
    """A clip's frames differ in every number; a face found on one side only, or another label, must not hide
    behind the first twenty of those lines: they are counted and listed first."""
    noisy = [_other(box=[11, 20, 50, 50], score=0.9) for _ in range(25)]
    extra = json.loads(json.dumps(EVENT))
    extra["faces"].append({**EVENT["faces"][0], "box": [60, 70, 30, 30], "label": "fear"})
    result = _run(tmp_path, noisy + [_other(label="sad")] + [_other()], [EVENT] * 25 + [EVENT, extra])
    assert result["frames_with_other_faces"] == 1 and result["frames_with_other_labels"] == 1
    assert result["faces"] == 27 and result["faces_amd64"] == 28
    assert result["differences"][:2] == [
        "events[25]: labels ['sad'] on arm64, ['happy'] on amd64",
        "events[26]: 1 faces on arm64, 2 on amd64 (['happy'] against ['happy', 'fear'])"]
    assert len(result["differences"]) == 20


def test_one_unit_in_the_last_digit_is_within_tolerance(tmp_path):
    result = _run(tmp_path, [_other(score=0.8514)], [EVENT])
    assert result["match"] and result["max_abs_difference"] == pytest.approx(1e-4)


def test_missing_or_extra_events_fail(tmp_path):
    assert not _run(tmp_path, [], [EVENT])["match"]
    assert not _run(tmp_path, [_other(), _other()], [EVENT])["match"]


@pytest.mark.parametrize("args,message", [
    (["--bogus"], "unknown option '--bogus'"),
    (["--max-frames", "0"], "--max-frames must be a positive integer"),
    (["--suite"], "--suite needs a value"),
])
def test_check_sh_argument_errors(args, message):
    run = subprocess.run(["bash", str(ARM64 / "check.sh"), *args], capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and message in run.stderr, run.stderr


def test_committed_report_backs_the_devices_readme():
    """The README's arm64 paragraph quotes the committed report: kits working, how many events matched."""
    report = json.loads((REPO / "devices" / "results" / "arm64-bookworm.json").read_text())
    kits = [kit for arch in report["kits"].values() for kit in arch.values()]
    assert set(report["kits"]) == {"arm64", "amd64"} and len(kits) == 4 and report["kits_ok"]
    assert all(k["install_rc"] == 0 and k["verify_rc"] == 0 for k in kits)
    assert not any(line.startswith("FAIL") for k in kits for line in k["verify"])
    runs = report["comparisons"]
    assert {(r["kit"], r["backend"]) for r in runs} == {("raspberry-pi", "litert"), ("jetson", "onnx")}
    events, faces = sum(r["events"] for r in runs), sum(r["faces"] for r in runs)
    same = [r for r in runs if r["match"]]
    readme = (REPO / "devices" / "README.md").read_text()
    section = " ".join(readme.split("## Tested on arm64 (emulated)")[1].split("\n## ")[0].split())
    assert f"Of {events} events ({faces} faces)" in section, section
    assert f"the {sum(r['events'] for r in same)} events on {len({r['media'] for r in same})} photos" in section
    assert report["ok"] == (len(same) == len(runs))
