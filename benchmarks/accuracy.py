#!/usr/bin/env python3
"""Accuracy and macro-F1 of each artifact/backend on a labelled folder, to read beside the latency table.

    python benchmarks/accuracy.py --data ../shared/datasets/fer2013/val --json benchmarks/results/accuracy.json
    python benchmarks/accuracy.py --data faces/ --model a.tflite --model b.onnx

Every artifact runs through the runtime backend exactly as ``edgefer eval`` does, one row per test-time
views: flip and the tighter view (the runtime's default), flip alone (``--no-zoom``) and the face
alone (``--no-flip --no-zoom``).
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


def shipped_artifacts() -> list[tuple[str, str | None]]:
    """``(model, backend)``: the shipped model of every backend installed here."""
    from edgefer.runtime.classifier import installed_defaults

    return [(str(path), name) for name, path in installed_defaults().items()]


def evaluate(models: Sequence[tuple[str, str | None]], data: str, threads: int | None,
             limit_per_class: int | None) -> list[dict[str, Any]]:
    """One evaluation per (artifact, backend; None: the format's own): accuracy, macro-F1, per-class, confusion."""
    from edgefer.runtime.classifier import DEFAULT_ZOOM
    from edgefer.runtime.commands import run_eval
    from edgefer.runtime.manifest import Manifest

    # The runtime's default views (flip and the tighter view), flip alone (--no-zoom), one view (--no-flip --no-zoom).
    views = ((True, DEFAULT_ZOOM), (True, None), (False, None))
    rows = []
    for model, backend in models:
        manifest = Manifest.load(model, verify=False)
        for flip, zoom in views:
            summary = run_eval(model, data, backend, threads, limit_per_class, flip=flip, zoom=zoom)
            summary["precision"] = manifest.precision
            summary["sha256"] = manifest.sha256  # which artifact these figures belong to
            rows.append(summary)
    return rows


def markdown(rows: Sequence[dict[str, Any]]) -> str:
    lines = ["| model | backend | precision | test-time views | faces | accuracy % | macro-F1 % |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        zoom = r.get("test_time_zoom")
        views = " + ".join(["face"] + ["flip"] * bool(r.get("test_time_flip")) + ([f"zoom {zoom:g}"] if zoom else []))
        lines.append(f"| {Path(r['model']).name} | {r['backend']} | {r['precision']} | {views} | {r['samples']} | "
                     f"{r['accuracy'] * 100:.2f} | {r['macro_f1'] * 100:.2f} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(prog="benchmarks/accuracy.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="class-folder dataset of cropped faces (<data>/<class>/*.jpg)")
    p.add_argument("--model", action="append", help="artifact to evaluate (repeat); default: every shipped one")
    p.add_argument("--backend", help="run every --model with this backend (default: each format's own)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--limit-per-class", type=int, default=None)
    p.add_argument("--json", help="write all evaluations here")
    args = p.parse_args(argv)
    try:
        models = [(m, args.backend) for m in args.model] if args.model else shipped_artifacts()
        if not models:
            raise ValueError("no shipped model for any installed backend; pass --model PATH")
        rows = evaluate(models, args.data, args.threads, args.limit_per_class)
    except Exception as exc:  # runtime errors (model, data) are user-facing here
        if isinstance(exc, (ValueError, FileNotFoundError)) or type(exc).__module__.startswith("edgefer"):
            print(f"accuracy.py: error: {exc}", file=sys.stderr)
            return 2
        raise
    print(markdown(rows))
    if args.json:
        result = {"schema": "edgefer-accuracy/1", "command": "python benchmarks/accuracy.py " + shlex.join(argv),
                  "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "data": args.data,
                  "evaluations": rows}
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
