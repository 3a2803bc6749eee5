#!/usr/bin/env python3
"""Latency of edgefer per backend and per stage, on the device it runs on.

    python benchmarks/latency.py                      # every installed backend, shipped model
    python benchmarks/latency.py --backend litert --model m.tflite --source clip.mp4 \\
        --threads 4 --warmup 10 --iterations 200 --json pi5-litert.json
    python benchmarks/latency.py --peer fer --peer-python /path/to/fer-venv/bin/python --json vs-fer.json
    python benchmarks/latency.py --compare pi4.json pi5.json orin.json --plot latency.png

Each run measures the model alone on a fixed input and the real pipeline
(read -> detect -> preprocess -> infer -> postprocess) on frames of ``--source``,
reporting mean/p50/p90/p99/min/max and frames per second per stage, and records the
device, library versions, CPU temperature, Raspberry Pi throttling and peak RSS.
A call without ``--backend``/``--model`` runs each installed backend in its own
process so that each peak RSS is that backend's alone.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

if __package__ in (None, ""):
    # Run as a script: make `benchmarks` importable. Appended, not put first: the checkout's `edgefer/`
    # folder is only the package's top level (pyproject maps the rest), and ahead of site-packages it
    # would hide a plain (non-editable) install of edgefer, as on a Raspberry Pi.
    sys.path.append(str(Path(__file__).resolve().parents[1]))

from benchmarks.compare import RESULT_SCHEMA, load_results, markdown_table, plot_distribution  # noqa: E402
from benchmarks.device import conditions, device_info  # noqa: E402
from benchmarks.memory import peak_rss_mib  # noqa: E402
from benchmarks.frames import parse_size  # noqa: E402

if TYPE_CHECKING:
    from benchmarks.harness import PipelineSetup
    from edgefer.runtime.classifier import EmotionClassifier

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("EDGEFER_SHARED", REPO.parent / "shared"))
DEFAULT_SOURCE = SHARED / "media" / "fer_test.mp4"
COMPARE_BEGIN = "<!-- compare-table:begin (python benchmarks/latency.py --compare ... --markdown FILE) -->"
COMPARE_END = "<!-- compare-table:end -->"


def build_parser() -> argparse.ArgumentParser:
    from edgefer.runtime.backends import BACKEND_NAMES
    from edgefer.runtime.classifier import DEFAULT_ZOOM
    from edgefer.runtime.cli import _haar_args

    p = argparse.ArgumentParser(prog="benchmarks/latency.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backend", help=f"one of {', '.join(BACKEND_NAMES)} (default: every installed one)")
    p.add_argument("--model", help="artifact (.tflite, .onnx, ...); default: the shipped model of each backend")
    p.add_argument("--source", default=None,
                   help=f"frames for the pipeline part: video, image, folder, camera (default: {DEFAULT_SOURCE} when "
                        "it exists, else the pipeline part is skipped)")
    p.add_argument("--frame-size", default="640x480", help="resize every frame to WxH first ('native': keep)")
    p.add_argument("--threads", type=int, default=None, help="inference threads (default: the backend's)")
    p.add_argument("--no-flip", dest="flip", action="store_false",
                   help="classify each face without its mirror image (default: with it, as the runtime does)")
    p.add_argument("--no-zoom", dest="zoom", action="store_const", const=None, default=DEFAULT_ZOOM,
                   help=f"no tighter view (default: each face also cut to its central {DEFAULT_ZOOM:g}, as the runtime "
                        "does)")
    p.add_argument("--warmup", type=int, default=10, help="untimed iterations/frames first")
    p.add_argument("--iterations", type=int, default=100, help="timed iterations (model alone) and frames (pipeline)")
    p.add_argument("--batch", type=int, default=16,
                   help="faces per call of the batched model-alone part (per-face throughput; 1 skips it); "
                        "one face per call is always measured")
    p.add_argument("--passes", type=int, default=5,
                   help="run the model-alone iterations in this many passes; each pass's p50 is kept and the "
                        "best one reported beside the p50 over all of them")
    p.add_argument("--pass-gap", type=float, default=2.0, metavar="SECONDS",
                   help="idle seconds between passes, so that they sample different stretches of a shared machine")
    p.add_argument("--stills", action="store_true",
                   help="detect every frame as a still image (as edgefer does photos: no tracking, the still-image "
                        "resolution rule and second look); the peer does what it always does")
    p.add_argument("--json", help="write the full result (stats and raw samples) here")
    p.add_argument("--peer", choices=("fer",), help="also run this package on the same frames, in its own process")
    p.add_argument("--peer-python", default=sys.executable,
                   help="Python that has the peer installed (a separate venv; never an edgefer dependency)")
    p.add_argument("--rounds", type=int, default=10,
                   help="with --peer: alternate edgefer and the peer in this many blocks (fair under a changing load)")
    p.add_argument("--referee-yunet", metavar="ONNX",
                   help="with --peer: YuNet model that tells which of the peer's faces are real faces")
    p.add_argument("--compare", nargs="+", metavar="JSON", help="merge result files into one markdown table and plot")
    p.add_argument("--plot", default="latency.png", help="with --compare: where to write the PNG")
    p.add_argument("--markdown", nargs="*", default=[], metavar="FILE",
                   help="with --compare: also rewrite the table between the compare-table markers of these files")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    _haar_args(p)
    return p


def _source(args: argparse.Namespace) -> str | None:
    if args.source:
        return args.source
    return str(DEFAULT_SOURCE) if DEFAULT_SOURCE.exists() else None


def run_backend(args: argparse.Namespace) -> dict[str, Any]:
    """Benchmark one backend in this process."""
    from benchmarks.harness import PipelineSetup, bench_model
    from benchmarks.macs import count_macs, local_int8_peak
    from edgefer.runtime.classifier import EmotionClassifier
    from edgefer.runtime.cli import detector_config

    before = conditions()
    steps = {"imports": peak_rss_mib()}
    t0 = time.perf_counter()
    classifier = EmotionClassifier(args.model, args.backend, args.threads, flip=args.flip, zoom=args.zoom)
    load_ms = (time.perf_counter() - t0) * 1e3
    steps["model_loaded"] = peak_rss_mib()
    manifest = classifier.manifest
    run: dict[str, Any] = {
        "backend": classifier.backend.name, "model": str(classifier.path), "sha256": manifest.sha256,
        "precision": manifest.precision, "head": manifest.head,
        "input": [manifest.input.height, manifest.input.width, manifest.input.channels],
        "threads": args.threads, "test_time_flip": args.flip, "test_time_zoom": args.zoom,
        "model_load_ms": round(load_ms, 1),
    }
    run["model_alone"] = bench_model(classifier, args.warmup, args.iterations, passes=args.passes,
                                     gap_s=args.pass_gap)
    if args.batch > 1:
        run["model_batched"] = bench_model(classifier, args.warmup, args.iterations, args.batch,
                                           passes=args.passes, gap_s=args.pass_gap)
    steps["model_alone"] = peak_rss_mib()
    source = _source(args)
    if source is None:
        run["pipeline"] = None
        run["pipeline_skipped"] = f"no --source given and {DEFAULT_SOURCE} does not exist"
    else:
        detector, tracking = detector_config(args)
        setup = PipelineSetup(source, parse_size(args.frame_size), detector, tracking, still=args.stills)
        run["pipeline"], run["peer"] = _pipeline_and_peer(classifier, setup, args)
    classifier.close()
    run["peak_rss_mib"] = steps["end"] = peak_rss_mib()
    run["peak_rss_steps_mib"] = steps
    try:
        macs: int | None = count_macs(classifier.path)
    except (RuntimeError, ValueError, KeyError, IndexError) as exc:
        macs, run["macs_error"] = None, str(exc)
    info = device_info()
    cores = args.threads or info["usable_cores"] or info["cores"] or 1
    run["macs"] = macs  # information: the work one face is
    run["int8_peak"] = local_int8_peak(info, cores)  # what benchmarks/expected.py scales the classifier by
    run["conditions_before"], run["conditions_after"] = before, conditions()
    if run.get("peer"):
        from benchmarks.peer import versus

        truth = _referee_boxes(args.referee_yunet, setup, args.warmup, args.iterations) if args.referee_yunet else None
        run["versus_peer"] = versus(run, run["peer"], truth)
    else:
        run.pop("peer", None)
    return run


def _pipeline_and_peer(classifier: EmotionClassifier, setup: PipelineSetup,
                       args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Our pipeline, and the peer when asked, taking turns block by block on the same frames."""
    from benchmarks.harness import PipelineBench
    from benchmarks.peer import PeerSession
    from benchmarks.stats import split_counts

    bench = PipelineBench(classifier, setup)
    peer = PeerSession(args.peer, args.peer_python, setup.source, args.frame_size) if args.peer else None
    try:
        bench.run(args.warmup, record=False)
        if peer:
            print(f"running {args.peer} in turns with edgefer ...", file=sys.stderr)
            peer.run(args.warmup, record=False)
        for count in split_counts(args.iterations, args.rounds if peer else 1):
            bench.run(count)
            if peer:
                peer.run(count)
        return bench.result(), peer.finish() if peer else None
    finally:
        if peer:
            peer.close()


def _referee_boxes(model: str, setup: PipelineSetup, warmup: int, iterations: int) -> list[list[list[int]]]:
    """YuNet on every timed frame at full size: which peer faces are real faces."""
    from benchmarks.harness import looped_frames
    from edgefer.runtime.detect import YuNetConfig, YuNetDetector

    referee = YuNetDetector(YuNetConfig(model, detect_width=None, min_face=10, min_face_ratio=0.0))
    frames = looped_frames(setup.source, setup.frame_size)
    out = []
    for i in range(warmup + iterations):
        frame = next(frames)
        if i >= warmup:
            out.append([b.as_list() for b in referee.detect(frame.image)] if frame.image is not None else [])
    frames.close()
    return out


def installed_backends() -> list[str]:
    """Backends whose library imports here and that have a shipped model."""
    from edgefer.runtime.classifier import installed_defaults

    return list(installed_defaults())


def run_children(argv: Sequence[str], backends: Sequence[str]) -> list[dict[str, Any]]:
    """One process per backend, so each run's peak RSS is its own."""
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in backends:
            out = Path(tmp) / f"{name}.json"
            cmd = [sys.executable, str(Path(__file__).resolve()), *argv, "--backend", name, "--json", str(out),
                   "--child"]
            print(f"benchmarking {name} ...", file=sys.stderr)
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                raise RuntimeError(f"the {name} run failed (exit {proc.returncode}): {proc.stderr[-1500:]}")
            runs.extend(json.loads(out.read_text())["runs"])
    return runs


def _strip(argv: Sequence[str], options: dict[str, int]) -> list[str]:
    """``argv`` without the given options (name -> number of values they take)."""
    out, skip = [], 0
    for arg in argv:
        if skip:
            skip -= 1
            continue
        name = arg.split("=", 1)[0]
        if name in options:
            skip = options[name] if "=" not in arg else 0
            continue
        out.append(arg)
    return out


def busy_note(cond: dict[str, Any], cores: int | None) -> str | None:
    """A warning for results taken while other work loaded the CPU.

    The CPU busy share sampled just before the run decides when it was measured; the
    1-minute load average (which still counts work that stopped seconds ago) otherwise.
    """
    busy = cond.get("cpu_busy_fraction")
    if busy is not None:
        if busy > 0.25:
            return (f"the CPU was busy ({busy:.0%} of all cores in use by other work when the run started): "
                    "these timings are pessimistic")
        return None
    load = (cond.get("loadavg_1_5_15") or [0.0])[0]
    if cores and load > 0.25 * cores:
        return (f"the CPU was busy (1-minute load average {load:.2f} on {cores} cores when the run started): "
                "these timings are pessimistic")
    return None


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.compare:
            results = load_results(args.compare)
            table = markdown_table(results)
            print(table)
            if args.markdown:
                from edgefer.train.results_table import splice_into_readme  # stdlib only; not needed on a device
            for path in args.markdown:
                splice_into_readme(Path(path), table, COMPARE_BEGIN, COMPARE_END, "compare-table")
            print(f"plot: {plot_distribution(results, args.plot)}", file=sys.stderr)
            return 0
        if args.warmup < 0 or args.iterations < 1 or args.batch < 1 or args.rounds < 1 or args.passes < 1:
            parser.error("--warmup must be >= 0; --iterations, --batch, --rounds and --passes >= 1")
        if not args.pass_gap >= 0:
            parser.error(f"--pass-gap must be a number of seconds >= 0, got {args.pass_gap}")
        parse_size(args.frame_size)
        source = _source(args)
        if args.peer and source is None:
            raise RuntimeError(f"--peer needs frames: pass --source ({DEFAULT_SOURCE} does not exist)")
        if source is not None:
            from edgefer.runtime.sources import open_source

            with open_source(source):  # a missing or empty source fails before any measuring
                pass
        started = conditions(busy_window_s=1.0)
        if args.backend is None and args.model is None and not args.child:
            backends = installed_backends()
            if not backends:
                raise RuntimeError("no backend with a shipped model is installed here: pip install "
                                   "'edgefer[litert]' or 'edgefer[onnx]', or pass --backend and --model")
            runs = run_children(_strip(argv, {"--json": 1}), backends)
        else:
            runs = [run_backend(args)]
        result: dict[str, Any] = {
            "schema": RESULT_SCHEMA,
            "command": "python benchmarks/latency.py " + shlex.join(argv),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "device": device_info(),
            "conditions_before": started,
            "runs": runs,
        }
        result["conditions_after"] = conditions()
        note = busy_note(started, result["device"]["usable_cores"])
        if note:
            result["note"] = note
    except (RuntimeError, ValueError, OSError, subprocess.SubprocessError) as exc:
        print(f"latency.py: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # model, backend, detector and source errors of the runtime
        if type(exc).__module__.startswith("edgefer"):
            print(f"latency.py: error: {exc}", file=sys.stderr)
            return 2
        raise
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    if not args.child:
        result["_file"] = args.json or "(not saved)"
        print(markdown_table([result]))
        for run in result["runs"]:
            v = run.get("versus_peer")
            if v:
                confirmed = v["faces"].get("lost_confirmed")
                print(f"{v['backend']} vs {args.peer}: {v['fps_ratio']}x fps, {v['rss_ratio']} x peak RSS, "
                      f"{v['faces']['lost']} of {v['faces']['peer_faces']} peer faces lost"
                      + (f" ({confirmed} of them real faces by YuNet)" if confirmed is not None else ""),
                      file=sys.stderr)
        if "note" in result:
            print(f"note: {result['note']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
