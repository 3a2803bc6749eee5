#!/usr/bin/env python3
"""Per-operator latency of a ``.tflite`` classifier: where the model-alone time goes.

    python benchmarks/ops.py                                   # shipped INT8 model, 16 faces per call, 1 thread
    python benchmarks/ops.py --model m.tflite --batch 1 --threads 4 --json pi5-ops.json

With LiteRT, the model is cut into one single-operator model per operator (with the
flatbuffer schema LiteRT ships, so no TensorFlow is needed on the device); each is
timed alone through the same interpreter and delegate (XNNPACK) as the whole model,
on random inputs of the operator's own type and shape with the batch axis set to
``--batch``.
The operators and the whole model take turns over ten rounds, so a change in CPU
speed during the run (a shared or thermally throttled core) shifts them all alike.
Each operator's multiply-accumulates and time give its rate in MACs per cycle at the
reported clock (beside the CPU's int8 rate, :mod:`benchmarks.macs`): it shows which kinds
of operator the time goes to. The sum of the operators'
times is compared with the whole model's time on the same batch; the difference is
what running them one after another adds (interpreter, cache misses between ops).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

if __package__ in (None, ""):
    # Run as a script: make `benchmarks` importable. Appended, not put first: the checkout's `edgefer/`
    # folder is only the package's top level (pyproject maps the rest), and ahead of site-packages it
    # would hide a plain (non-editable) install of edgefer, as on a Raspberry Pi.
    sys.path.append(str(Path(__file__).resolve().parents[1]))

from benchmarks.stats import split_counts, summarize  # noqa: E402

SCHEMA = "edgefer-ops/1"
DEFAULT_MODEL = Path(__file__).resolve().parents[1] / "runtime" / "models" / "default_int8.tflite"


def split_operators(path: str | Path) -> list[tuple[str, bytes]]:
    """``(op name, single-operator .tflite bytes)`` for each operator of the model's main subgraph.

    Each model keeps the whole tensor table, so tensor indices match the original model's
    (unused tensors cost nothing at run time), but only the operator's own weights; its
    inputs are the operator's non-constant inputs and its outputs the operator's.
    """
    from edgefer.runtime.backends.litert import flatbuffer_tools

    _, fu = flatbuffer_tools()
    model = fu.read_model(str(path))
    if len(model.subgraphs) != 1:
        raise ValueError(f"{path}: {len(model.subgraphs)} subgraphs; per-operator profiling handles one")
    graph = model.subgraphs[0]
    operators, inputs, outputs, signatures = graph.operators, graph.inputs, graph.outputs, model.signatureDefs
    model.signatureDefs = []  # they name the whole model's inputs and outputs

    data = [buffer.data for buffer in model.buffers]

    def constant(index: int) -> bool:
        held = data[graph.tensors[index].buffer]
        return held is not None and len(held) > 0

    cut = []
    try:
        for op in operators:
            graph.operators = [op]
            graph.inputs = [int(i) for i in op.inputs if i >= 0 and not constant(int(i))]
            graph.outputs = [int(o) for o in op.outputs]
            # Only this operator's weights travel with it (one copy of all of them per operator adds up).
            own = {graph.tensors[int(i)].buffer for i in [*op.inputs, *op.outputs] if i >= 0}
            for index, buffer in enumerate(model.buffers):
                buffer.data = data[index] if index in own else None
            cut.append((fu.opcode_to_name(model, op.opcodeIndex), bytes(fu.convert_object_to_bytearray(model))))
    finally:
        graph.operators, graph.inputs, graph.outputs, model.signatureDefs = operators, inputs, outputs, signatures
        for buffer, kept in zip(model.buffers, data):
            buffer.data = kept
    return cut


def _random_input(detail: dict[str, Any], shape: Sequence[int], rng: np.random.Generator) -> np.ndarray:
    dtype = np.dtype(detail["dtype"])
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return rng.integers(info.min, int(info.max) + 1, size=tuple(shape), dtype=dtype)
    return rng.standard_normal(tuple(shape)).astype(dtype)


class _Timed:
    """Something to call repeatedly, each call's time kept in ``samples_ms``."""

    def __init__(self) -> None:
        self.samples_ms: list[float] = []

    def call(self) -> None:
        raise NotImplementedError

    def run(self, calls: int, clock: Callable[[], float] = time.perf_counter, record: bool = True) -> None:
        """``calls`` calls, each timed into ``samples_ms`` when ``record``."""
        for _ in range(calls):
            t0 = clock()
            self.call()
            if record:
                self.samples_ms.append((clock() - t0) * 1e3)


class Timed(_Timed):
    """One .tflite model ready to invoke on random inputs with the batch axis set to ``batch``."""

    def __init__(self, content: bytes, batch: int, threads: int, seed: int = 0) -> None:
        from edgefer.runtime.backends.litert import _interpreter_class

        super().__init__()
        self.interp = _interpreter_class()(model_content=content, num_threads=threads)
        for detail in self.interp.get_input_details():
            shape = [int(d) for d in detail["shape"]]
            if shape and shape[0] != batch:
                self.interp.resize_tensor_input(detail["index"], [batch, *shape[1:]])
        self.interp.allocate_tensors()
        rng = np.random.default_rng(seed)
        for detail in self.interp.get_input_details():
            self.interp.set_tensor(detail["index"], _random_input(detail, detail["shape"], rng))

    def call(self) -> None:
        self.interp.invoke()


def time_round_robin(models: Sequence[_Timed], warmup: int, iterations: int, rounds: int = 10) -> None:
    """Time every model in turn, ``rounds`` times over, so that a change of CPU speed hits them all alike.

    Each model gets ``warmup`` untimed calls, then ``iterations`` timed calls spread over the rounds.
    """
    for model in models:
        model.run(warmup, record=False)
    for calls in split_counts(iterations, rounds):
        for model in models:
            model.run(calls)


def macs_per_cycle(macs: int, ms_per_face: float, mhz: float | None, threads: int) -> float | None:
    """Multiply-accumulates each core completes per clock cycle at that per-face time."""
    if not mhz or ms_per_face <= 0:
        return None
    return macs / (ms_per_face * 1e-3 * mhz * 1e6 * threads)


def by_kind(ops: Sequence[dict[str, Any]], mhz: float | None, threads: int) -> dict[str, dict[str, Any]]:
    """Per operator kind: count, MACs, summed per-face p50 time, shares of the total and MACs per cycle."""
    groups: dict[str, dict[str, Any]] = defaultdict(lambda: {"count": 0, "macs": 0, "per_face_ms": 0.0})
    for op in ops:
        group = groups[op["op"]]
        group["count"] += 1
        group["macs"] += op["macs"]
        group["per_face_ms"] += op["per_face_p50_ms"]
    total_ms = sum(g["per_face_ms"] for g in groups.values())
    total_macs = sum(g["macs"] for g in groups.values())
    out = {}
    for kind, group in sorted(groups.items(), key=lambda kv: -kv[1]["per_face_ms"]):
        rate = macs_per_cycle(group["macs"], group["per_face_ms"], mhz, threads) if group["macs"] else None
        out[kind] = {**group, "per_face_ms": round(group["per_face_ms"], 4),
                     "time_share": round(group["per_face_ms"] / total_ms, 4) if total_ms else None,
                     "macs_share": round(group["macs"] / total_macs, 4) if total_macs else None,
                     "macs_per_cycle": round(rate, 1) if rate is not None else None}
    return out


def profile(model: str | Path, batch: int, threads: int, warmup: int, iterations: int,
            command: str = "") -> dict[str, Any]:
    """Time every operator of ``model`` alone and the whole model, per face, on ``batch`` faces per call.

    LiteRT (XNNPACK) runs each with ``threads`` threads. ``command`` is recorded so that the
    result says how to regenerate it.
    """
    from benchmarks.device import device_info
    from benchmarks.macs import local_int8_peak, tflite_op_macs
    from edgefer.runtime.manifest import sha256_of

    info = device_info()
    peak = local_int8_peak(info, threads)
    mhz = info["cpu_max_mhz"]  # the reported clock: MACs per cycle are at that clock
    counts = tflite_op_macs(model)
    cuts = split_operators(model)
    if len(cuts) != len(counts):
        raise RuntimeError(f"{model}: {len(cuts)} operators to time but {len(counts)} counted; "
                           "cannot attribute MACs")
    ops: list[dict[str, Any]] = []
    timed: list[_Timed] = []
    for index, ((name, content), (counted_name, macs)) in enumerate(zip(cuts, counts)):
        if name != counted_name:
            raise RuntimeError(f"{model}: operator {index} is {name} in the flatbuffer but {counted_name} "
                               "in the interpreter; cannot attribute its MACs")
        entry: dict[str, Any] = {"index": index, "op": name, "macs": macs}
        ops.append(entry)
        try:
            timed.append(Timed(content, batch, threads))
        except (RuntimeError, ValueError) as exc:  # one operator that cannot run alone must not end it
            entry["error"] = str(exc)
    whole_model = Timed(Path(model).read_bytes(), batch, threads)
    time_round_robin([*timed, whole_model], warmup, iterations)
    runs = iter(timed)
    for entry in ops:
        if "error" in entry:
            entry["per_face_p50_ms"] = 0.0
            continue
        stats = summarize(next(runs).samples_ms, digits=5)  # a small op takes a few microseconds
        entry["stats"] = stats
        entry["per_face_p50_ms"] = round(stats["p50_ms"] / batch, 5)
        rate = macs_per_cycle(entry["macs"], stats["p50_ms"] / batch, mhz, threads) if entry["macs"] else None
        entry["macs_per_cycle"] = round(rate, 1) if rate is not None else None
    whole = summarize(whole_model.samples_ms, digits=5)
    whole_ms = whole["p50_ms"] / batch
    summed = sum(op["per_face_p50_ms"] for op in ops)
    return {
        "schema": SCHEMA, "command": command,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "device": info, "backend": "litert", "model": str(model), "sha256": sha256_of(model),
        "batch": batch, "threads": threads, "warmup": warmup, "iterations": iterations, "mhz": mhz,
        "whole_model": {"stats": whole, "per_face_p50_ms": round(whole_ms, 5)},
        "int8_peak": peak, "ops": ops, "by_kind": by_kind(ops, mhz, threads),
        "ops_summed_ms": round(summed, 5), "between_ops_ms": round(whole_ms - summed, 5),
    }


def markdown(result: dict[str, Any]) -> str:
    """The per-kind table of a :func:`profile` result."""
    batch = result["batch"]
    lines = [(f"{Path(result['model']).name} on {result.get('backend', 'litert')}, {batch} face(s) per call, "
              f"{result['threads']} thread(s): "
              f"whole model {result['whole_model']['per_face_p50_ms'] * 1e3:.1f} us per face (p50)"), "",
             "| op | count | MACs (M) | MACs share | us per face | time share | MACs per cycle |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for kind, k in result["by_kind"].items():
        rate = "—" if k["macs_per_cycle"] is None else f"{k['macs_per_cycle']:.1f}"
        lines.append(f"| {kind} | {k['count']} | {k['macs'] / 1e6:.2f} | {k['macs_share']:.1%} | "
                     f"{k['per_face_ms'] * 1e3:.1f} | {k['time_share']:.1%} | {rate} |")
    lines += ["", (f"operators alone sum to {result['ops_summed_ms'] * 1e3:.1f} us per face; running them "
                   f"one after another adds {result['between_ops_ms'] * 1e3:.1f} us. MACs per cycle are at the "
                   f"reported clock ({result['mhz']} MHz).")]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=str(DEFAULT_MODEL), help=".tflite model (default: the shipped INT8 model)")
    p.add_argument("--batch", type=int, default=16, help="faces per call")
    p.add_argument("--threads", type=int, default=1, help="interpreter threads (LiteRT)")
    p.add_argument("--warmup", type=int, default=20, help="untimed calls first, per operator")
    p.add_argument("--iterations", type=int, default=200, help="timed calls per operator")
    p.add_argument("--json", help="write the full result here")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    from edgefer.runtime.backends import BackendUnavailable
    from edgefer.runtime.manifest import ModelError

    args = build_parser().parse_args(argv)
    model = Path(args.model)
    if model.suffix != ".tflite" or not model.is_file():
        print(f"ops.py: {model} is not a .tflite file; per-operator profiling reads LiteRT models "
              "(convert one with `edgefer convert --to tflite:int8`)", file=sys.stderr)
        return 2
    if args.batch < 1 or args.threads < 1 or args.iterations < 1 or args.warmup < 0:
        print("ops.py: --batch, --threads and --iterations must be at least 1, --warmup at least 0", file=sys.stderr)
        return 2
    try:
        result = profile(model, args.batch, args.threads, args.warmup, args.iterations,
                         shlex.join(["python", "benchmarks/ops.py", *(sys.argv[1:] if argv is None else argv)]))
    except (ImportError, RuntimeError, ValueError, ModelError, BackendUnavailable) as exc:
        # ImportError / BackendUnavailable: LiteRT or its flatbuffer tools missing
        print(f"ops.py: {exc}", file=sys.stderr)
        return 1
    print(markdown(result))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
