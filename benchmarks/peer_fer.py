"""The ``fer`` package (justinshenk/fer) on the benchmark's frames, for a side-by-side ratio.

Started by ``latency.py --peer fer`` as its own process (so its peak memory is its
own), usually with the Python of a separate virtual environment that has ``fer``:
edgefer never depends on it. It reads the frames exactly as the harness does
(OpenCV decode, then ``benchmarks.frames.fit_frame``, the source looped) and is
driven over stdin so that both contenders take turns on the CPU: each line ``N``
asks for the next N frames and is answered by one JSON line with their timings and
boxes; end of input is answered by a closing line with the peak RSS and versions.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

sys.path.append(str(Path(__file__).resolve().parents[1]))
from benchmarks.frames import fit_frame, parse_size  # noqa: E402  (the repo root is not installed here)
from benchmarks.memory import peak_rss_mib  # noqa: E402

_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


def _once(source: str) -> Iterator[tuple[np.ndarray | None, float]]:
    path = Path(source)
    if path.is_dir() or path.suffix.lower() in _IMAGE_SUFFIXES:
        files = sorted(q for q in path.iterdir() if q.suffix.lower() in _IMAGE_SUFFIXES) if path.is_dir() else [path]
        for p in files:
            t0 = time.perf_counter()
            yield cv2.imread(str(p), cv2.IMREAD_COLOR), (time.perf_counter() - t0) * 1e3
        return
    cap = cv2.VideoCapture(str(path))
    while True:
        t0 = time.perf_counter()
        ok, img = cap.read()
        if not ok:
            break
        yield img, (time.perf_counter() - t0) * 1e3
    cap.release()


def looped(source: str, size: tuple[int, int] | None) -> Iterator[tuple[np.ndarray | None, float]]:
    """The source's frames for ever, resized like the harness resizes them."""
    while True:
        produced = 0
        for img, read_ms in _once(source):
            produced += 1
            if img is not None:
                t0 = time.perf_counter()
                img = fit_frame(img, size)
                read_ms += (time.perf_counter() - t0) * 1e3
            yield img, read_ms
        if not produced:
            raise ValueError(f"source {source} delivered no frames")


def _versions() -> dict[str, str]:
    found = {}
    for name in ("fer", "tensorflow", "tensorflow-cpu", "opencv-python-headless", "opencv-contrib-python"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--source", required=True)
    p.add_argument("--size", default="640x480")
    args = p.parse_args()
    try:
        try:
            from fer import FER
        except ImportError:  # fer >= 25 no longer re-exports FER from the package
            from fer.fer import FER
    except ImportError as exc:
        print(f"the fer package is not importable by {sys.executable}: {exc}", file=sys.stderr)
        return 3
    t0 = time.perf_counter()
    detector = FER(mtcnn=False)
    load_s = time.perf_counter() - t0
    frames = looped(args.source, parse_size(args.size))
    for line in sys.stdin:
        count = int(line)
        block: dict[str, list] = {"read_ms": [], "process_ms": [], "boxes": []}
        for _ in range(count):
            img, read_ms = next(frames)
            t0 = time.perf_counter()
            found = detector.detect_emotions(img) if img is not None else []
            block["process_ms"].append((time.perf_counter() - t0) * 1e3)
            block["read_ms"].append(read_ms)
            block["boxes"].append([[int(v) for v in face["box"]] for face in found])
        print(json.dumps(block), flush=True)
    print(json.dumps({
        "peer": "fer", "versions": _versions(), "python": sys.executable, "model_load_s": round(load_s, 3),
        "settings": "FER(mtcnn=False): Haar cascade (scaleFactor 1.1, minNeighbors 5, min face 50) + its TFLite model",
        "peak_rss_mib": peak_rss_mib(),
    }), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
