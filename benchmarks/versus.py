#!/usr/bin/env python3
"""The edgefer-versus-fer table from ``benchmarks/latency.py --peer fer`` results.

    python benchmarks/versus.py --markdown README.md docs/benchmarks.md   # the committed runs
    python benchmarks/versus.py pi5-vs-fer.json                           # your own

One row per run that took turns with the peer: frame rates, peak RSS and the real faces (by
the YuNet referee) the peer found that edgefer did not. ``--markdown`` rewrites the table
between the versus-table markers of each file, so the figures there always come from the
committed JSON.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Sequence

if __package__ in (None, ""):
    # Run as a script: make `benchmarks` importable (appended, see latency.py).
    sys.path.append(str(Path(__file__).resolve().parents[1]))

from benchmarks.compare import load_results  # noqa: E402
from edgefer.runtime.tracking import TrackConfig  # noqa: E402
from edgefer.train.results_table import splice_into_readme  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
#: The committed runs against fer, in table order (each JSON holds the command that wrote it).
COMMITTED = tuple(RESULTS / name for name in (
    "x86-2core-haar-vs-fer.json", "x86-2core-haar-vs-fer-woman2.json", "x86-2core-litert-yunet-vs-fer.json",
    "x86-2core-haar-stills-vs-fer.json"))
MD_BEGIN = "<!-- versus-table:begin (python benchmarks/versus.py ... --markdown FILE) -->"
MD_END = "<!-- versus-table:end -->"
HEADER = ("| edgefer | clip | fps (fer) | × fer fps | peak RSS MiB (fer) | × fer RSS "
          "| real faces fer finds that edgefer loses |\n|---|---|---:|---:|---:|---:|---:|")


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def label(run: dict[str, Any]) -> str:
    """What ran: backend, precision, detector and how often it detects."""
    pipe = run["pipeline"]
    kind = pipe["detector"]["kind"]
    detector = {"HaarConfig": "Haar", "YuNetConfig": "YuNet"}.get(kind, kind)
    every = pipe["tracking"]["detect_every"] if pipe.get("tracking") else 1
    if pipe.get("stills"):
        how = "every frame a still image"
    else:
        how = "every frame" if every == 1 else f"every {_ordinal(every)} frame"
    default = (run["backend"] == "litert" and detector == "Haar" and not pipe.get("stills")
               and every == TrackConfig().detect_every)
    return f"{run['backend']} {run['precision']}, {detector} {how}{' (default)' if default else ''}"


def row(run: dict[str, Any]) -> str:
    v = run["versus_peer"]
    faces = v["faces"]
    real = faces.get("peer_real_faces")
    lost = (f"{faces['lost_confirmed']} of {real}" if real is not None
            else f"{faces['lost']} of {faces['peer_faces']} (no referee)")
    clip = Path(run["pipeline"]["source"]).name
    return (f"| {label(run)} | {clip} | {v['fps']:.1f} ({v['peer_fps']:.1f}) | {v['fps_ratio']:.2f} "
            f"| {v['peak_rss_mib']:.0f} ({v['peer_peak_rss_mib']:.0f}) | {v['rss_ratio']:.3f} | {lost} |")


def table(results: Sequence[dict[str, Any]]) -> str:
    """The markdown table of every run in ``results`` that was compared with the peer."""
    rows = [row(r) for res in results for r in res["runs"] if r.get("versus_peer", {}).get("fps")]
    if not rows:
        raise ValueError("none of these results compares a pipeline with a peer (latency.py --peer fer)")
    return "\n".join([HEADER, *rows])


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="benchmarks/versus.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("results", nargs="*", help="latency.py --peer result files (default: the committed ones)")
    p.add_argument("--markdown", nargs="*", default=[], metavar="FILE",
                   help="also rewrite the table between the versus-table markers of these files")
    args = p.parse_args(argv)
    try:
        text = table(load_results(args.results or COMMITTED))
        for path in args.markdown:
            splice_into_readme(Path(path), text, MD_BEGIN, MD_END, "versus-table")
    except (OSError, ValueError, KeyError) as exc:
        print(f"versus.py: error: {exc}", file=sys.stderr)
        return 2
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
