#!/usr/bin/env python3
"""Estimated Raspberry Pi / Jetson figures, scaled from a latency result measured on another machine.

    python benchmarks/expected.py benchmarks/results/x86-litert-vs-fer.json \\
        --json benchmarks/results/expected.json

Each device's figures are *estimates* until its own ``latency.py`` result replaces
them: the classifier scales with the int8 peak (MACs per cycle x clock x cores,
:mod:`benchmarks.macs`), every other stage (decode, Haar, resize, tracking) with
single-core speed (clock x an assumed per-clock speed relative to the measuring
CPU; the measuring CPU's clock is the one its int8 peak measurement found, since a
VM reports only a nominal one). Pass the ``latency.py`` JSON of a real device with ``--measured`` and its
row is marked measured instead.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

if __package__ in (None, ""):
    # Run as a script: make `benchmarks` importable. Appended, not put first: the checkout's `edgefer/`
    # folder is only the package's top level (pyproject maps the rest), and ahead of site-packages it
    # would hide a plain (non-editable) install of edgefer, as on a Raspberry Pi.
    sys.path.append(str(Path(__file__).resolve().parents[1]))

from benchmarks.compare import load_results  # noqa: E402
from benchmarks.macs import INT8_RATES  # noqa: E402
from edgefer.train.results_table import splice_into_readme  # noqa: E402


@dataclass(frozen=True)
class Target:
    """A device's public CPU figures plus the one assumption the estimate rests on."""

    name: str
    cpu: str
    cores: int
    mhz: float
    int8_flag: str  # the best int8 instruction set (see benchmarks.macs.INT8_RATES)
    per_clock_vs_x86: float  # ASSUMED single-core work per clock relative to a recent Xeon core


TARGETS = (
    Target("Raspberry Pi 4 B", "4x Cortex-A72", 4, 1800.0, "asimd", 0.45),
    Target("Raspberry Pi 5", "4x Cortex-A76", 4, 2400.0, "asimddp", 0.70),
    Target("Jetson Orin Nano (CPU path)", "6x Cortex-A78AE", 6, 1510.0, "asimddp", 0.75),
    Target("Jetson Nano (CPU path)", "4x Cortex-A57", 4, 1430.0, "asimd", 0.35),
)


def _rate(flag: str) -> int:
    return next(rate for f, _, rate, _ in INT8_RATES if f == flag)


def estimate(run: dict[str, Any], device: dict[str, Any], target: Target) -> dict[str, Any]:
    """Scale one measured run's stages to ``target``."""
    peak_here = run["int8_peak"]["macs_per_second"]
    threads = run["int8_peak"]["cores"]
    peak_there = _rate(target.int8_flag) * target.mhz * 1e6 * min(threads, target.cores)
    classifier_factor = peak_here / peak_there
    # The clock the measuring core ran at: measured with the int8 peak where it was, else the reported one.
    other_factor = (run["int8_peak"].get("mhz") or device["cpu_max_mhz"]) / (target.mhz * target.per_clock_vs_x86)
    stages = run["pipeline"]["stages"]
    scaled = {s: round(stages[s]["mean_ms"] * (classifier_factor if s == "infer" else other_factor), 2)
              for s in ("read", "detect", "preprocess", "infer", "postprocess")}
    total = round(sum(scaled.values()), 2)
    return {
        "device": target.name, "kind": "estimated", "assumptions": asdict(target),
        "classifier_factor": round(classifier_factor, 3), "other_stages_factor": round(other_factor, 3),
        "model_alone_ms": round(run["model_alone"]["stats"]["p50_ms"] * classifier_factor, 3),
        "stages_mean_ms": scaled, "frame_ms": total, "fps": round(1000.0 / total, 1) if total else None,
    }


def measured_row(result: dict[str, Any], run: dict[str, Any]) -> dict[str, Any]:
    stages = run["pipeline"]["stages"]
    dev = result["device"]
    return {
        "device": dev.get("board") or dev.get("cpu_model"), "kind": "measured", "file": result["_file"],
        "model_alone_ms": run["model_alone"]["stats"]["p50_ms"],
        "stages_mean_ms": {s: stages[s]["mean_ms"] for s in ("read", "detect", "preprocess", "infer", "postprocess")},
        "frame_ms": stages["total"]["mean_ms"], "fps": stages["total"]["per_second"],
        "peak_rss_mib": run["peak_rss_mib"], "load": result["conditions_before"]["loadavg_1_5_15"],
    }


def markdown(rows: Sequence[dict[str, Any]]) -> str:
    lines = ["| device | kind | model alone ms | detect ms | infer ms | frame ms | fps |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        s = r["stages_mean_ms"]
        lines.append(f"| {r['device']} | {r['kind']} | {r['model_alone_ms']:.3f} | {s['detect']:.2f} | "
                     f"{s['infer']:.2f} | {r['frame_ms']:.2f} | {r['fps']:.1f} |")
    return "\n".join(lines)


MD_BEGIN = "<!-- expected-table:begin (python benchmarks/expected.py ... --markdown FILE) -->"
MD_END = "<!-- expected-table:end -->"


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(prog="benchmarks/expected.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("base", help="latency.py result (litert run with a pipeline part) to scale from")
    p.add_argument("--measured", nargs="*", default=[], help="latency.py results measured on the devices themselves")
    p.add_argument("--json", help="write the table's data here")
    p.add_argument("--markdown", nargs="*", default=[], metavar="FILE",
                   help="also rewrite the table between the expected-table markers of these files")
    args = p.parse_args(argv)
    try:
        (base,) = load_results([args.base])
        measured = load_results(args.measured)
        run = next((r for r in base["runs"] if r["backend"] == "litert" and r.get("pipeline")), None)
        if run is None or not run.get("int8_peak", {}).get("macs_per_second") or not base["device"]["cpu_max_mhz"]:
            raise ValueError(f"{args.base} has no litert run with a pipeline part, an int8 peak and a CPU clock")
    except ValueError as exc:
        print(f"expected.py: error: {exc}", file=sys.stderr)
        return 2
    rows = [measured_row(base, run)]
    rows += [measured_row(res, r) for res in measured for r in res["runs"] if r.get("pipeline")]
    done = {r["device"] for r in rows}
    rows += [estimate(run, base["device"], t) for t in TARGETS if t.name not in done]
    table = markdown(rows)
    print(table)
    if args.json:
        Path(args.json).write_text(json.dumps({
            "schema": "edgefer-expected/1", "command": "python benchmarks/expected.py " + shlex.join(argv),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "base": args.base,
            "base_note": base.get("note"), "rows": rows}, indent=1) + "\n")
    try:
        for path in args.markdown:
            splice_into_readme(Path(path), table, MD_BEGIN, MD_END, "expected-table")
    except (OSError, ValueError) as exc:
        print(f"expected.py: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
