"""The ``fer`` package's emotion classifier on given face crops (run by ``edgefer eval-cross --peer-python``).

Runs as a plain script with the Python of a separate virtual environment that has ``fer``
(never an edgefer dependency) and imports nothing from edgefer. It reads ``--faces`` (an .npz
with ``images``: (N, H, W) uint8 grey crops), prepares each crop exactly as ``fer``'s own
``detect_emotions`` prepares the face it cut (resize to the classifier's 64x64, scale to
[-1, 1]) and writes the classifier's scores to ``--out`` (.npy, (N, 7), in fer's label order),
then prints one JSON line: fer's labels, versions and timing. Exit code 3: fer is not installed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from importlib.metadata import PackageNotFoundError, version

import numpy as np

FER_INPUT = (64, 64)  # fer's classifier input (FER._initialize_model hard-codes it for the TFLite model)


def _versions() -> dict[str, str]:
    found = {}
    for name in ("fer", "tensorflow", "tensorflow-cpu", "opencv-python-headless", "opencv-python"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--faces", required=True, help=".npz with images: (N, H, W) uint8 grey face crops")
    p.add_argument("--out", required=True, help=".npy to write (N, 7) scores to, in fer's label order")
    p.add_argument("--batch", type=int, default=256)
    args = p.parse_args()
    try:
        import cv2

        try:
            from fer import FER
        except ImportError:  # fer >= 25 no longer re-exports FER from the package
            from fer.fer import FER
    except ImportError as exc:
        print(f"the fer package is not importable by {sys.executable}: {exc}", file=sys.stderr)
        return 3
    images = np.load(args.faces)["images"]
    t0 = time.perf_counter()
    detector = FER(mtcnn=False)
    load_s = time.perf_counter() - t0
    labels = [FER._get_labels()[i] for i in range(len(FER._get_labels()))]
    t0 = time.perf_counter()
    chunks = []
    for start in range(0, len(images), args.batch):
        faces = np.stack([cv2.resize(face, FER_INPUT) for face in images[start : start + args.batch]])
        faces = (faces.astype(np.float32) / 255.0 - 0.5) * 2.0  # fer's detect_emotions preprocessing
        chunks.append(np.asarray(detector._classify_emotions(faces), np.float32))
    scores = np.concatenate(chunks) if chunks else np.zeros((0, len(labels)), np.float32)
    np.save(args.out, scores)
    print(json.dumps({"labels": labels, "versions": _versions(), "python": sys.executable,
                      "model_load_s": round(load_s, 3), "classify_s": round(time.perf_counter() - t0, 3),
                      "settings": "fer.FER(mtcnn=False)._classify_emotions (its quantised TFLite model) on the "
                                  "given crops, resized to 64x64 and scaled to [-1, 1] as detect_emotions does"}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
