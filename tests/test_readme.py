"""The README's promises: its Python example runs as written, its figures come from committed files."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from .conftest import MEDIA, REPO, need

README = REPO / "README.md"


def _python_blocks(page: Path = README) -> list[str]:
    return re.findall(r"```python\n(.*?)```", page.read_text(), re.S)


def test_readme_python_example_runs_as_written(tmp_path):
    """The README's example on ../shared/media/justin.jpg, copied to the photo.jpg it names."""
    photo = need(MEDIA / "justin.jpg", "the shared test photo")
    (code,) = _python_blocks()
    assert '"photo.jpg"' in code and len(code.strip().splitlines()) <= 6
    shutil.copy(photo, tmp_path / "photo.jpg")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1, proc.stdout
    assert re.fullmatch(r"\(\d+, \d+, \d+, \d+\) (angry|disgust|fear|happy|neutral|sad|surprise) \d+%", lines[0])


def test_coming_from_fer_example_runs_as_written(tmp_path):
    """docs/runtime.md's `fer` migration example on the shared photo and the 115-frame clip, as photo.jpg and
    clip.mp4: fer's shapes for the photo, then one line per clip frame, each face followed with a label."""
    import ast

    photo = need(MEDIA / "justin.jpg", "the shared test photo")
    clip = need(MEDIA / "fer_test.mp4", "the shared test clip")
    (code,) = [b for b in _python_blocks(REPO / "docs" / "runtime.md") if "top_emotion" in b]
    shutil.copy(photo, tmp_path / "photo.jpg")
    shutil.copy(clip, tmp_path / "clip.mp4")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 2 + 115, proc.stdout[-2000:]
    (face,) = ast.literal_eval(lines[0])  # the photo's one face, as fer's detect_emotions gives it
    assert len(face["box"]) == 4 and abs(sum(face["emotions"].values()) - 1.0) < 1e-4
    label, probability = ast.literal_eval(lines[1])
    assert face["emotions"][label] == max(face["emotions"].values()) == probability
    frames = [ast.literal_eval(line) for line in lines[2:]]
    assert sum(bool(f) for f in frames) > 100  # the clip's face, followed on (nearly) every frame
    assert all(isinstance(box, tuple) and len(box) == 4 and label in face["emotions"] for f in frames for box, label in f)


def test_readme_is_a_short_page_whose_links_and_sources_exist():
    text = README.read_text()
    assert len(text.splitlines()) <= 250
    for target in re.findall(r"\]\(([^)#]+)\)", text):
        if "://" not in target:
            assert (REPO / target).exists(), target
    for path in re.findall(r"`((?:benchmarks/)?results/[\w./-]+\.(?:json|md))`", text):
        assert (REPO / path).exists(), path
    assert (REPO / "docs/images/astronaut.jpg").stat().st_size < 300_000  # the picture stays small
