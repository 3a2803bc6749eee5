"""``edgefer eval-cross``: artifacts on FER2013 validation and on KDEF / CK+ people they never saw, beside ``fer``.

Face sets, cut once and shared by every contender:

- ``fer2013-val``: FER2013 PublicTest (already 48x48 faces). It is the *validation* split:
  models choose epochs and fit their temperature on it, so it is in-domain, not held out.
- ``kdef``: KDEF portraits (angles ``--kdef-angles``) cut with the runtime's Haar detector the
  way training cuts them (:class:`~.crop.FaceCropper`); photos where it finds no face are left
  out and counted (the device would not classify them either).
- ``ckplus``: CK+48 faces (already 48x48 crops; contempt is not one of the 7 classes and is
  skipped) or the original CK+ sequences, Haar-cut.

On KDEF and CK+ only the people the model never trained or validated on are scored: they come
from the artifact's manifest (``training.sources``, see :mod:`.provenance`). An artifact without
that record is refused unless ``--assume-unseen`` says every person is new to it.

Artifacts run through the runtime backends (never TensorFlow). With ``--peer-python`` the
``fer`` package's classifier scores exactly the same crops in its own virtual environment
(:mod:`.fer_crops`). Accuracy and macro-F1 (over the classes present) per set; margins against
``fer`` in points. Every artifact after the first is also compared with the first (same test-time
views: flip, zoom) face by face on the faces both scored: how many faces only one of the two gets right,
and McNemar's exact test of whether that split could be chance (``versus_first``), so a choice
between two models says whether their difference is more than noise.
"""

from __future__ import annotations

import json
import logging
import math
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from edgefer.runtime.labels import EMOTIONS
from edgefer.runtime.metrics import classification_summary

log = logging.getLogger(__name__)

SCHEMA = "edgefer-cross-dataset/1"
PEER_SCRIPT = Path(__file__).resolve().with_name("fer_crops.py")


@dataclass
class FaceSet:
    """Face crops of one set (uint8, one size), canonical labels, and per-face people where known."""

    name: str
    images: np.ndarray
    labels: np.ndarray
    subjects: np.ndarray | None
    info: dict[str, Any] = field(default_factory=dict)
    index: np.ndarray | None = None  # positions in the set as loaded; None: all of it, in order

    def subset(self, keep: np.ndarray) -> "FaceSet":
        whole = np.arange(len(self.labels)) if self.index is None else self.index
        return FaceSet(self.name, self.images[keep], self.labels[keep],
                       None if self.subjects is None else self.subjects[keep], dict(self.info), whole[keep])


def load_fer_val(root: str | Path, crop: int = 128) -> FaceSet:
    """FER2013 PublicTest (``<root>/val`` or ``<root>`` itself), at its own 48x48: each classifier resizes.

    A validation set of faces of several sizes is brought to ``crop`` x ``crop`` instead.
    """
    from edgefer.runtime.datasets import load_dataset

    try:
        ds = load_dataset(root, "val", None)
    except ValueError as exc:
        if "differ in size" not in str(exc):
            raise
        ds = load_dataset(root, "val", (crop, crop))
    where = Path(root) / "val" if (Path(root) / "val").is_dir() else Path(root)
    return FaceSet("fer2013-val", ds.images, ds.labels, None,
                   {"source": str(where), "role": "validation split (model selection, temperature): in-domain, "
                                                   "not held out", "unreadable": len(ds.skipped)})


def load_kdef_faces(root: str | Path, crop: int, angles: Sequence[str]) -> FaceSet:
    """KDEF photos Haar-cut as training cuts them; photos without a detected face left out and counted."""
    from .kdef import load_kdef

    corpus = load_kdef(root, tuple(angles), (crop, crop), no_face="drop")
    crop_report = corpus.report["crop"]
    return FaceSet("kdef", corpus.faces.images, corpus.faces.labels, corpus.subjects, {
        "source": str(root), "angles": list(angles), "photos": crop_report["total"],
        "no_face": crop_report["no_face_count"], "unreadable": crop_report["unreadable_count"],
        "cropping": "runtime HaarDetector (min face 40 px, full resolution), largest face, grey",
    })


def load_ckplus_faces(root: str | Path, crop: int) -> FaceSet:
    """CK+48 class folders (48x48 crops) or the original CK+ layout (Haar-cut)."""
    from .ckplus import load_ckplus, load_ckplus48

    root = Path(root)
    original = any(root.glob("cohn-kanade-images")) or any(root.glob("*/cohn-kanade-images"))
    # CK+48 stays at its own size (resizing twice would blur what every classifier sees); frames are cut to ``crop``.
    corpus = load_ckplus(root, (crop, crop)) if original else load_ckplus48(root, None)
    # CK+48's labels index its own classes (no neutral there); this evaluation scores in EMOTIONS order.
    names = corpus.faces.label_names
    labels = np.asarray([EMOTIONS.index(names[i]) for i in corpus.faces.labels], np.int64)
    return FaceSet("ckplus", corpus.faces.images, labels, corpus.subjects, {
        "source": str(root), "layout": "ckplus" if original else "ckplus48",
        "cropping": "Haar-cut frames" if original else "the published 48x48 face crops, as they are",
    })


def held_out(faces: FaceSet, dataset: str, sources: list[dict[str, Any]] | None,
             assume_unseen: bool) -> tuple[FaceSet | None, dict[str, Any]]:
    """The faces of people the model never saw, and how that was decided (``None``: cannot be decided)."""
    from .provenance import seen_subjects

    assert faces.subjects is not None, f"{faces.name} has no subject ids"
    people = sorted(set(faces.subjects.tolist()))
    if sources is None:
        if not assume_unseen:
            raise ValueError(
                "the artifact's manifest has no training.sources record, so which KDEF/CK+ people it saw is unknown; "
                "pass --assume-unseen if it was trained on neither (every person then counts as held out)")
        seen: set[str] | None = set()
        rule = "assumed: the manifest records no training data (--assume-unseen)"
    else:
        seen = seen_subjects(sources, dataset)
        if seen is None:
            return None, {"skipped": f"the model trained on {dataset} faces without subject ids: no person is "
                                     "known to be held out"}
        rule = ("the model never saw this dataset" if not seen
                else f"{len(seen)} people the model trained or validated on left out")
    keep = np.flatnonzero(~np.isin(faces.subjects, sorted(seen)))
    note = {"people": len(people), "held_out_people": len(people) - len(seen & set(people)), "rule": rule}
    if len(keep) == 0:
        return None, {**note, "skipped": "every person of this set was seen in training"}
    return faces.subset(keep), note


def _artifact_sources(model: str | Path) -> list[dict[str, Any]] | None:
    from edgefer.runtime.manifest import Manifest

    training = Manifest.load(model, verify=False).extra.get("training") or {}
    return training.get("sources")


def score_artifact(model: str | Path, backend: str | None, faces: FaceSet, flip: bool = False,
                   zoom: float | None = None) -> np.ndarray:
    """Scores of ``model`` on the faces, in :data:`EMOTIONS` order, with the runtime's test-time views
    (``flip``: averaged with the mirrored faces'; ``zoom``: and with their central ``zoom``)."""
    from edgefer.runtime.classifier import EmotionClassifier

    clf = EmotionClassifier(model, backend, flip=flip, zoom=zoom)
    try:
        scores = clf.predict_dataset(faces.images)
        return _to_canonical(scores, clf.labels, str(model))
    finally:
        clf.close()


def _to_canonical(scores: np.ndarray, labels: Sequence[str], who: str) -> np.ndarray:
    missing = [name for name in EMOTIONS if name not in labels]
    if missing:
        raise ValueError(f"{who} has no class for {', '.join(missing)}")
    return scores[:, [list(labels).index(name) for name in EMOTIONS]]


def score_peer_fer(python: str, faces: FaceSet) -> tuple[np.ndarray, dict[str, Any]]:
    """``fer``'s classifier on the same crops, in the Python (virtual environment) that has it."""
    with tempfile.TemporaryDirectory() as tmp:
        npz, out = Path(tmp) / "faces.npz", Path(tmp) / "scores.npy"
        np.savez(npz, images=faces.images)
        proc = subprocess.run([python, str(PEER_SCRIPT), "--faces", str(npz), "--out", str(out)],
                              capture_output=True, text=True)
        if proc.returncode == 3:
            raise ValueError(f"the fer package is not installed for {python}; make it a separate virtual "
                             "environment (see benchmarks/README.md: python -m venv fer-venv && fer-venv/bin/pip "
                             "install --no-deps fer tensorflow-cpu 'opencv-python-headless<5' ...)")
        if proc.returncode != 0:
            raise RuntimeError(f"fer on {faces.name} failed (exit {proc.returncode}): {proc.stderr[-1500:]}")
        info = json.loads(proc.stdout.strip().splitlines()[-1])
        scores = np.load(out)
    return _to_canonical(scores, info["labels"], "fer"), info


def _metrics(faces: FaceSet, scores: np.ndarray) -> dict[str, Any]:
    summary = classification_summary(faces.labels, scores.argmax(1), list(EMOTIONS))
    return {"accuracy": round(summary["accuracy"], 6), "macro_f1": round(summary["macro_f1"], 6),
            "samples": summary["samples"], "per_class": summary["per_class"],
            "confusion_matrix": summary["confusion_matrix"]}


def mcnemar_p(only_a: int, only_b: int) -> float:
    """McNemar's exact two-sided p-value: faces only A gets right against faces only B does (binomial, p = 1/2)."""
    n, k = only_a + only_b, min(only_a, only_b)
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def people_p(net_by_person: np.ndarray, draws: int = 200_000, seed: int = 0) -> float:
    """Two-sided p-value that two models tie, when faces come in people: a sign-flip permutation test.

    ``net_by_person``: per person, faces only the second model gets right minus faces only the first
    does. Under "no difference" each person's net is as likely negative as positive, whatever the
    correlation between one person's faces (several photos, or frames of one sequence), which McNemar's
    face-by-face test assumes away. Exact over every sign pattern for up to 16 people with a
    difference, else ``draws`` random patterns (seeded: the same answer each run).
    """
    net = np.asarray(net_by_person, np.int64)
    net = net[net != 0]
    if not len(net):
        return 1.0
    observed = abs(int(net.sum()))
    if len(net) <= 16:
        signs = ((np.arange(2 ** len(net))[:, None] >> np.arange(len(net))) & 1) * 2 - 1
        return float((np.abs(signs @ net) >= observed).mean())
    rng, hits = np.random.default_rng(seed), 0
    for start in range(0, draws, 10_000):  # in blocks: 10,000 x people at a time, not draws x people
        block = rng.integers(0, 2, (min(10_000, draws - start), len(net)), dtype=np.int8).astype(np.int64) * 2 - 1
        hits += int((np.abs(block @ net) >= observed).sum())
    return (hits + 1) / (draws + 1)


def paired(first: tuple[np.ndarray, np.ndarray], other: tuple[np.ndarray, np.ndarray],
           subjects: np.ndarray | None = None) -> dict[str, Any]:
    """``other`` against ``first`` on the faces both scored: each is (face index, right or not per face).

    ``subjects``: the person of each face of the whole set (by face index), where the set knows them;
    then the comparison is also made person by person (:func:`people_p`).
    """
    (index_a, right_a), (index_b, right_b) = first, other
    common, at_a, at_b = np.intersect1d(index_a, index_b, return_indices=True)
    a, b = right_a[at_a], right_b[at_b]
    only_first, only_this = int((a & ~b).sum()), int((b & ~a).sum())
    out = {"faces": int(len(common)), "points": round(float(b.mean() - a.mean()) * 100, 2) if len(common) else 0.0,
           "only_this_right": only_this, "only_first_right": only_first,
           "mcnemar_p": round(mcnemar_p(only_this, only_first), 4)}
    if subjects is not None and len(common):
        people, who = np.unique(np.asarray(subjects)[common], return_inverse=True)
        net = np.bincount(who, weights=b.astype(np.int64) - a.astype(np.int64), minlength=len(people))
        out.update(people=int(len(people)), people_p=round(people_p(net.astype(np.int64)), 4))
    return out


def run_cross_eval(models: Sequence[tuple[str, str | None]], fer: str | None, kdef: str | None,
                   ckplus: str | None, crop: int = 128, kdef_angles: Sequence[str] = ("S", "HL", "HR"),
                   peer_python: str | None = None, assume_unseen: bool = False, flip: bool = False,
                   zoom: float | None = None) -> dict[str, Any]:
    """Every (artifact, backend) and optionally ``fer`` on each given set; the JSON-ready result.

    Each artifact is scored on one view of each face; with ``flip`` also with test-time flip, and with
    ``zoom`` also with flip and the tighter view (:class:`~edgefer.runtime.classifier.EmotionClassifier`).
    """
    if not (fer or kdef or ckplus):
        raise ValueError("give at least one face set: --fer2013, --kdef or --ckplus")
    from edgefer.runtime.classifier import check_zoom

    check_zoom(zoom)  # before the faces are cut
    if zoom is not None and not flip:
        raise ValueError("--zoom adds rows with test-time flip and the tighter view: give --flip with it")
    settings: list[tuple[bool, float | None]] = [(False, None)] + [(True, None)] * flip + [(True, zoom)] * (
        zoom is not None)
    from edgefer.runtime.manifest import Manifest

    loaded: list[tuple[str, FaceSet]] = []
    if fer:
        loaded.append(("fer2013", load_fer_val(fer, crop)))
    if kdef:
        loaded.append(("kdef", load_kdef_faces(kdef, crop, kdef_angles)))
    if ckplus:
        loaded.append(("ckplus", load_ckplus_faces(ckplus, crop)))
    result: dict[str, Any] = {"schema": SCHEMA, "sets": {}, "models": [], "peer": None}
    subjects = {faces.name: faces.subjects for _, faces in loaded if faces.subjects is not None}
    for _, faces in loaded:
        result["sets"][faces.name] = {**faces.info, "faces": int(len(faces.labels)),
                                      "crop_side": int(faces.images.shape[1]),
                                      "class_counts": np.bincount(faces.labels, minlength=len(EMOTIONS)).tolist()}
    # People differ per model (each records what it saw): the peer scores every face of a set once, and
    # each model is set against the peer on exactly its own faces.
    used: dict[str, FaceSet] = {}
    parts: list[dict[str, np.ndarray | None]] = []  # per model: the faces of each set it was scored on
    right: list[dict[str, tuple[np.ndarray, np.ndarray]]] = []  # per row: (face index, right or not) per set
    for model, backend in models:
        manifest = Manifest.load(model)
        sources = _artifact_sources(model)
        notes: dict[str, dict[str, Any]] = {}
        held: list[FaceSet] = []  # the faces of each set this model never saw
        for dataset, faces in loaded:
            part, note = (faces, {}) if faces.subjects is None else held_out(faces, dataset, sources, assume_unseen)
            if note:
                notes[faces.name] = note
            if part is not None:
                held.append(part)
                used[faces.name] = faces
        for flipped, zoomed in settings:
            row: dict[str, Any] = {"model": str(model), "backend": backend or "default", "format": manifest.format,
                                   "precision": manifest.precision, "sha256": manifest.sha256,
                                   "input": manifest.input.to_dict(), "test_time_flip": flipped,
                                   "test_time_zoom": zoomed, "results": {}, "held_out": dict(notes)}
            right.append({})
            for part in held:
                t0 = time.perf_counter()
                scores = score_artifact(model, backend, part, flipped, zoomed)
                row["results"][part.name] = _metrics(part, scores)
                index = np.arange(len(part.labels)) if part.index is None else part.index
                right[-1][part.name] = (index, scores.argmax(1) == part.labels)
                log.info("%s on %s: %.2f %% (%d faces, %.1f s)", Path(model).name, part.name,
                         row["results"][part.name]["accuracy"] * 100, len(part.labels), time.perf_counter() - t0)
            parts.append({part.name: part.index for part in held})
            first = next(i for i, r in enumerate(result["models"] + [row]) if _views(r) == _views(row))
            if first < len(result["models"]):  # not the first row of its views: set it against that one
                row["versus_first"] = {"model": result["models"][first]["model"], "sets": {
                    name: paired(right[first][name], own, subjects.get(name))
                    for name, own in right[-1].items() if name in right[first]}}
            result["models"].append(row)
    if peer_python:
        peer: dict[str, Any] = {"name": "fer", "results": {}}
        scored: dict[str, np.ndarray] = {}
        for name, faces in used.items():
            scores, info = score_peer_fer(peer_python, faces)
            scored[name] = scores
            peer["results"][name] = _metrics(faces, scores)
            peer.update({k: info[k] for k in ("versions", "settings", "python")})
        result["peer"] = peer
        for row, own in zip(result["models"], parts):
            same: dict[str, Any] = {}
            for name in row["results"]:
                index = own.get(name)
                if index is None or len(index) == len(used[name].labels):
                    same[name] = peer["results"][name]
                else:  # a model that trained on some of this set's people: fer on the others only
                    same[name] = _metrics(used[name].subset(index), scored[name][index])
                    row.setdefault("peer_on_same_faces", {})[name] = same[name]
            row["minus_fer_points"] = {name: round((r["accuracy"] - same[name]["accuracy"]) * 100, 2)
                                       for name, r in row["results"].items()}
    return result


def _views(row: dict[str, Any]) -> tuple[bool, float | None]:
    """A row's test-time views: (flip, zoom); rows written before zoom existed have none."""
    return bool(row.get("test_time_flip")), row.get("test_time_zoom")


def views_note(row: dict[str, Any]) -> str:
    """``, flip`` / ``, flip, zoom 0.9`` / nothing: a row's test-time views, for a table's model column."""
    flip, zoom = _views(row)
    return (", flip" if flip else "") + (f", zoom {zoom:g}" if zoom is not None else "")


def markdown(result: dict[str, Any]) -> str:
    """The side-by-side table: accuracy / macro-F1 per set, one row per contender."""
    sets = list(result["sets"])
    head = "| model | " + " | ".join(f"{s} acc % | {s} F1 %" for s in sets) + " |"
    lines = [head, "|---" * (1 + 2 * len(sets)) + "|"]
    rows, shown = [], []
    for r in result["models"]:
        name = f"{Path(r['model']).name} ({r['backend']}{views_note(r)})"
        rows.append((name, r["results"]))
        same = r.get("peer_on_same_faces")
        if same and same not in shown:  # it trained on some KDEF/CK+ people: fer on the others, once
            shown.append(same)
            rows.append(("fer, on the same held-out faces", {**result["peer"]["results"], **same}))
    if result.get("peer"):
        rows.append((f"fer {result['peer'].get('versions', {}).get('fer', '')}".strip(), result["peer"]["results"]))
    for name, res in rows:
        cells = []
        for s in sets:
            r = res.get(s)
            cells += ([f"{r['accuracy'] * 100:.2f}", f"{r['macro_f1'] * 100:.2f}"] if r else ["—", "—"])
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    faces = ", ".join(f"{s}: {result['sets'][s]['faces']} faces" for s in sets)
    lines.append(f"\n({faces} before holding out people a model saw)")
    for r in result["models"]:
        versus = r.get("versus_first")
        if versus:
            flip = views_note(r)
            lines.append(f"{Path(r['model']).name}{flip} against {Path(versus['model']).name}{flip}: " + "; ".join(
                f"{s} {v['points']:+.2f} points ({v['only_this_right']} faces only it gets right, "
                f"{v['only_first_right']} only the other; McNemar p {v['mcnemar_p']:.2g}"
                + (f"; person by person, {v['people']} people, p {v['people_p']:.2g})" if "people_p" in v else ")")
                for s, v in versus["sets"].items()))
    return "\n".join(lines)


def write_result(result: dict[str, Any], path: str | Path, command: str) -> None:
    """The committed JSON: the result plus the command that made it and when."""
    out = {"schema": SCHEMA, "command": command, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           **{k: v for k, v in result.items() if k != "schema"}}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(out, indent=1) + "\n")
