#!/usr/bin/env python3
"""The development set the detector defaults were chosen on (never ``../shared/media``, the test set).

    python benchmarks/detect_dev.py --json benchmarks/results/detect-dev.json

Built from KDEF portraits (frontal and half-profile; ``../shared/datasets/kdef``) at
run time, nothing of it is written to disk: 60 scenes of 640x480 with 1-4 portraits
at random sizes (faces of about 35-200 pixels) on a synthetic clutter of shapes and
lines, and 80 tight crops (the face box, 0.95-1.15 times its longer side, as a
350x350 image). The reference is YuNet at full resolution. For each Haar setting
(scale factor x minimum neighbours, at the still-image resolution rule: the smallest
face, 48 pixels, at the cascade's 24-pixel window), fer's own Haar call (full frame,
1.1 / 5 / 50 px) and YuNet, it reports faces found, extra boxes (no reference face)
and CPU milliseconds per image (process time, both threads, so a loaded machine
counts less), and for the crops the border the second look pads with.
"""

from __future__ import annotations

import argparse
import json
import random
import shlex
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
KDEF = REPO.parent / "shared" / "datasets" / "kdef"
YUNET = REPO.parent / "shared" / "weights" / "yunet" / "face_detection_yunet_2023mar.onnx"


def _clutter(rng: np.random.Generator) -> np.ndarray:
    bg = np.zeros((480, 640, 3), np.uint8)
    for _ in range(80):
        colour = tuple(int(v) for v in rng.integers(0, 255, 3))
        p, q = (tuple(int(v) for v in rng.integers(0, 640, 2)) for _ in range(2))
        kind = int(rng.integers(0, 3))
        if kind == 0:
            cv2.rectangle(bg, p, q, colour, -1)
        elif kind == 1:
            cv2.circle(bg, p, int(rng.integers(5, 80)), colour, -1)
        else:
            cv2.line(bg, p, q, colour, int(rng.integers(1, 8)))
    return cv2.GaussianBlur(bg, (5, 5), 0)


def build(kdef: Path, referee: Any, seed: int = 0) -> tuple[list, list]:
    """(scenes with their reference boxes, tight crops)."""
    files = sorted(p for p in kdef.rglob("*.[jJ][pP][gG]") if p.stem[-2:] in ("HL", "HR") or p.stem.endswith("S"))
    if len(files) < 300:
        raise ValueError(f"{kdef} holds {len(files)} frontal/half-profile KDEF images; the dev set needs 300")
    pick = random.Random(seed)
    pick.shuffle(files)
    it = iter(files)
    rng = np.random.default_rng(seed)
    scenes = []
    for _ in range(60):
        scene = _clutter(rng)
        for _ in range(pick.randint(1, 4)):
            img = cv2.imread(str(next(it)))
            h = pick.randint(130, 480)
            w = int(h * img.shape[1] / img.shape[0])
            x, y = pick.randint(0, 640 - w), pick.randint(0, 480 - h)
            scene[y:y + h, x:x + w] = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
        scenes.append((scene, [b.as_list() for b in referee.detect(scene)]))
    crops = []
    for _ in range(80):
        img = cv2.imread(str(next(it)))
        boxes = referee.detect(img)
        if not boxes:
            continue
        b = boxes[0]
        side = max(b.w, b.h) * pick.uniform(0.95, 1.15)
        cx, cy = b.x + b.w / 2, b.y + b.h / 2
        x0, y0 = int(max(cx - side / 2, 0)), int(max(cy - side / 2, 0))
        x1, y1 = int(min(cx + side / 2, img.shape[1])), int(min(cy + side / 2, img.shape[0]))
        crops.append(cv2.resize(img[y0:y1, x0:x1], (350, 350), interpolation=cv2.INTER_AREA))
    return scenes, crops


def score(detect: Callable[[np.ndarray], list], scenes: Sequence) -> dict[str, Any]:
    """Faces found and extra boxes against the reference, CPU ms per image."""
    from benchmarks.peer import same_face

    t0 = time.process_time()
    found_boxes = [detect(img) for img, _ in scenes]
    ms = (time.process_time() - t0) / len(scenes) * 1e3
    found = sum(sum(any(same_face(t, o) for o in out) for t in truth) for out, (_, truth) in zip(found_boxes, scenes))
    extra = sum(sum(not any(same_face(o, t) for t in truth) for o in out)
                for out, (_, truth) in zip(found_boxes, scenes))
    return {"found": found, "extra": extra, "cpu_ms_per_image": round(ms, 2)}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(prog="benchmarks/detect_dev.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kdef", default=str(KDEF), help="KDEF folder (default: ../shared/datasets/kdef)")
    p.add_argument("--yunet-model", default=str(YUNET), help="YuNet ONNX, the reference")
    p.add_argument("--json", help="write the result here")
    args = p.parse_args(argv)

    from edgefer.runtime.detect import YuNetConfig, YuNetDetector, find_haar_cascade

    try:
        referee = YuNetDetector(YuNetConfig(args.yunet_model, detect_width=0, min_face=10, min_face_ratio=0.0))
        scenes, crops = build(Path(args.kdef), referee)
    except (ValueError, OSError) as exc:
        print(f"detect_dev.py: error: {exc}", file=sys.stderr)
        return 2
    cascade = cv2.CascadeClassifier(str(find_haar_cascade()))
    grey = [(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), truth) for img, truth in scenes]

    def haar(sf: float, mn: int, scale: float = 0.5, min_size: int = 24) -> Callable:
        def run(g: np.ndarray) -> list:
            small = cv2.resize(g, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else g
            found = cascade.detectMultiScale(small, sf, mn, minSize=(min_size, min_size))
            return [[int(v / scale) for v in b] for b in np.asarray(found).reshape(-1, 4)]
        return run

    faces = sum(len(t) for _, t in scenes)
    rows = [{"setting": "fer's call: full frame, 1.1 / 5 / 50 px", **score(haar(1.1, 5, 1.0, 50), grey)}]
    for sf in (1.1, 1.15, 1.2, 1.25):
        for mn in (2, 3, 5):
            rows.append({"setting": f"haar still rule (1/2 size), scale_factor {sf}, min_neighbors {mn}",
                         "scale_factor": sf, "min_neighbors": mn, **score(haar(sf, mn), grey)})
    yunet = YuNetDetector(YuNetConfig(args.yunet_model))
    rows.append({"setting": "yunet 320 px", **score(lambda img: [b.as_list() for b in yunet.detect(img)], scenes)})

    crop_rows = []
    grey_crops = [cv2.cvtColor(c, cv2.COLOR_BGR2GRAY) for c in crops]
    for name, border in (("none", None), ("replicate", cv2.BORDER_REPLICATE), ("reflect", cv2.BORDER_REFLECT101),
                         ("constant (mean)", cv2.BORDER_CONSTANT)):
        for pad in ((0.25, 0.5) if border is not None else (0.0,)):
            hits = 0
            for g in grey_crops:
                side = int(pad * 350)
                img = g if border is None else cv2.copyMakeBorder(g, side, side, side, side, border,
                                                                   value=float(g.mean()))
                hits += bool(haar(1.2, 2, 24 / 175 if border is not None else 0.5)(img))
            crop_rows.append({"border": name, "pad": pad, "found": hits})
    crop_rows.append({"border": "fer's call", "pad": 0.0,
                      "found": sum(bool(haar(1.1, 5, 1.0, 50)(g)) for g in grey_crops)})
    from benchmarks.device import conditions

    result = {"schema": "edgefer-detect-dev/1", "command": "python benchmarks/detect_dev.py " + shlex.join(argv),
              "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "scenes": len(scenes),
              "reference_faces": faces, "crops": len(crops), "scene_rows": rows, "crop_rows": crop_rows,
              "conditions_after": conditions()}
    print(f"{len(scenes)} scenes, {faces} reference faces; {len(crops)} tight crops")
    for r in rows:
        print(f"{r['setting']:<70} found {r['found']:>3}  extra {r['extra']:>2}  cpu {r['cpu_ms_per_image']:6.1f} ms")
    for r in crop_rows:
        print(f"crops, border {r['border']:<16} pad {r['pad']:<5} found {r['found']}/{len(crops)}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
