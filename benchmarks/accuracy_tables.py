#!/usr/bin/env python3
"""The README's accuracy tables, written from the committed JSON, so a new model cannot leave them stale.

    python benchmarks/accuracy_tables.py --markdown README.md docs/training.md

- ``accuracy-table``: FER2013 PublicTest, one row per shipped artifact and test-time views, from
  ``benchmarks/results/accuracy-fer2013-val.json`` (``benchmarks/accuracy.py``), with the artifact's
  size and the papers' own FER2013 figures (``results/papers.json``, in italics: not measured here).
- ``cross-table``: the shipped INT8 model as the runtime runs it (test-time flip and the tighter view)
  beside the ``fer`` package on the very same faces (``benchmarks/results/cross-dataset.json``,
  ``edgefer eval-cross``); ``cross-table-all`` has a row for every artifact and test-time views.

``--markdown`` rewrites each block whose markers a file has; ``make model-figures`` runs it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Sequence

if __package__ in (None, ""):
    # Run as a script: make `benchmarks` importable (appended, see accuracy.py).
    sys.path.append(str(Path(__file__).resolve().parents[1]))

from edgefer.train.results_table import splice_into_readme  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ACCURACY = ROOT / "benchmarks" / "results" / "accuracy-fer2013-val.json"
CROSS = ROOT / "benchmarks" / "results" / "cross-dataset.json"
PAPERS = ROOT / "results" / "papers.json"
MODELS = ROOT / "runtime" / "models"
#: What the shipped model is, from its manifest, for the first row (the default artifact).
ARCHITECTURES = {"mobilenet_v1": "MobileNet v1", "vgg16": "VGG16", "hybrid_mobilenet_vgg16": "MobileNet + VGG16"}
SET_NAMES = {"fer2013-val": "FER2013 PublicTest", "kdef": "KDEF", "ckplus": "CK+"}


def markers(name: str) -> tuple[str, str]:
    return (f"<!-- {name}:begin (python benchmarks/accuracy_tables.py --markdown FILE) -->",
            f"<!-- {name}:end -->")


def _pct(x: float) -> str:
    return f"{x * 100:.2f} %"


def describe(manifest: dict[str, Any]) -> str:
    """``MobileNet v1 α 0.5 + linear SVM, 96 px`` from an artifact's manifest."""
    arch = manifest.get("architecture") or {}
    name = str(arch.get("name") or "CNN")
    name = ARCHITECTURES.get(name, name)
    if arch.get("alpha") not in (None, 1.0):
        name += f" α {arch['alpha']:g}"
    head = str(manifest.get("head"))
    if head == "svm":
        head = f"{(manifest.get('svm') or {}).get('kind', 'linear')} SVM"
    return f"{name} + {head}, {manifest['input']['height']} px"


def accuracy_table(accuracy: dict[str, Any], papers: dict[str, Any], models: Path = MODELS) -> str:
    """PublicTest: every evaluation of ``accuracy-fer2013-val.json``, then the papers' FER2013 rows."""
    lines = ["| model | evaluated on | accuracy | macro-F1 | size | source |", "|---|---|---:|---:|---:|---|"]
    source = f"`{ACCURACY.relative_to(ROOT)}`"
    for i, e in enumerate(accuracy["evaluations"]):
        name = Path(e["model"]).name
        artifact = models / name
        size = f"{artifact.stat().st_size / 1e6:.1f} MB" if artifact.exists() else "—"
        what = f"edgefer `{name}`"
        manifest = Path(f"{artifact}.json")
        if i == 0 and manifest.exists():  # the first row (the default artifact) says what the model is
            what += f" ({describe(json.loads(manifest.read_text()))})"
        lines.append(f"| {what}, {views_label(e)} | PublicTest | {_pct(e['accuracy'])} | {_pct(e['macro_f1'])} | {size} "
                     f"| {source} |")
    for p in papers["rows"]:
        if p["dataset"] != "FER2013":
            continue
        who = p["source"].split(",")[0]
        f1 = _pct(p["macro_f1"]) if p.get("macro_f1") is not None else "—"
        lines.append(f"| *{who}, {p['model']}, {p['head']} head* | *{p['protocol']}* | *{_pct(p['accuracy'])}* "
                     f"| {f1} | — | published |")
    return "\n".join(lines)


def views_label(row: dict[str, Any]) -> str:
    """A row's test-time views as the CLI spells them: ``test-time flip + zoom 0.9`` (the default), ``--no-zoom``..."""
    flip, zoom = bool(row.get("test_time_flip")), row.get("test_time_zoom")
    if flip and zoom:
        return f"test-time flip + zoom {zoom:g}"
    if zoom:
        return f"zoom {zoom:g}, `--no-flip`"
    return "test-time flip, `--no-zoom`" if flip else "`--no-flip --no-zoom`"


def runs_as_shipped(row: dict[str, Any]) -> bool:
    """Whether a row is scored with the runtime's default views (test-time flip and the tighter view)."""
    from edgefer.runtime.classifier import DEFAULT_ZOOM

    return bool(row.get("test_time_flip")) and row.get("test_time_zoom") == DEFAULT_ZOOM


def _set_header(result: dict[str, Any], name: str, model: dict[str, Any]) -> str:
    label = SET_NAMES.get(name, name)
    if name == "ckplus" and result["sets"][name].get("layout") == "ckplus48":
        label = "CK+48"
    held = (model.get("held_out") or {}).get(name)
    return f"{label}, {held['held_out_people']} people" if held else label


def cross_table(result: dict[str, Any], every: bool = False) -> str:
    """Accuracy (macro-F1) per face set: the shipped INT8 model as the runtime runs it (``every``: all rows),
    then ``fer``."""
    rows = result["models"] if every else [
        m for m in result["models"] if runs_as_shipped(m) and Path(m["model"]).suffix == ".tflite"][:1]
    if not rows:
        raise ValueError("the cross-dataset result has no TFLite model scored with the runtime's test-time views "
                         "(eval-cross --model ...tflite --flip --zoom 0.9)")
    sets = list(result["sets"])
    lines = ["| accuracy (macro-F1) | " + " | ".join(_set_header(result, s, rows[0]) for s in sets) + " |",
             "|---" + "|---:" * len(sets) + "|"]
    for m in rows:
        name = f"edgefer `{Path(m['model']).name}`"
        if every:
            name += f", {views_label(m)}"
        lines.append(f"| {name} | " + " | ".join(
            f"{_pct(m['results'][s]['accuracy'])} ({m['results'][s]['macro_f1'] * 100:.2f})" for s in sets) + " |")
    peer = result.get("peer")
    if peer and any(m.get("peer_on_same_faces") != rows[0].get("peer_on_same_faces") for m in rows):
        raise ValueError("these models were scored on different held-out people: one fer row cannot stand "
                         "beside them all (edgefer eval-cross prints each model's own)")
    if peer:
        same = {**peer["results"], **(rows[0].get("peer_on_same_faces") or {})}  # fer on the held-out faces
        version = peer.get("versions", {}).get("fer", "")
        lines.append(f"| `fer` {version} (same faces) | " + " | ".join(
            f"{_pct(same[s]['accuracy'])} ({same[s]['macro_f1'] * 100:.2f})" for s in sets) + " |")
    if every and peer:  # the margins of the model users get (INT8 TFLite, the default views), in words
        shipped = next((m for m in rows if runs_as_shipped(m) and Path(m["model"]).suffix == ".tflite"), None)
        if shipped and shipped.get("minus_fer_points"):
            margins = shipped["minus_fer_points"]
            ahead = sum(v > 0 for v in margins.values())
            verdict = "on every set" if ahead == len(margins) else f"on {ahead} of {len(margins)} sets"
            lines += ["", f"The shipped INT8 model, as the runtime runs it, is ahead of `fer` {verdict} (points over "
                      "`fer` on the same faces): " + ", ".join(
                          f"{_set_header(result, s, shipped).split(',')[0]} {margins[s]:+.2f}" for s in margins) + "."]
    return "\n".join(lines)


def tables() -> dict[str, str]:
    """Every block this script writes, by marker name, from the committed JSON."""
    cross = json.loads(CROSS.read_text())
    return {"accuracy-table": accuracy_table(json.loads(ACCURACY.read_text()), json.loads(PAPERS.read_text())),
            "cross-table": cross_table(cross), "cross-table-all": cross_table(cross, every=True)}


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="benchmarks/accuracy_tables.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--markdown", nargs="*", default=[], metavar="FILE",
                   help="rewrite every block of these files that has this script's markers")
    args = p.parse_args(argv)
    try:
        blocks = tables()
        for path in args.markdown:
            text = Path(path).read_text()
            found = [name for name in blocks if markers(name)[0] in text]
            if not found:
                raise ValueError(f"{path} has none of the markers {', '.join(markers(n)[0] for n in blocks)}")
            for name in found:
                splice_into_readme(Path(path), blocks[name], *markers(name), name)
    except (OSError, ValueError, KeyError) as exc:
        print(f"accuracy_tables.py: error: {exc}", file=sys.stderr)
        return 2
    for name, text in blocks.items():
        print(f"{name}:\n{text}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
