#!/usr/bin/env python3
"""Issue 19's ablation grid: one `edgefer train` run per lever, each row's INT8 model measured like the shipped one.

    python -m benchmarks.ablation --list
    KERAS_BACKEND=jax python -m benchmarks.ablation --phase train --parallel 4 --out runs/ablation  # GPU, no TF
    python -m benchmarks.ablation --phase evaluate --out runs/ablation \\
        --peer-python .venv-fer/bin/python --json benchmarks/results/ablation.json       # where TensorFlow is

Every row is the base recipe (MobileNet v1 alpha 1.0 + linear SVM, 96 px, 60 epochs, batch 64 on
FER2013 train, epochs chosen on PublicTest) with one thing changed. ``train`` runs each row with
``--resume`` (a finished row is skipped, a stopped one continues); ``evaluate`` converts each to INT8
TFLite through the parity gate (calibrated), scores all of them with one ``edgefer eval-cross``
(FER2013 PublicTest, KDEF and CK+ people none of them saw, ``fer`` beside them) and adds MACs and size.
The table is for choosing the default by measurement; PublicTest is the validation split, so the
choice is made on it and the cross-dataset columns, never on a test set.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Sequence

if __package__ in (None, ""):  # run as a script from a checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edgefer.train.experiments import STRONG_AUGMENTATION as STRONG_AUG  # noqa: E402 (after the path set-up)

BASE = ["--input-size", "96", "--epochs", "60", "--batch-size", "64"]
#: Row name -> what it changes (``edgefer train`` arguments after the base ones: the last value wins).
ROWS: dict[str, list[str]] = {
    "base": [],
    "48px": ["--input-size", "48"],
    "64px": ["--input-size", "64"],
    "alpha-0.75": ["--alpha", "0.75"],
    "120-epochs": ["--epochs", "120"],
    "strong-augmentation": ["--augment-config", STRONG_AUG],
    "mixup-0.2": ["--mixup", "0.2"],
    "no-label-smoothing": ["--label-smoothing", "0"],
    "strong-aug+mixup+120-epochs": ["--augment-config", STRONG_AUG, "--mixup", "0.2", "--epochs", "120"],
    # Half of KDEF's and of CK+'s people train beside FER2013; the other halves are what eval-cross scores.
    "kdef+ckplus-faces": ["--add-faces", "kdef={kdef}", "--add-faces", "ckplus48={ckplus}"],
    # Distillation: VGG16-BN (10x MobileNet's parameters) trained on the same recipe is the teacher; the row
    # after it is the base MobileNet trained on targets blended with the teacher's softened probabilities.
    # Rows train in this order, so the teacher exists when its student starts.
    "teacher-vgg16": ["--model", "vgg16", "--head", "softmax", "--lr", "1e-3"],
    "distilled-from-vgg16": ["--teacher", "{out}/teacher-vgg16/cnn.keras"],
}
# Test-time flip is not a training row: evaluate scores every row with and without it (eval-cross --flip).


def _edgefer(*args: str) -> list[str]:
    return [sys.executable, "-m", "edgefer", *args]


def train_command(name: str, data: str, out: Path, extra: Sequence[str] = (),
                  kdef: str = "../shared/datasets/kdef/KDEF", ckplus: str = "../shared/datasets/ckplus48") -> list[str]:
    change = [arg.format(kdef=kdef, ckplus=ckplus, out=out) for arg in ROWS[name]]
    return _edgefer("train", "--data", data, "--out", str(out / name), *BASE, *change, *extra, "--resume")


def convert_command(name: str, data: str, out: Path) -> list[str]:
    return _edgefer("convert", "--model", str(out / name / "model.keras"), "--out", str(out / name / "artifacts"),
                    "--name", name, "--to", "tflite", "--calib-data", data, "--val-data", data)


def _run(cmd: list[str], dry_run: bool) -> None:
    print("+ " + shlex.join(cmd), flush=True)
    if not dry_run:
        subprocess.run(cmd, check=True)


def needs(name: str) -> str | None:
    """The row whose trained network row ``name`` starts from (its teacher), if any."""
    args = ROWS[name]
    return Path(args[args.index("--teacher") + 1]).parent.name if "--teacher" in args else None


def train_rows(rows: Sequence[str], data: str, out: Path, extra: Sequence[str], dry_run: bool,
               kdef: str, ckplus: str, parallel: int = 1, poll_s: float = 5.0) -> list[str]:
    """Train ``rows``, up to ``parallel`` at once (a GPU machine is input-bound: rows side by side keep their
    speed); a row waits for the row it needs. Each run logs to ``<out>/<row>/train.log``. A failed row does
    not stop the others; the names of the failed ones are returned."""
    def trained(name: str) -> bool:
        return (out / name / "meta.json").is_file()

    for name in rows:
        if needs(name) and needs(name) not in rows and not trained(needs(name)):
            raise SystemExit(f"ablation: row {name} needs row {needs(name)} trained first; add it to --rows")
    pending = []
    for name in rows:
        if trained(name):
            print(f"{name}: trained already ({out / name / 'meta.json'})")
        else:
            pending.append(name)
    if dry_run:
        for name in pending:
            _run(train_command(name, data, out, extra, kdef, ckplus), dry_run)
        return []
    running: dict[str, subprocess.Popen] = {}
    failed: list[str] = []
    while pending or running:
        for name in list(pending):
            dep = needs(name)
            if len(running) >= parallel or (dep is not None and not trained(dep)):
                if dep in failed:  # its teacher failed: it cannot start
                    pending.remove(name)
                    failed.append(name)
                continue
            cmd = train_command(name, data, out, extra, kdef, ckplus)
            (out / name).mkdir(parents=True, exist_ok=True)
            print(f"+ {shlex.join(cmd)}  >> {out / name / 'train.log'}", flush=True)
            with (out / name / "train.log").open("ab") as log:
                running[name] = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
            pending.remove(name)
        for name, proc in list(running.items()):
            if proc.poll() is not None:
                del running[name]
                print(f"{name}: {'done' if proc.returncode == 0 else f'FAILED (exit {proc.returncode})'}", flush=True)
                if proc.returncode != 0:
                    failed.append(name)
        if running:
            time.sleep(poll_s)
    return failed


def evaluate_rows(rows: Sequence[str], data: str, out: Path, kdef: str | None, ckplus: str | None,
                  peer_python: str | None, dry_run: bool) -> dict[str, Any]:
    """Convert each trained row, score them all with one eval-cross, and assemble the table."""
    from benchmarks.macs import count_macs

    done = [name for name in rows if (out / name / "meta.json").is_file() or dry_run]
    for name in done:
        if not (out / name / "artifacts" / f"{name}_int8.tflite").is_file():
            _run(convert_command(name, data, out), dry_run)
    cross = out / "cross-dataset.json"
    cmd = _edgefer("eval-cross", *[a for n in done for a in ("--model", str(out / n / "artifacts" / f"{n}_int8.tflite"))],
                   "--fer2013", data, "--flip", "--json", str(cross))
    cmd += (["--kdef", kdef] if kdef else []) + (["--ckplus", ckplus] if ckplus else [])
    cmd += ["--peer-python", peer_python] if peer_python else []
    _run(cmd, dry_run)
    if dry_run:
        return {}
    measured = {(Path(m["model"]).name, bool(m.get("test_time_flip"))): m
                for m in json.loads(cross.read_text())["models"]}
    table = []
    for name in done:
        meta = json.loads((out / name / "meta.json").read_text())
        artifact = out / name / "artifacts" / f"{name}_int8.tflite"
        row, flipped = measured[(artifact.name, False)], measured[(artifact.name, True)]
        table.append({
            "row": name, "changes": ROWS[name], "keras_val": {k: v["accuracy"] for k, v in meta["metrics"].items()
                                                                if isinstance(v, dict)},
            "int8": {s: {"accuracy": r["accuracy"], "macro_f1": r["macro_f1"]} for s, r in row["results"].items()},
            "int8_flip": {s: {"accuracy": r["accuracy"], "macro_f1": r["macro_f1"]}
                          for s, r in flipped["results"].items()},
            "held_out": row.get("held_out"),
            "minus_fer_points": row.get("minus_fer_points"), "macs": count_macs(artifact),
            "int8_bytes": artifact.stat().st_size, "train_seconds": meta["training"]["seconds"],
        })
    peer = json.loads(cross.read_text()).get("peer")
    return {"base": BASE, "rows": table, "fer": peer and {s: r["accuracy"] for s, r in peer["results"].items()}}


def markdown(result: dict[str, Any]) -> str:
    sets = ["fer2013-val", "kdef", "ckplus"]
    lines = ["| row | changes | Keras val % (SVM; the teacher softmax) | " + " | ".join(f"INT8 {s} %" for s in sets)
             + " | MMACs | INT8 MB |", "|---" * (5 + len(sets)) + "|"]
    for r in result["rows"]:
        acc = [f"{r['int8'][s]['accuracy'] * 100:.2f}" if s in r["int8"] else "—" for s in sets]
        svm = r["keras_val"].get("val_svm", r["keras_val"].get("val_softmax"))  # the teacher has no SVM
        lines.append(f"| {r['row']} | {' '.join(r['changes']) or 'base'} | {svm * 100:.2f} | " + " | ".join(acc)
                     + f" | {r['macs'] / 1e6:.1f} | {r['int8_bytes'] / 1e6:.2f} |")
    if result.get("fer"):
        lines.append("| fer | — | — | " + " | ".join(f"{result['fer'][s] * 100:.2f}" if s in result["fer"] else "—"
                                                    for s in sets) + " | — | — |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(prog="python -m benchmarks.ablation", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--list", action="store_true", help="print the rows, then stop")
    p.add_argument("--phase", choices=("train", "evaluate", "all"), default="all")
    p.add_argument("--rows", default=",".join(ROWS), help="comma-separated rows (default: all)")
    p.add_argument("--out", default="runs/ablation")
    p.add_argument("--data", default="../shared/datasets/fer2013")
    p.add_argument("--kdef", default="../shared/datasets/kdef/KDEF")
    p.add_argument("--ckplus", default="../shared/datasets/ckplus48")
    p.add_argument("--peer-python", default=None, help="Python of the venv with `fer` (make .venv-fer/.installed)")
    p.add_argument("--parallel", type=int, default=1,
                   help="rows trained at once (a row waits for its teacher); 4 suits a 16-core GPU machine")
    p.add_argument("--train-args", default="", help="extra `edgefer train` arguments for every row, e.g. '--workers 16'")
    p.add_argument("--json", help="write the table here (e.g. benchmarks/results/ablation.json)")
    p.add_argument("--dry-run", action="store_true", help="print the commands only")
    args = p.parse_args(argv)
    if args.list:
        for name, change in ROWS.items():
            print(f"{name:30s} {' '.join(BASE)} {shlex.join(change)}")
        return 0
    rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    unknown = [r for r in rows if r not in ROWS]
    if unknown:
        print(f"ablation: error: unknown rows {', '.join(unknown)}; known: {', '.join(ROWS)}", file=sys.stderr)
        return 2
    out = Path(args.out)
    if args.phase in ("train", "all"):
        print(f"KERAS_BACKEND={os.environ.get('KERAS_BACKEND', 'tensorflow')}", flush=True)
        failed = train_rows(rows, args.data, out, shlex.split(args.train_args), args.dry_run, args.kdef, args.ckplus,
                            args.parallel)
        if failed:
            print(f"ablation: rows failed: {', '.join(failed)} (logs: <out>/<row>/train.log)", file=sys.stderr)
            return 1
    if args.phase in ("evaluate", "all"):
        result = evaluate_rows(rows, args.data, out, args.kdef, args.ckplus, args.peer_python, args.dry_run)
        if result:
            print(markdown(result))
        if result and args.json:
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(json.dumps({
                "schema": "edgefer-ablation/1", "command": "python -m benchmarks.ablation " + shlex.join(argv),
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **result}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
