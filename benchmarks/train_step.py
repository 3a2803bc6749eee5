#!/usr/bin/env python3
"""Seconds per training step on each Keras backend and epoch loop, to pick a backend for a machine.

    python benchmarks/train_step.py --json benchmarks/results/x86-2core-train-step.json

Each setting runs in its own process (Keras reads ``KERAS_BACKEND`` once, at import) and trains the
network ``edgefer train`` builds, compiled as it compiles it, through ``edgefer.train.loop.fit_epochs``
with either Keras' ``fit`` or the plain ``train_on_batch`` loop (``own``), on random 48x48 faces with
the default augmentation and the usual thread pool: two epochs of ``--steps`` steps, the median time
between steps of the second one (the first traces and compiles). Keras chooses XLA itself (on
TensorFlow without a GPU: none; on JAX: always). A backend that is not installed is recorded as such.
TensorFlow runs with and without its oneDNN kernels (``TF_ENABLE_ONEDNN_OPTS``; ``edgefer`` turns
them on, see ``edgefer.cli.prefer_onednn``), so a machine shows what they are worth there.
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

from edgefer.train.precision import PRECISIONS  # noqa: E402  (no TensorFlow: the parent stays light)

BACKEND_MODULES = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}
LOOPS = ("fit", "own")
SETTINGS = tuple(f"{b}:{loop}" for b in BACKEND_MODULES for loop in LOOPS)
FER2013_TRAIN_FACES = 28709


def measure_here(model_name: str, size: int, batch: int, steps: int, loop: str,
                 precision: str = "float32") -> dict[str, Any]:
    """Train two epochs of ``steps`` steps in this process, on the backend Keras was imported with."""
    import numpy as np

    import keras

    from edgefer.runtime.preprocess import InputSpec
    from edgefer.train.augment import AugmentConfig
    from edgefer.train.config import TrainConfig
    from edgefer.train.data import make_sequence
    from edgefer.train.fit import compile_for_training
    from edgefer.train.loop import fit_epochs
    from edgefer.train.model import build_model
    from edgefer.train.precision import use_precision

    rng = np.random.default_rng(0)
    spec = InputSpec(height=size, width=size)
    faces, labels = rng.integers(0, 256, (batch * steps, 48, 48), dtype=np.uint8), rng.integers(0, 7, batch * steps)
    model = build_model(model_name, spec, 7)
    compile_for_training(model, TrainConfig(data="", out=""), steps=steps, epochs=2)
    use_precision(model, precision)  # as edgefer train does: after compiling, before the first step
    train = make_sequence(faces, labels, spec, 7, batch, AugmentConfig())
    val = make_sequence(faces[:batch], labels[:batch], spec, 7, batch, None, shuffle=False)

    class Clock(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.ends: list[list[float]] = []

        def on_epoch_begin(self, epoch, logs=None):
            self.ends.append([])

        def on_train_batch_end(self, step, logs=None):
            self.ends[-1].append(time.perf_counter())

    clock = Clock()
    fit_epochs(model, train, val, epochs=2, callbacks=[clock], verbose=0, own_loop=loop == "own")
    per_step = float(np.median(np.diff(clock.ends[1])))
    return {"jit_compile": bool(model.jit_compile), "seconds_per_step": round(per_step, 4),
            "steps_timed": len(clock.ends[1]) - 1, "params": int(model.count_params()),
            "fer2013_epoch_minutes": round(per_step * -(-FER2013_TRAIN_FACES // batch) / 60, 1),
            "keras": keras.__version__}


def measure(backend: str, loop: str, args: argparse.Namespace, onednn: bool | None = None,
            precision: str = "float32") -> dict[str, Any]:
    """One setting in a child process with ``KERAS_BACKEND`` set (and ``TF_ENABLE_ONEDNN_OPTS`` for TensorFlow)."""
    row: dict[str, Any] = {"backend": backend, "loop": loop, "precision": precision}
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2"}
    if onednn is not None:
        row["onednn"] = onednn
        env["TF_ENABLE_ONEDNN_OPTS"] = "1" if onednn else "0"
    probe = subprocess.run([sys.executable, "-c", f"import {BACKEND_MODULES[backend]}"], capture_output=True)
    if probe.returncode != 0:
        return {**row, "skipped": f"{BACKEND_MODULES[backend]} is not installed in {sys.executable}"}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", loop, "--model", args.model,
           "--input-size", str(args.input_size), "--batch-size", str(args.batch_size), "--steps", str(args.steps),
           "--precision", precision]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        return {**row, "failed": (done.stderr.strip().splitlines() or ["(no output)"])[-1]}
    return {**row, **json.loads(done.stdout.strip().splitlines()[-1])}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(prog="python benchmarks/train_step.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="mobilenet")
    p.add_argument("--input-size", type=int, default=96)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--steps", type=int, default=8, help="steps an epoch (two epochs; the second is timed)")
    p.add_argument("--settings", default=",".join(SETTINGS),
                   help=f"comma-separated backend:loop pairs, backend one of {', '.join(BACKEND_MODULES)}, "
                        f"loop one of {', '.join(LOOPS)}")
    p.add_argument("--onednn", choices=("on", "off", "both"), default="both",
                   help="TensorFlow settings: with its oneDNN kernels (as edgefer runs it), without, or both")
    p.add_argument("--precision", default="float32",
                   help=f"comma-separated, each one of {', '.join(PRECISIONS)} (edgefer train --precision); "
                        "each setting runs in each")
    p.add_argument("--json", help="write the results here")
    p.add_argument("--child", choices=LOOPS, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.steps < 3:
        p.error("--steps must be at least 3 (the timed epoch's steps, less its first)")
    if args.child:
        print(json.dumps(measure_here(args.model, args.input_size, args.batch_size, args.steps, args.child,
                                      args.precision)))
        return 0
    precisions = [v.strip() for v in args.precision.split(",") if v.strip()]
    if not precisions or any(v not in PRECISIONS for v in precisions):
        p.error(f"--precision takes {', '.join(PRECISIONS)} (comma-separated), got {args.precision!r}")
    settings = []
    for item in (s.strip() for s in args.settings.split(",") if s.strip()):
        backend, _, loop = item.partition(":")
        if backend not in BACKEND_MODULES or loop not in LOOPS:
            p.error(f"bad setting {item!r}: write backend:loop with backend one of {', '.join(BACKEND_MODULES)} "
                    f"and loop one of {', '.join(LOOPS)}")
        # oneDNN is TensorFlow's: the other backends get one row, with None.
        variants = ((True, False) if args.onednn == "both" else (args.onednn == "on",)) \
            if backend == "tensorflow" else (None,)
        settings += [(backend, loop, onednn, precision) for onednn in variants for precision in precisions]

    from benchmarks.device import conditions, device_info

    before = conditions(busy_window_s=1.0)
    rows = []
    for backend, loop, onednn, precision in settings:
        row = measure(backend, loop, args, onednn, precision)
        rows.append(row)
        said = row.get("skipped") or row.get("failed") or (
            f"{row['seconds_per_step']:.3f} s a step (XLA {row['jit_compile']}), "
            f"~{row['fer2013_epoch_minutes']} min a FER2013 epoch")
        kernels = "" if onednn is None else (" oneDNN" if onednn else " no oneDNN")
        print(f"{backend:10s} {loop:3s}{kernels} {precision} {said}", flush=True)
    result = {"schema": "edgefer-train-step/1", "command": "python benchmarks/train_step.py " + shlex.join(argv),
              "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "model": args.model, "input_size": args.input_size, "batch_size": args.batch_size,
              "rows": rows, "device": device_info(), "conditions_before": before, "conditions_after": conditions()}
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
