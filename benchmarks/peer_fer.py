"""The ``fer`` package (justinshenk/fer) on the benchmark's frames, for a side-by-side ratio.

Run by ``latency.py --peer fer`` in its own process (so its peak memory is its own),
usually with the Python of a separate virtual environment that has ``fer`` installed:
edgefer never depends on it. Reads the frames exactly as the harness does (OpenCV
decode, then ``benchmarks.frames.fit_frame``) and writes per-frame timings and boxes.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.frames import fit_frame, parse_size  # noqa: E402  (the repo root is not installed here)

_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


def _frames(source: str):
    path = Path(source)
    if path.is_dir():
        for p in sorted(q for q in path.iterdir() if q.suffix.lower() in _IMAGE_SUFFIXES):
            t0 = time.perf_counter()
            yield cv2.imread(str(p), cv2.IMREAD_COLOR), (time.perf_counter() - t0) * 1e3
    elif path.suffix.lower() in _IMAGE_SUFFIXES:
        t0 = time.perf_counter()
        yield cv2.imread(str(path), cv2.IMREAD_COLOR), (time.perf_counter() - t0) * 1e3
    else:
        cap = cv2.VideoCapture(str(path))
        while True:
            t0 = time.perf_counter()
            ok, img = cap.read()
            if not ok:
                break
            yield img, (time.perf_counter() - t0) * 1e3
        cap.release()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--source", required=True)
    p.add_argument("--frames", type=int, required=True)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--size", default="640x480")
    p.add_argument("--json", required=True)
    args = p.parse_args()
    try:
        try:
            from fer import FER
        except ImportError:  # fer >= 25 no longer re-exports FER from the package
            from fer.fer import FER
    except ImportError as exc:
        print(f"the fer package is not importable by {sys.executable}: {exc}", file=sys.stderr)
        return 3
    size = parse_size(args.size)
    t0 = time.perf_counter()
    detector = FER(mtcnn=False)
    load_s = time.perf_counter() - t0
    total = args.warmup + args.frames
    read_ms: list[float] = []
    process_ms: list[float] = []
    boxes: list[list[list[int]]] = []
    done = 0
    while done < total:
        before = done
        for img, read in _frames(args.source):
            if done >= total:
                break
            t0 = time.perf_counter()
            frame = fit_frame(img, size)
            read += (time.perf_counter() - t0) * 1e3
            t0 = time.perf_counter()
            found = detector.detect_emotions(frame)
            ms = (time.perf_counter() - t0) * 1e3
            if done >= args.warmup:
                read_ms.append(read)
                process_ms.append(ms)
                boxes.append([[int(v) for v in face["box"]] for face in found])
            done += 1
        if done == before:
            print(f"source {args.source} delivered no frames", file=sys.stderr)
            return 2
    try:
        from importlib.metadata import version

        versions = {name: version(name) for name in ("fer", "tensorflow-cpu") if _has(name)}
    except Exception:  # version lookup is informative only
        versions = {}
    result = {
        "peer": "fer", "versions": versions, "python": sys.executable, "model_load_s": round(load_s, 3),
        "settings": "FER(mtcnn=False): Haar cascade (scaleFactor 1.1, minNeighbors 5, min face 50) + its TFLite model",
        "read_ms": read_ms, "process_ms": process_ms, "boxes": boxes,
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    Path(args.json).write_text(json.dumps(result))
    return 0


def _has(name: str) -> bool:
    from importlib.metadata import PackageNotFoundError, version

    try:
        version(name)
        return True
    except PackageNotFoundError:
        return False


if __name__ == "__main__":
    raise SystemExit(main())
