#!/usr/bin/env python3
"""Faces found on photos, tight face crops and clips, per detector setting, beside the ``fer`` package.

    python benchmarks/recall.py --peer-python /work/fer-venv/bin/python \\
        --json benchmarks/results/recall.json

Inputs (``--media``, default ``../shared/media``): every photo at its own size; tight
crops cut from those photos around each face the reference finds (square, as wide as
the face box, and as tall as it, resized to 350x350; made here, never written into the
repository); the first ``--frames`` frames of each clip at 640x480. The reference is
YuNet at full resolution (faces of 10 pixels and up). edgefer runs each setting
through ``EmotionRecognizer`` (detection and classification, the shipped model on
litert), the way the product treats the input: photos and crops as still images,
clips as streams (every 6th frame, tracking between) and, to compare per-frame cost
where every frame needs a detection, every clip frame as a still image too. ``fer``
(``FER(mtcnn=False)``, its own process and venv, ``benchmarks/peer_fer.py``) sees
the same images; the two take turns block by block, so load on a shared machine hits
both alike. Reported per input and setting: reference faces found, boxes that are no
reference face, fer's real faces (fer boxes the reference confirms) that the setting
loses, and wall milliseconds per frame (median). A stream's detection frames depend on
when the camera started, so each stream setting is also scored at every phase of them
(``by_phase``: the clip's first frame shown k extra times before it plays, k = 0 .. N-1);
the headline figures are those of the timed pass (phase 1: the warm-up frame comes first).
Nothing is asserted; it measures.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Sequence

if __package__ in (None, ""):  # run as a script: make `benchmarks` and an uninstalled checkout importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from edgefer.train.results_table import splice_into_readme  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
MEDIA = REPO.parent / "shared" / "media"
YUNET = REPO.parent / "shared" / "weights" / "yunet" / "face_detection_yunet_2023mar.onnx"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp"}
VIDEO_SUFFIXES = {".mp4", ".avi", ".mkv", ".mov"}
CROP_SIDE = 350


def settings(yunet_model: str) -> dict[str, dict[str, Any]]:
    """Each edgefer setting: the detector config and how it treats each kind of input."""
    from edgefer.runtime.detect import HaarConfig, YuNetConfig
    from edgefer.runtime.tracking import TrackConfig

    track = TrackConfig()
    return {
        "haar (default)": {"config": HaarConfig(), "tracking": track},
        # The default before the development set of benchmarks/detect_dev.py chose the present one.
        "haar previous (1.5 windows, 1.1 / 5)": {"config": HaarConfig(1.1, 5, min_face_windows=1.5, verify=False),
                                                 "tracking": track},
        "yunet": {"config": YuNetConfig(yunet_model), "tracking": track},
    }


def reference(yunet_model: str) -> Callable[[np.ndarray], list[list[int]]]:
    from edgefer.runtime.detect import YuNetConfig, YuNetDetector

    judge = YuNetDetector(YuNetConfig(yunet_model, detect_width=0, min_face=10, min_face_ratio=0.0))
    return lambda img: [b.as_list() for b in judge.detect(img)]


def tight_crops(photos: Sequence[Path], ref: Callable) -> list[tuple[str, np.ndarray, list[int]]]:
    """Square crops around each reference face: as wide as the box (cheek to cheek) and as tall as it,
    with the face's box in the crop (the crop's reference, known by construction)."""
    crops = []
    for path in photos:
        img = cv2.imread(str(path))
        for i, (x, y, w, h) in enumerate(ref(img)):
            for fit, side in (("wide", w), ("tall", max(w, h))):
                cx, cy = x + w // 2, y + h // 2
                x0, y0 = max(cx - side // 2, 0), max(cy - side // 2, 0)
                crop = img[y0:y0 + side, x0:x0 + side]
                sx, sy = CROP_SIDE / crop.shape[1], CROP_SIDE / crop.shape[0]
                box = [round((x - x0) * sx), round((y - y0) * sy), round(w * sx), round(h * sy)]
                crops.append((f"{path.stem}-{i}-{fit}", cv2.resize(crop, (CROP_SIDE, CROP_SIDE),
                                                                   interpolation=cv2.INTER_AREA), box))
    return crops


def clip_frames(path: Path, count: int) -> list[np.ndarray]:
    from benchmarks.frames import fit_frame

    cap = cv2.VideoCapture(str(path))
    frames = []
    while len(frames) < count:
        ok, img = cap.read()
        if not ok:
            break
        frames.append(fit_frame(img, (640, 480)))
    cap.release()
    return frames


class Contender:
    """One edgefer setting on a sequence of images: boxes and wall ms per image."""

    def __init__(self, recognizer: Any, still: bool):
        self.recognizer = recognizer
        self.still = still
        self.boxes: list[list[list[int]]] = []
        self.ms: list[float] = []

    def run(self, images: Sequence[np.ndarray]) -> None:
        for img in images:
            t0 = time.perf_counter()
            faces = self.recognizer.analyse(img, still=self.still).faces
            self.ms.append((time.perf_counter() - t0) * 1e3)
            self.boxes.append([list(f.box) for f in faces])

    def phase_boxes(self, images: Sequence[np.ndarray], every: int) -> list[list[list[list[int]]]]:
        """The boxes of the stream at each phase of its detection frames: for phase k the stream first
        shows ``images[0]`` k times (a camera that started k frames earlier), so its detection frames
        fall k frames later in ``images``; k = 0 .. every - 1."""
        out = []
        for k in range(every):
            self.recognizer.reset()
            for _ in range(k):
                self.recognizer.analyse(images[0], still=False)
            out.append([[list(f.box) for f in self.recognizer.analyse(img, still=False).faces] for img in images])
        return out


def score(boxes: Sequence[Sequence[Sequence[int]]], truth: Sequence[Sequence[Sequence[int]]],
          fer_boxes: Sequence[Sequence[Sequence[int]]] | None, ms: Sequence[float]) -> dict[str, Any]:
    """Reference faces found, extra boxes, fer's real faces lost, ms per frame."""
    from benchmarks.peer import same_face

    found = sum(sum(any(same_face(t, b) for b in mine) for t in ref) for mine, ref in zip(boxes, truth))
    extra = sum(sum(not any(same_face(b, t) for t in ref) for b in mine) for mine, ref in zip(boxes, truth))
    out: dict[str, Any] = {"found": found, "extra": extra, "ms_per_frame": round(statistics.median(ms), 2),
                           "ms_per_frame_mean": round(statistics.fmean(ms), 2)}
    if fer_boxes is not None:
        real = [[f for f in fb if any(same_face(f, t) for t in ref)] for fb, ref in zip(fer_boxes, truth)]
        out["fer_real_faces_lost"] = sum(sum(not any(same_face(f, b) for b in mine) for f in r)
                                         for r, mine in zip(real, boxes))
    return out


def run_input(name: str, kind: str, images: list[np.ndarray], source: str, frame_size: str, truth: list,
              contenders: dict[str, Contender], peer_python: str | None, block: int, repeats: int) -> dict[str, Any]:
    """Every contender and fer on the same images, in turns of ``block`` images, ``repeats`` times for timing."""
    from benchmarks.peer import PeerSession, same_face
    from edgefer.runtime.tracking import TrackingDetector

    peer = PeerSession("fer", peer_python, source, frame_size) if peer_python else None
    try:
        if peer and kind != "clip":
            peer.run(len(images), record=False)  # fer's first call builds its graph; a whole cycle keeps the order
        for c in contenders.values():
            c.run(images[:1])
            c.boxes, c.ms = [], []
        for rep in range(repeats):
            for start in range(0, len(images), block):
                chunk = images[start:start + block]
                for c in contenders.values():
                    keep_boxes = list(c.boxes)
                    c.run(chunk)
                    if rep:
                        c.boxes = keep_boxes  # boxes of the first pass only; the others only time
                if peer:
                    peer.run(len(chunk))
        fer = peer.finish() if peer else None
    finally:
        if peer:
            peer.close()
    n = len(images)
    result: dict[str, Any] = {"kind": kind, "frames": n, "reference_faces": sum(len(t) for t in truth),
                              "settings": {}}
    fer_boxes = fer["boxes"][:n] if fer else None
    if fer:
        real = sum(sum(any(same_face(f, t) for t in ref) for f in fb) for fb, ref in zip(fer_boxes, truth))
        result["fer"] = {**score(fer_boxes, truth, None, fer["samples_ms"]["process"]), "real_faces": real,
                         "peak_rss_mib": fer["peak_rss_mib"], "version": fer["versions"].get("fer")}
    for label, c in contenders.items():
        result["settings"][label] = score(c.boxes, truth, fer_boxes, c.ms)
        detector = c.recognizer.detector
        if kind == "clip" and isinstance(detector, TrackingDetector):
            # Which frames are detection frames is chance (when the camera started): every phase is scored.
            phases = [score(b, truth, fer_boxes, c.ms)
                      for b in c.phase_boxes(images, detector.config.detect_every)]
            result["settings"][label]["by_phase"] = {
                k: [p[k] for p in phases] for k in ("found", "extra", "fer_real_faces_lost") if k in phases[0]}
        if fer:
            result["settings"][label]["ms_vs_fer"] = round(result["settings"][label]["ms_per_frame"]
                                                           / result["fer"]["ms_per_frame"], 3)
    print(f"{name}: " + "; ".join(f"{k} {v['found']}/{result['reference_faces']} {v['ms_per_frame']} ms"
                                  for k, v in [*result["settings"].items(), *([("fer", result["fer"])] if fer else [])]),
          file=sys.stderr)
    return result


MD_BEGIN = "<!-- recall-table:begin (python benchmarks/recall.py --from-json ... --markdown FILE) -->"
MD_END = "<!-- recall-table:end -->"


def _spread(value: Any, phases: Sequence[int] | None) -> str:
    return f"{value} ({min(phases)}-{max(phases)})" if phases and min(phases) < max(phases) else f"{value}"


def doc_table(result: dict[str, Any]) -> str:
    """The documentation's table: per input, fer's faces and time, then each setting's faces found, fer's
    real faces lost, false boxes and ms; on a stream, the range over its detection-frame phases in brackets."""
    names = list(next(iter(result["inputs"].values()))["settings"])
    lines = ["| input | reference faces | fer: found (real), ms | "
             + " | ".join(f"{n}: found, lost, false, ms" for n in names) + " |",
             "|---|---:|---|" + "---|" * len(names)]
    for name, r in result["inputs"].items():
        fer = r.get("fer")
        cells = ["–" if fer is None else f"{fer['found']} ({fer['real_faces']}), {fer['ms_per_frame']:.3g}"]
        for n in names:
            s, phases = r["settings"][n], r["settings"][n].get("by_phase", {})
            lost = s.get("fer_real_faces_lost", "–")
            cells.append(f"{_spread(s['found'], phases.get('found'))}, "
                         f"{_spread(lost, phases.get('fer_real_faces_lost'))}, "
                         f"{_spread(s['extra'], phases.get('extra'))}, {s['ms_per_frame']:.3g}")
        lines.append(f"| {name} | {r['reference_faces']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(prog="benchmarks/recall.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--media", default=str(MEDIA), help="folder of photos and clips (default: ../shared/media)")
    p.add_argument("--yunet-model", default=str(YUNET), help="YuNet ONNX: the reference and the yunet setting")
    p.add_argument("--peer-python", help="Python of a venv with the fer package (fer runs beside when given)")
    p.add_argument("--frames", type=int, default=60, help="frames of each clip")
    p.add_argument("--repeats", type=int, default=3, help="timed passes over each photo and crop set")
    p.add_argument("--json", help="write the result here")
    p.add_argument("--from-json", metavar="JSON", help="measure nothing: take the result from this file")
    p.add_argument("--markdown", nargs="*", default=[], metavar="FILE",
                   help="also rewrite the table between the recall-table markers of these files")
    args = p.parse_args(argv)
    media = Path(args.media)
    try:
        for path in args.markdown:  # checked before a run of minutes, not after it
            if MD_BEGIN not in Path(path).read_text():
                raise ValueError(f"{path} has no recall-table markers: add a line {MD_BEGIN} and a line {MD_END} "
                                 "where the table goes")
        if args.from_json:
            result = json.loads(Path(args.from_json).read_text())
            if not str(result.get("schema", "")).startswith("edgefer-recall/"):
                raise ValueError(f"--from-json {args.from_json} is not a benchmarks/recall.py result")
        elif not Path(args.yunet_model).is_file():
            raise ValueError(f"--yunet-model {args.yunet_model} does not exist")
        elif not media.is_dir():
            raise ValueError(f"--media {media} is not a folder")
        elif args.frames < 1 or args.repeats < 1:
            raise ValueError("--frames and --repeats must be at least 1")
    except (OSError, ValueError) as exc:
        print(f"recall.py: error: {exc}", file=sys.stderr)
        return 2
    if not args.from_json:
        result = measure(args, argv)
        if args.json:
            Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    table = doc_table(result)
    print(table)
    for path in args.markdown:
        splice_into_readme(Path(path), table, MD_BEGIN, MD_END, "recall-table")
    return 0


def measure(args: argparse.Namespace, argv: Sequence[str]) -> dict[str, Any]:
    """Every setting and fer on the photos, the tight crops and the clips of ``args.media``."""
    media = Path(args.media)
    from edgefer.runtime.classifier import DEFAULT_ZOOM, EmotionClassifier
    from edgefer.runtime.detect import create_engine
    from edgefer.runtime.detectors import for_input
    from edgefer.runtime.recognizer import EmotionRecognizer

    ref = reference(args.yunet_model)
    # The test-time views EmotionRecognizer uses by default: flip and the tighter view.
    classifier = EmotionClassifier(None, "litert", flip=True, zoom=DEFAULT_ZOOM)
    engines = {k: (create_engine(v["config"]), v) for k, v in settings(args.yunet_model).items()}

    def contenders(still: bool, video: bool = False) -> dict[str, Contender]:
        out = {}
        for label, (engine, spec) in engines.items():
            as_still = still and spec.get("stills", True)
            det = for_input(engine, spec["tracking"] if video else None, still=as_still)
            out[label] = Contender(EmotionRecognizer.from_parts(det, classifier), as_still)
        return out

    photos = sorted(q for q in media.iterdir() if q.suffix.lower() in IMAGE_SUFFIXES)
    clips = sorted(q for q in media.iterdir() if q.suffix.lower() in VIDEO_SUFFIXES)
    inputs: dict[str, Any] = {}
    for photo in photos:
        img = cv2.imread(str(photo))
        inputs[photo.name] = run_input(photo.name, "photo", [img], str(photo), "native", [ref(img)],
                                       contenders(True), args.peer_python, 1, args.repeats)
    crops = tight_crops(photos, ref)
    with tempfile.TemporaryDirectory() as tmp:
        for fit in ("wide", "tall"):
            chosen = sorted((n, c, b) for n, c, b in crops if n.endswith(fit))
            folder = Path(tmp) / fit
            folder.mkdir()
            for n, c, _ in chosen:
                cv2.imwrite(str(folder / f"{n}.png"), c)
            images = [cv2.imread(str(folder / f"{n}.png")) for n, _, _ in chosen]
            inputs[f"tight crops ({fit}, {CROP_SIDE}x{CROP_SIDE})"] = run_input(
                f"crops {fit}", "crops", images, str(folder), "native", [[b] for _, _, b in chosen],
                contenders(True), args.peer_python, len(images), args.repeats)
    for clip in clips:
        frames = clip_frames(clip, args.frames)
        truth = [ref(f) for f in frames]
        for mode, still in (("stream", False), ("every frame a still", True)):
            inputs[f"{clip.name} 640x480, {mode}"] = run_input(
                f"{clip.name} {mode}", "clip", frames, str(clip), "640x480", truth,
                contenders(still, video=not still), args.peer_python, 10, 1)
    classifier.close()
    from benchmarks.device import conditions, device_info
    from benchmarks.memory import peak_rss_mib

    return {"schema": "edgefer-recall/3", "command": "python benchmarks/recall.py " + shlex.join(argv),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "reference": "YuNet 2023mar at full resolution, faces >= 10 px",
            "settings": {k: repr(v["config"]) for k, v in settings(args.yunet_model).items()},
            "edgefer_peak_rss_mib": peak_rss_mib(), "device": device_info(), "conditions_after": conditions(),
            "note": "wall time; edgefer and fer take turns block by block on the same images, so machine load "
                    "hits both alike", "inputs": inputs}


if __name__ == "__main__":
    raise SystemExit(main())
