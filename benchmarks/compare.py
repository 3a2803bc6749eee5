"""``latency.py --compare a.json b.json ...``: one markdown table and a latency-distribution plot.

Result files from several devices merge into one table (one row per backend run,
plus one per peer run), which is how the README's table is made.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

RESULT_SCHEMA = "edgefer-latency/1"


def load_results(paths: Sequence[str | Path]) -> list[dict[str, Any]]:
    """Read result files; anything that is not a latency result is an error naming the file."""
    results = []
    for path in paths:
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"cannot read benchmark result {path}: {exc}") from None
        if data.get("schema") != RESULT_SCHEMA:
            raise ValueError(f"{path} is not a latency result (schema {data.get('schema')!r}, "
                             f"expected {RESULT_SCHEMA!r}); write one with benchmarks/latency.py --json")
        data["_file"] = str(path)
        results.append(data)
    return results


def _device_name(device: dict[str, Any]) -> str:
    name = device.get("board") or device.get("cpu_model") or "?"
    return f"{name} ({device.get('usable_cores') or device.get('cores')} cores)"


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "–"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _load(conditions: dict[str, Any]) -> str:
    """Other work on the CPU when the run started: the sampled busy share, else the 1-minute load average."""
    busy = conditions.get("cpu_busy_fraction")
    if busy is not None:
        return f"{busy:.0%} busy"
    load = conditions.get("loadavg_1_5_15")
    return _fmt(load[0] if load else None, 2)


def table_rows(results: Sequence[dict[str, Any]]) -> list[dict[str, str]]:
    """One row per backend run and per peer run, with the figures the table shows."""
    rows = []
    for res in results:
        device = _device_name(res["device"])
        before = res.get("conditions_before", {})
        load = _load(before)
        for run in res["runs"]:
            pipe = run.get("pipeline") or {}
            stages = pipe.get("stages", {})
            alone = run.get("model_alone", {}).get("stats", {})
            batched = run.get("model_batched") or {}
            det = pipe.get("detector", {}).get("kind", "").replace("Config", "").lower()
            every = (pipe.get("tracking") or {}).get("detect_every")
            rows.append({
                "device": device,
                "what": f"edgefer {run['backend']} {run.get('precision', '')}"
                        + ((f", {det} stills" if pipe.get("stills") else f", {det} 1/{every}") if det else ""),
                "threads": str(run.get("threads") or "default"),
                "model p50 ms": _fmt(alone.get("p50_ms"), 3),
                "model ms/face batched": (f"{_fmt(batched['per_face_p50_ms'], 3)} (x{batched['batch']})"
                                          if batched else "–"),
                "detect ms": _fmt(stages.get("detect", {}).get("mean_ms")),
                "infer ms": _fmt(stages.get("infer", {}).get("mean_ms")),
                "frame mean ms": _fmt(stages.get("total", {}).get("mean_ms")),
                "frame p90/p99 ms": (f"{_fmt(stages['total']['p90_ms'])} / {_fmt(stages['total']['p99_ms'])}"
                                     if "total" in stages else "–"),
                "fps": _fmt(pipe.get("fps"), 1),
                "peak RSS MiB": _fmt(run.get("peak_rss_mib"), 0),
                "load": load,
                "file": Path(res["_file"]).name,
            })
            peer = run.get("peer")
            if peer:
                total = peer["stages"]["total"]
                rows.append({
                    "device": device, "what": f"{peer['peer']} {peer['versions'].get(peer['peer'], '')}".strip(),
                    "threads": "default", "model p50 ms": "–", "model ms/face batched": "–", "detect ms": "–",
                    "infer ms": "–",
                    "frame mean ms": _fmt(total["mean_ms"]),
                    "frame p90/p99 ms": f"{_fmt(total['p90_ms'])} / {_fmt(total['p99_ms'])}",
                    "fps": _fmt(peer["fps"], 1), "peak RSS MiB": _fmt(peer["peak_rss_mib"], 0),
                    "load": load, "file": Path(res["_file"]).name,
                })
    return rows


def markdown_table(results: Sequence[dict[str, Any]]) -> str:
    """The merged markdown table of all runs in ``results``."""
    rows = table_rows(results)
    if not rows:
        raise ValueError("the result files hold no runs")
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(r[c] for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def plot_distribution(results: Sequence[dict[str, Any]], out: str | Path) -> Path:
    """Per-frame end-to-end latency of every run (and peer) as box plots, written as a PNG."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise RuntimeError("the --compare plot needs matplotlib: pip install matplotlib "
                           "(or pip install 'edgefer[train-tools]')") from None
    series, names = [], []
    for res in results:
        device = res["device"].get("board") or res["device"].get("cpu_model", "?")
        for run in res["runs"]:
            if run.get("pipeline"):
                series.append(run["pipeline"]["samples_ms"]["total"])
                pipe = run["pipeline"]
                every = "stills" if pipe.get("stills") else f"1/{pipe['tracking']['detect_every']}"
                names.append(f"{run['backend']} {pipe['detector']['kind'][:-6]} {every}"
                             f"\n{device[:28]}")
            if run.get("peer"):
                series.append(run["peer"]["samples_ms"]["total"])
                names.append(f"{run['peer']['peer']} (peer)\n{device[:28]}")
    if not series:
        raise ValueError("no run in these files has pipeline samples to plot")
    fig, ax = plt.subplots(figsize=(max(5.0, 1.6 * len(series)), 4.5))
    ax.boxplot(series, whis=(1, 99), showfliers=True, flierprops={"markersize": 2})
    ax.set_xticks(range(1, len(names) + 1), names, fontsize=7)
    ax.set_yscale("log")
    ax.set_ylabel("end-to-end ms per frame (log)")
    ax.set_title("latency per frame (box: quartiles, whiskers: p1-p99)")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
