#!/usr/bin/env python3
"""The development set the stream (tracking) defaults are chosen on (never ``../shared/media``, the test set).

    python benchmarks/track_dev.py --json benchmarks/results/track-dev.json

Built at run time, nothing of it is written to disk: 40 clips of 90 frames at
640x480, each one KDEF person (``../shared/datasets/kdef``) on a still natural
photograph without people (scikit-image's sample images, as
``benchmarks/detect_dev.py``). The portrait drifts across the frame and grows or
shrinks a little, and the face changes while it moves, the way a kiosk visitor's
does: it cross-fades from the neutral face to another expression, then turns
(to the half-profile photo of that expression), then back, and meanwhile tilts
its head sideways by up to 10-25 degrees and back (a tilted face is where the
Haar cascade and a fixed patch both fail). From frame 60 the
portrait slides out of the frame, and the last frames show the background alone,
so a face followed after it has gone counts as a false box. The reference is
YuNet at full resolution on every frame.

In the open: the tilt was added after a clip of the test media (``fer_test.mp4``)
lost a downcast, tilted face, and that diagnosis had shown its match falling to
0.45 before the score grid below was run. The grid (0.4-0.6 around the previous
0.5) and the rule were set without further looks at the test media.

For each tracking setting (``TrackConfig``: detect every 6th or 8th frame, the
match score below which a face counts as lost, how many detection passes a
followed face may be missed) with the default Haar detector, it reports the
reference faces found, false boxes (on no reference face), full detection passes
and CPU milliseconds per frame. ``chosen`` is the setting that finds the most
faces with no more false boxes and no more detection passes than the default of
:class:`edgefer.runtime.tracking.TrackConfig`.

Tried on these clips and not kept: re-cutting a followed face's patch from the
frame whenever its match weakens (below 0.7, 0.85 or always), so that it follows
a face that changes. Against the fixed patch at the same score and passes it
found 1-3 more faces of 2,993 for 1-9 more false boxes (and with two missed passes
allowed, 16-18 more faces for 4-18 more false boxes than that row). The option was
removed, so it is not rerun (those runs used a build whose confirmation rounded its
resize slightly differently). Also tried and not kept (2026-12-05, after `benchmarks/recall.py`
showed the default losing a downcast face on `fer_test.mp4` when its detection frames fall one
frame later): repeating a detection pass on the next frame whenever it misses a followed face.
At the default setting it found 60 fewer faces (2,537 against 2,597) with 13 fewer false boxes
and 69 more passes, and with two missed passes allowed 44 fewer: a face the cascade cannot see for
a moment is dropped after one frame instead of followed to the next regular pass.

``detector_rows`` (``--scale-factors``): a finer Haar search on the detection frames, with
the default tracking, reported beside the grid and never chosen from. Tried on 2026-12-05
after ``benchmarks/recall.py`` scored every phase of the detection frames and found the
default losing part of ``fer_test.mp4``'s opening at each of them: scale factors of 1.1, 1.15
and 1.2 instead of 1.25 found 2,598, 2,593 and 2,600 faces (the default 2,597) with 470, 368
and 246 false boxes (225) at 2.1, 1.7 and 1.4 times its CPU, so the default stays. Not kept
either (a script of that day, not this one): searching again, more finely, around a followed
face that a detection pass missed; it found a face 3-5 times in the 3,600 frames.

Tried on 2026-12-05 (session 20) and not kept, with a scratch script on these clips (found,
false boxes and detection passes against the default's 2,597 / 225 / 1,341): histogram
equalisation of the grey frame before the cascades, OpenCV's own face-detection sample's step,
which finds the downcast face of ``fer_test.mp4``'s opening on every one of its first 20 frames
where the default finds it on 3 (2,515 / 488 / 1,370); the cascade on the equalised frame and
the confirmation on the plain one (2,568 / 249 / 1,374); CLAHE (2,614 / 231 / 1,363); an
equalised second look on a frame where the plain pass finds nothing (2,606 / 233 / 1,333, or
2,597 / 321 / 1,272 confirmed on the equalised frame too). None finds more faces without more
false boxes. Nor do the second looks meet the video target at every phase (checked on the test
clip after the development figures above): on ``fer_test.mp4``'s first frame the plain pass
boxes the mouth and chin of that face, the box is followed, and no look runs on frames 2-4.

Kept (2026-12-07, session 34): a followed face that a detection pass missed is dropped when it
shares at least a fifth of the smaller box with a face the pass found (before, only when either
box's centre lay inside the other), so a box on part of a face does not stay beside the whole face
as a second person. Tried after a frame-by-frame look at ``fer_test.mp4``'s opening, where a
followed mouth-and-chin box stayed beside the whole face for six frames. On these clips, with a
scratch script, against the default's 2,597 faces / 225 false boxes / 1,341 passes: a share of 0.1
or 0.2 gave 2,597 / 219 / 1,341, 0.3 changed nothing; 0.2, the one less likely to merge two people
standing close, was kept (``SAME_FACE_SHARE`` in ``runtime/tracking.py``). It does not recover the
faces lost there: the opening's first box is still the mouth and chin, followed until the next pass.

Tried on 2026-12-06 (session 27) and not kept, with a scratch script on these clips: padding each
detection frame with a border of repeated edge pixels before the cascades (boxes cut back to the
frame), so that a face cut by the frame's edge may be seen whole. A border of 0.1 of the shorter
side found 2,645 faces with 197 false boxes and 1,318 passes (the default 2,597 / 225 / 1,341),
0.05 found 2,634 / 197 / 1,340, 0.15 2,652 / 276 / 1,282, and 0.1 on the top and sides only
2,626 / 275 / 1,304; a constant grey border instead of repeated edges found more faces with more
false boxes (2,660 / 327). The border of 0.1 costs 18 % more per detection pass (16.5 against
19.5 ms on a 640x480 frame of ``woman2.mp4``, timing only). Checked once on the test clip after
these figures (``benchmarks/recall.py`` with it as an extra setting): at ``fer_test.mp4``'s opening
it loses 12 (3-13 over the phases) of fer's real faces against the default's 9 (2-9), so it does
not answer the downcast face there either, and the 18 % was not spent on it.

Tried on 2026-12-07 (session 38) and not kept, with a scratch script on these clips: shifting the
scale grid from one detection pass to the next (the frame searched at the rule's scale, then at
1.25^0.5 times it, alternately; or at 1.25^-0.5; or in thirds of a step), so that over a few passes
the cascade sees the sizes between its 1.25 steps, as a finer search would, at no cost per pass. Against
the default's 2,597 faces / 219 false boxes / 1,341 passes: 2,598 / 263 / 1,333 (up, alternately),
2,593 / 235 / 1,334 (down), 2,592 / 256 / 1,334 (thirds); the grid shifted up on every pass 2,596 /
191 / 1,381. No more faces, so the test clip was not looked at for it.
"""

from __future__ import annotations

import argparse
import json
import random
import shlex
import sys
import time
from pathlib import Path
from typing import Any, Sequence

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

# The same KDEF folder, YuNet reference and backgrounds as the still-image development set.
from benchmarks.detect_dev import KDEF, YUNET, background, load_backgrounds  # noqa: E402

CLIPS, FRAMES, LEAVE = 40, 90, 60
EXPRESSIONS = ("AF", "AN", "DI", "HA", "SA", "SU")


def _people(kdef: Path) -> list[tuple[Path, str]]:
    """(folder, person code) of every KDEF person with all the photos a clip uses."""
    out = []
    for folder in sorted(p for p in kdef.rglob("*") if p.is_dir()):
        code = folder.name
        names = {p.stem.upper() for p in folder.glob("*.[jJ][pP][gG]")}
        if f"{code}NES" in names and all(f"{code}{e}S" in names and f"{code}{e}HL" in names for e in EXPRESSIONS):
            out.append((folder, code))
    return out


def _read(folder: Path, stem: str) -> np.ndarray:
    for path in (folder / f"{stem}.JPG", folder / f"{stem}.jpg"):
        if path.is_file():
            return cv2.imread(str(path), cv2.IMREAD_COLOR)
    raise ValueError(f"{folder / stem}.JPG is missing")


def _look(keys: Sequence[tuple[int, np.ndarray]], t: int) -> np.ndarray:
    """The portrait at frame ``t``: cross-faded between the key photos around it."""
    for (t0, a), (t1, b) in zip(keys, keys[1:]):
        if t0 <= t < t1:
            w = (t - t0) / (t1 - t0)
            return cv2.addWeighted(a, 1 - w, b, w, 0.0)
    return keys[-1][1]


def build(kdef: Path, referee: Any, seed: int = 0) -> list[list[tuple[np.ndarray, list]]]:
    """The clips: frames with their reference boxes."""
    backgrounds = load_backgrounds()
    people = _people(kdef)
    if len(people) < CLIPS:
        raise ValueError(f"{kdef} holds {len(people)} people with the neutral, six expressions and half-profile "
                         f"photos; the development clips need {CLIPS}")
    pick = random.Random(seed)
    rng = np.random.default_rng(seed)
    clips = []
    for folder, code in pick.sample(people, CLIPS):
        scene = background(backgrounds, rng)
        expr = pick.choice(EXPRESSIONS)
        turn = pick.choice(("HL", "HR")) if (folder / f"{code}{expr}HR.JPG").is_file() else "HL"
        photos = [_read(folder, f"{code}{s}") for s in ("NES", f"{expr}S", f"{expr}{turn}")]
        h0 = pick.randint(260, 440)  # portrait height: faces of about 90-160 pixels
        w0 = int(h0 * photos[0].shape[1] / photos[0].shape[0])
        photos = [cv2.resize(p, (w0, h0), interpolation=cv2.INTER_AREA) for p in photos]
        keys = [(0, photos[0]), (8, photos[0]), (24, photos[1]), (32, photos[1]), (44, photos[2]), (50, photos[2]),
                (58, photos[1])]
        x0, y0 = pick.uniform(0, max(1, 640 - w0)), pick.uniform(0, max(1, 480 - h0))
        vx, vy = pick.uniform(-2, 2), pick.uniform(-1, 1)
        grow = pick.uniform(-0.002, 0.003)
        exit_dx = pick.choice((-1, 1)) * pick.uniform(30, 50)
        roll = pick.choice((-1, 1)) * pick.uniform(10, 25)
        frames = []
        for t in range(FRAMES):
            frame = scene.copy()
            s = 1 + grow * min(t, LEAVE)
            look = _look(keys, min(t, LEAVE))
            look = cv2.resize(look, (int(w0 * s), int(h0 * s)), interpolation=cv2.INTER_AREA)
            if 16 <= t < 56:  # the head tilts sideways and back over 40 frames
                angle = roll * np.sin(np.pi * (t - 16) / 40)
                centre = (look.shape[1] / 2, look.shape[0] * 0.4)
                look = cv2.warpAffine(look, cv2.getRotationMatrix2D(centre, angle, 1.0), look.shape[1::-1],
                                      flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            x = x0 + vx * min(t, LEAVE) + exit_dx * max(0, t - LEAVE)
            y = y0 + vy * min(t, LEAVE)
            _paste(frame, look, int(round(x)), int(round(y)))
            frames.append((frame, [b.as_list() for b in referee.detect(frame)]))
        clips.append(frames)
    return clips


def _paste(frame: np.ndarray, img: np.ndarray, x: int, y: int) -> None:
    """``img`` onto ``frame`` at (x, y), cut where it leaves the frame."""
    h, w = frame.shape[:2]
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + img.shape[1], w), min(y + img.shape[0], h)
    if x1 > x0 and y1 > y0:
        frame[y0:y1, x0:x1] = img[y0 - y:y1 - y, x0 - x:x1 - x]


def score(config: Any, clips: Sequence, haar: Any = None) -> dict[str, Any]:
    """Reference faces found, false boxes, detection passes and CPU ms per frame of one tracking setting
    (with the default Haar detector, or the ``HaarConfig`` ``haar``)."""
    from benchmarks.peer import same_face
    from edgefer.runtime.detect import HaarConfig, HaarDetector
    from edgefer.runtime.tracking import TrackingDetector

    tracker = TrackingDetector(HaarDetector(haar or HaarConfig()), config)
    found = false = frames = 0
    t0 = time.process_time()
    for clip in clips:
        tracker.reset()
        for image, truth in clip:
            boxes = [b.as_list() for b in tracker.detect(image)]
            found += sum(any(same_face(t, b) for b in boxes) for t in truth)
            false += sum(not any(same_face(b, t) for t in truth) for b in boxes)
            frames += 1
    cpu_ms = (time.process_time() - t0) / frames * 1e3
    return {"found": found, "false": false, "detections": tracker.detections,
            "cpu_ms_per_frame": round(cpu_ms, 2)}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(prog="benchmarks/track_dev.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kdef", default=str(KDEF), help="KDEF folder (default: ../shared/datasets/kdef)")
    p.add_argument("--yunet-model", default=str(YUNET), help="YuNet ONNX, the reference")
    p.add_argument("--scale-factors", default="1.1,1.15,1.2",
                   help="Haar scale factors also tried on the detection frames, with the default tracking "
                        "(comma-separated; empty for none)")
    p.add_argument("--json", help="write the result here")
    args = p.parse_args(argv)

    from edgefer.runtime.detect import HaarConfig, YuNetConfig, YuNetDetector
    from edgefer.runtime.tracking import TrackConfig

    try:
        try:
            steps = [float(v) for v in args.scale_factors.split(",") if v.strip()]
        except ValueError:
            raise ValueError(f"--scale-factors takes numbers separated by commas (e.g. 1.1,1.2), got "
                             f"{args.scale_factors!r}") from None
        if any(v <= 1.0 for v in steps):
            raise ValueError(f"--scale-factors must each be > 1.0, got {args.scale_factors}")
        referee = YuNetDetector(YuNetConfig(args.yunet_model, detect_width=0, min_face=10, min_face_ratio=0.0))
        clips = build(Path(args.kdef), referee)
    except (ValueError, OSError) as exc:
        print(f"track_dev.py: error: {exc}", file=sys.stderr)
        return 2
    faces = sum(len(t) for clip in clips for _, t in clip)
    base = TrackConfig()
    settings = [TrackConfig(detect_every=n, min_score=m, keep_missed=k)
                for n in (6, 8) for m in (0.4, 0.5, 0.6) for k in (1, 2)]
    rows = []
    for cfg in settings:
        rows.append({"setting": f"detect_every {cfg.detect_every}, min_score {cfg.min_score}, keep_missed "
                                f"{cfg.keep_missed}", "detect_every": cfg.detect_every, "min_score": cfg.min_score,
                     "keep_missed": cfg.keep_missed, **score(cfg, clips)})
        r = rows[-1]
        print(f"{r['setting']:<52} found {r['found']:>5} of {faces}  false {r['false']:>4}  "
              f"detections {r['detections']:>4}  cpu {r['cpu_ms_per_frame']:5.2f} ms", flush=True)
    key = ("detect_every", "min_score", "keep_missed")
    baseline = next(r for r in rows if tuple(r[k] for k in key)
                    == (base.detect_every, base.min_score, base.keep_missed))
    ok = [r for r in rows if r["false"] <= baseline["false"] and r["detections"] <= baseline["detections"]]
    chosen = max(ok, key=lambda r: (r["found"], -r["detections"]))
    print(f"chosen: {chosen['setting']} (the default: found {baseline['found']}, false {baseline['false']})")
    # A finer search on the detection frames: reported beside the default, not chosen from.
    detector_rows = []
    for step in steps:
        detector_rows.append({"setting": f"Haar scale_factor {step}, default tracking", "scale_factor": step,
                              **score(base, clips, HaarConfig(scale_factor=step))})
        r = detector_rows[-1]
        print(f"{r['setting']:<52} found {r['found']:>5} of {faces}  false {r['false']:>4}  "
              f"detections {r['detections']:>4}  cpu {r['cpu_ms_per_frame']:5.2f} ms", flush=True)
    if args.json:
        from benchmarks.device import conditions

        result = {"schema": "edgefer-track-dev/2", "command": "python benchmarks/track_dev.py " + shlex.join(argv),
                  "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "clips": len(clips),
                  "frames_per_clip": FRAMES, "reference_faces": faces, "default": baseline["setting"],
                  "chosen": chosen["setting"], "rows": rows, "detector_rows": detector_rows,
                  "conditions_after": conditions()}
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
