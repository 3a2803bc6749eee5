"""Size and accuracy of converted artifacts as a markdown table, from committed conversion reports.

``python -m edgefer.convert.table [REPORT.json | DIR ...] [-o table.md]`` reads the JSON
reports ``edgefer convert --report`` writes (default: every ``*.json`` in
``results/conversion/``) and prints or writes one table per report. Nothing is measured
here: every figure comes from a report.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Sequence

DEFAULT_DIR = Path("results/conversion")


def _reports(paths: Sequence[str | Path]) -> list[tuple[Path, dict[str, Any]]]:
    files: list[Path] = []
    for p in map(Path, paths or [DEFAULT_DIR]):
        if p.is_dir():
            files.extend(sorted(p.glob("*.json")))
        elif p.is_file():
            files.append(p)
        else:
            raise FileNotFoundError(f"{p} is neither a conversion report nor a folder of them")
    out = []
    for f in files:
        data = json.loads(f.read_text())
        if isinstance(data, dict) and "artifacts" in data and "keras_accuracy" in data:
            out.append((f, data))
    if not out:
        raise FileNotFoundError(
            f"no conversion reports in {', '.join(map(str, paths or [DEFAULT_DIR]))}; "
            "write one with `edgefer convert ... --report results/conversion/NAME.json`"
        )
    return out


def _margins(parity: dict[str, Any]) -> str:
    """The reference's median top-2 score margin on the faces the artifact disagrees on / on all faces."""
    def fmt(v: float | None) -> str:
        return "–" if v is None else f"{v:.3g}"

    if parity.get("margin_median") is None:  # a report written before margins were recorded
        return "–"
    return f"{fmt(parity.get('disagreement_margin_median'))} / {fmt(parity['margin_median'])}"


def _rms(parity: dict[str, Any]) -> str:
    value = parity.get("score_rms_error")  # absent from reports written before it was recorded
    return "–" if value is None else f"{value:.4f}"


def report_table(report: dict[str, Any], source: str = "") -> str:
    """One markdown table: each artifact's size, accuracy, drop and agreement vs the Keras model.

    *margin differ / all* is the Keras model's median top-1 minus top-2 score on the faces the
    artifact disagrees on and on all faces: a small first number means the disagreements are near-ties.
    *weights* says how an INT8 artifact's weights were rounded: to nearest, or learned (AdaRound).
    *RMS Δscore* is the root-mean-square difference of its scores from the Keras model's.
    """
    fp32 = {a["format"]: a["size_bytes"] for a in report["artifacts"] if a["precision"] == "fp32"}
    gate = report.get("gate", {})
    adarounded = set(report.get("adaround") or {})
    lines = [
        f"**{report.get('name', Path(report['model']).stem)}** — `{report['model']}`, "
        f"{report['samples']} validation faces (`{report['validation']}`), Keras accuracy "
        f"{report['keras_accuracy'] * 100:.2f} %; gate: drop ≤ {gate.get('max_drop_points', '?')} points, "
        f"agreement ≥ {gate.get('min_agreement', 0) * 100:g} %" + (f" (from `{source}`)" if source else "")
        + ("; **incomplete**: the conversion stopped before its last target" if report.get("complete") is False
           else ""),
        "",
        "| artifact | format | precision | size KiB | vs fp32 | accuracy % | Δ vs Keras (points) | agreement % "
        "| margin differ / all | RMS Δscore | weights | float ops | gate |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|---|",
    ]
    for a in report["artifacts"]:
        p = a["parity"]
        base = fp32.get(a["format"])
        ratio = f"{a['size_bytes'] / base:.2f}×" if base else "–"
        float_ops = ", ".join(sorted(set(a.get("float_ops") or []))) or "–"
        rounding = ("–" if a["precision"] != "int8" or a["format"] not in ("tflite", "onnx")
                    else "AdaRound" if a["format"] in adarounded else "nearest")
        lines.append(
            f"| {Path(a['path']).name} | {a['format']} | {a['precision']} | {a['size_bytes'] / 1024:.1f} | {ratio} "
            f"| {p['artifact_accuracy'] * 100:.2f} | {-p['drop_points'] + 0.0:+.2f} | {p['agreement'] * 100:.2f} "
            f"| {_margins(p)} | {_rms(p)} | {rounding} | {float_ops} | {'pass' if p['passed'] else 'FAIL'} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edgefer.convert.table", description=__doc__.splitlines()[0])
    parser.add_argument("reports", nargs="*", help=f"conversion report JSON files or folders (default {DEFAULT_DIR})")
    parser.add_argument("-o", "--output", help="write the markdown here instead of stdout")
    args = parser.parse_args(argv)
    try:
        reports = _reports(args.reports)
    except (FileNotFoundError, json.JSONDecodeError) as exc:
        print(f"edgefer.convert.table: {exc}", file=sys.stderr)
        return 2
    text = "\n".join(report_table(data, str(path)) for path, data in reports)
    header = "<!-- generated by `python -m edgefer.convert.table`; do not edit by hand -->\n\n"
    if args.output:
        Path(args.output).write_text(header + text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
