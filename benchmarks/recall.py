#!/usr/bin/env python3
"""Which faces each detector setting loses against ``fer``'s detector, and what it costs.

    python benchmarks/recall.py --referee-yunet face_detection_yunet_2023mar.onnx \\
        --widths 0,400,480 --every 1,4,5,6,8 --json benchmarks/results/recall-sweep.json

``fer`` (``FER(mtcnn=False)``) finds faces with OpenCV's frontal Haar cascade on the
full frame (scaleFactor 1.1, minNeighbors 5, minimum face 50 pixels); this script
makes that same call on every frame, so it needs no ``fer`` installation (the real
package's boxes, recorded by ``latency.py --peer fer``, give the same lost counts at
the default setting).
Each setting (detection width x detect-every-N with tracking in between) then runs
over the same frames; a face the reference finds that the setting does not is
lost, and the YuNet referee says which lost faces are real faces. Detection
passes and the mean detect cost per frame are reported beside it, so the default
can be chosen on both. Nothing is asserted; it measures.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any, Sequence

if __package__ in (None, ""):
    # Run as a script: make `benchmarks` importable. Appended, not put first: the checkout's `edgefer/`
    # folder is only the package's top level (pyproject maps the rest), and ahead of site-packages it
    # would hide a plain (non-editable) install of edgefer, as on a Raspberry Pi.
    sys.path.append(str(Path(__file__).resolve().parents[1]))

from benchmarks.frames import parse_size  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
FER_HAAR = {"scale_factor": 1.1, "min_neighbors": 5, "min_size": 50}


def _ints(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 0:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers >= 0, got {text!r}")
    return values


def build_parser() -> argparse.ArgumentParser:
    from benchmarks.latency import DEFAULT_SOURCE

    p = argparse.ArgumentParser(prog="benchmarks/recall.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sources", nargs="+", default=[str(DEFAULT_SOURCE), str(DEFAULT_SOURCE.with_name("woman2.mp4"))],
                   help="video clips (default: the two clips of ../shared/media)")
    p.add_argument("--referee-yunet", metavar="ONNX", required=True,
                   help="YuNet model that tells which of the reference's faces are real faces")
    p.add_argument("--widths", type=_ints, default=[0, 400, 480], help="Haar detection widths (0: full frame)")
    p.add_argument("--every", type=_ints, default=[1, 4, 5, 6, 8], help="detect every N frames, track in between")
    p.add_argument("--frame-size", default="640x480", help="resize every frame to WxH first, as latency.py does")
    p.add_argument("--warmup", type=int, default=10, help="frames run but not scored first (as latency.py)")
    p.add_argument("--frames", type=int, default=100, help="scored frames per clip (the clip loops)")
    p.add_argument("--json", help="write the sweep here")
    return p


def load_frames(source: str, size: tuple[int, int] | None, count: int) -> list:
    """``count`` BGR frames of ``source``, looped from the start when it runs out, resized to ``size``."""
    from itertools import islice

    from benchmarks.harness import looped_frames

    frames = looped_frames(source, size)
    try:
        return [frame.image for frame in islice(frames, count) if frame.image is not None]
    finally:
        frames.close()


def reference_boxes(greys: Sequence) -> list[list[list[int]]]:
    """``fer``'s Haar call on every frame."""
    import cv2

    from edgefer.runtime.detect import find_haar_cascade

    cascade = cv2.CascadeClassifier(str(find_haar_cascade()))
    side = FER_HAAR["min_size"]
    return [[[int(v) for v in box] for box in cascade.detectMultiScale(
        grey, FER_HAAR["scale_factor"], FER_HAAR["min_neighbors"], minSize=(side, side))] for grey in greys]


def sweep_clip(frames: Sequence, warmup: int, widths: Sequence[int], every: Sequence[int],
               referee: str) -> dict[str, Any]:
    """Every (width, N) setting on one clip's frames, scored against the reference on the frames after ``warmup``."""
    import cv2

    from benchmarks.peer import lost_faces
    from edgefer.runtime.detect import HaarConfig, HaarDetector, YuNetConfig, YuNetDetector
    from edgefer.runtime.tracking import TrackConfig, TrackingDetector

    greys = [cv2.cvtColor(f, cv2.COLOR_BGR2GRAY) for f in frames]
    reference = reference_boxes(greys[warmup:])
    judge = YuNetDetector(YuNetConfig(referee, detect_width=None, min_face=10, min_face_ratio=0.0))
    truth = [[b.as_list() for b in judge.detect(f)] for f in frames[warmup:]]
    settings = []
    for width in widths:
        for n in every:
            detector = TrackingDetector(HaarDetector(HaarConfig(detect_width=width or None)),
                                        TrackConfig(detect_every=n))
            ours, spent = [], 0.0
            for i, grey in enumerate(greys):
                t0 = time.perf_counter()
                boxes = detector.detect(grey)
                if i >= warmup:
                    spent += time.perf_counter() - t0
                    ours.append([b.as_list() for b in boxes])
            lost = lost_faces(ours, reference, truth)
            settings.append({
                "detect_width": width or None, "detect_every": n, "detection_passes": detector.detections,
                "detect_ms_per_frame": round(spent / len(ours) * 1e3, 2),
                "reference_faces": lost["peer_faces"], "reference_real_faces": lost["peer_real_faces"],
                "lost": lost["lost"], "lost_real": lost["lost_confirmed"],
            })
    return {"frames": len(reference), "settings": settings}


def markdown(result: dict[str, Any]) -> str:
    """One row per setting, one column pair per clip."""
    clips = list(result["clips"])
    head = ["detect width", "every N"] + [f"{Path(c).name}: lost real / lost / passes / detect ms" for c in clips]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    rows = zip(*(result["clips"][c]["settings"] for c in clips))
    for row in rows:
        first = row[0]
        cells = [str(first["detect_width"] or "full"), str(first["detect_every"])]
        cells += [f"{s['lost_real']} / {s['lost']} / {s['detection_passes']} / {s['detect_ms_per_frame']:.1f}"
                  for s in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    try:
        if args.warmup < 0 or args.frames < 1:
            raise ValueError("--warmup must be >= 0 and --frames >= 1")
        if 0 in args.every:
            raise ValueError("--every values must be at least 1")
        if not Path(args.referee_yunet).is_file():
            raise ValueError(f"--referee-yunet {args.referee_yunet} does not exist")
        size = parse_size(args.frame_size)
        clips = {}
        for source in args.sources:
            print(f"sweeping {source} ...", file=sys.stderr)
            frames = load_frames(source, size, args.warmup + args.frames)
            clips[source] = sweep_clip(frames, args.warmup, args.widths, args.every, args.referee_yunet)
    except (ValueError, OSError) as exc:
        print(f"recall.py: error: {exc}", file=sys.stderr)
        return 2
    from benchmarks.device import conditions

    result = {"schema": "edgefer-recall/1", "command": "python benchmarks/recall.py " + shlex.join(argv),
              "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "reference": {"fer_haar": FER_HAAR},
              "frame_size": args.frame_size, "warmup": args.warmup, "conditions_after": conditions(), "clips": clips}
    print(markdown(result))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
