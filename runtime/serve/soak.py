"""Soak test of ``edgefer serve``: a looping clip for N frames, RSS / file descriptors / latency over time.

Runs the real service in a child process (``edgefer serve`` with ``source.loop``),
samples ``/proc/<pid>`` and its ``/metrics`` every ``--interval`` seconds, stops it
with SIGTERM once it has read ``--frames`` frames and writes a JSON report::

    python -m edgefer.runtime.serve.soak --source clip.mp4 --frames 200000 --out soak.json

``late_growth`` compares two late checkpoints (by default at half and at the end
of the run), which is what a leak shows up in once start-up allocations settle.
Linux only (``/proc``); standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from ..limits import float_between, int_between
from ..redact import redact

_SAMPLE = re.compile(r'^(edgefer_[a-z_]+?)(?:\{([^}]*)\})? ([0-9.eE+-]+|\+Inf|NaN)$')


def parse_metrics(text: str) -> dict[str, float]:
    """Prometheus text -> ``{'name{labels}': value}`` (labels as written)."""
    values = {}
    for line in text.splitlines():
        m = _SAMPLE.match(line)
        if m:
            name, labels, value = m.groups()
            values[f"{name}{{{labels}}}" if labels else name] = float(value)
    return values


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def process_sample(pid: int) -> dict[str, float]:
    """Resident memory (MiB) and open file descriptors of a process, from /proc."""
    rss_kib = 0
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                rss_kib = int(line.split()[1])
    return {"rss_mib": round(rss_kib / 1024, 3), "fds": len(os.listdir(f"/proc/{pid}/fd"))}


def soak_config(source: str, port: int, events: Path, model: str | None) -> str:
    """The service configuration of a soak run (TOML)."""
    model_line = f"path = {json.dumps(model)}\n" if model else ""
    return (
        f"[source]\nspec = {json.dumps(source)}\nloop = true\n\n"
        f"[model]\n{model_line}\n"
        "[outputs]\nemit = \"all\"\n\n"
        f"[outputs.jsonl]\nenabled = true\npath = {json.dumps(str(events))}\nmax_bytes = 1048576\nbackups = 2\n\n"
        f"[outputs.http]\nenabled = true\nport = {port}\n"
    )


def _scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        return parse_metrics(resp.read().decode())


def _stage_means(now: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    means = {}
    for key, total in now.items():
        if key.startswith("edgefer_stage_latency_seconds_sum"):
            stage = key[key.index('"') + 1 : key.rindex('"')]
            count_key = key.replace("_sum", "_count")
            n = now.get(count_key, 0.0) - before.get(count_key, 0.0)
            if n > 0:
                means[stage] = round((total - before.get(key, 0.0)) / n * 1e3, 3)
    return means


def run_soak(source: str, frames: int, interval_s: float = 2.0, model: str | None = None,
             workdir: str | Path | None = None, startup_timeout_s: float = 180.0,
             max_seconds: float | None = None) -> dict[str, Any]:
    """Run the service over ``source`` (looped) for ``frames`` frames (or ``max_seconds``); returns the report."""
    tmp = tempfile.TemporaryDirectory(prefix="edgefer-soak-") if workdir is None else None
    folder = Path(workdir or tmp.name)  # type: ignore[union-attr]
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = folder / "soak.toml"
    config.write_text(soak_config(source, port, folder / "events.jsonl", model))
    log = open(folder / "serve.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "edgefer", "serve", "--config", str(config)],
                            stdout=log, stderr=subprocess.STDOUT)
    checkpoints: list[dict[str, Any]] = []
    report: dict[str, Any] = {"source": source, "frames_target": frames, "max_seconds": max_seconds,
                              "interval_s": interval_s, "model": model or "shipped default"}
    try:
        before = _wait_for_metrics(proc, port, startup_timeout_s, folder / "serve.log")
        started = time.monotonic()
        while True:
            time.sleep(interval_s)
            if proc.poll() is not None:
                raise RuntimeError(f"the service exited with status {proc.returncode} during the soak; "
                                   f"see {folder / 'serve.log'}")
            sample = process_sample(proc.pid)  # before the scrape, whose socket would count as an fd
            now = _scrape(port)
            frames_done = now.get("edgefer_frames_total", 0.0)
            checkpoints.append({
                "t_s": round(time.monotonic() - started, 3), "frames": int(frames_done), **sample,
                "latency_ms": _stage_means(now, before),
                "dropped": int(sum(v for k, v in now.items() if k.startswith("edgefer_dropped_frames_total"))),
            })
            before = now
            if frames_done >= frames or (max_seconds is not None and time.monotonic() - started >= max_seconds):
                break
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        report["exit_status"] = proc.wait(timeout=30)
        report["stop_s"] = round(time.monotonic() - t0, 3)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
        if tmp is not None:
            tmp.cleanup()
    report["checkpoints"] = checkpoints
    report["late_growth"] = late_growth(checkpoints)
    return report


def _wait_for_metrics(proc: subprocess.Popen, port: int, timeout_s: float, log: Path) -> dict[str, float]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the service exited with status {proc.returncode} at start: "
                               f"{log.read_text(errors='replace')[-2000:]}")
        try:
            return _scrape(port)
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"the service did not serve /metrics within {timeout_s:g}s")


def late_growth(checkpoints: list[dict[str, Any]], from_fraction: float = 0.5) -> dict[str, Any]:
    """RSS and fd change between the checkpoint at ``from_fraction`` of the run and the last one."""
    if len(checkpoints) < 2:
        return {"rss_mib": None, "fds": None, "between_frames": None}
    first = checkpoints[min(len(checkpoints) - 2, int(len(checkpoints) * from_fraction))]
    last = checkpoints[-1]
    return {"rss_mib": round(last["rss_mib"] - first["rss_mib"], 3), "fds": last["fds"] - first["fds"],
            "between_frames": [first["frames"], last["frames"]]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m edgefer.runtime.serve.soak", description=__doc__.split("\n")[0])
    p.add_argument("--source", required=True, help="clip (looped) or any source spec")
    p.add_argument("--frames", type=int_between(1), default=100_000, help="frames to read before stopping")
    p.add_argument("--max-seconds", type=float_between(0, 30 * 86400, low_open=True), default=None, help="stop after this long even if short of --frames")
    p.add_argument("--interval", type=float_between(0.1, 86400), default=10.0, help="seconds between checkpoints")
    p.add_argument("--model", help="artifact (default: the shipped model)")
    p.add_argument("--out", required=True, help="JSON report")
    p.add_argument("--max-rss-growth-mib", type=float_between(0, 1e6), default=16.0, help="fail if late RSS growth exceeds this")
    p.add_argument("--max-fd-growth", type=int_between(0), default=2, help="fail if late fd growth exceeds this")
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    command = redact("python -m edgefer.runtime.serve.soak " + shlex.join(sys.argv[1:] if argv is None else argv))
    report = {"command": command,
              **run_soak(args.source, args.frames, args.interval, args.model, max_seconds=args.max_seconds)}
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    growth = report["late_growth"]
    print(f"{report['checkpoints'][-1]['frames']} frames; late growth: RSS {growth['rss_mib']} MiB, "
          f"fds {growth['fds']}; stopped in {report['stop_s']} s with status {report['exit_status']}; "
          f"report: {args.out}")
    ok = (report["exit_status"] == 0 and growth["rss_mib"] is not None
          and growth["rss_mib"] <= args.max_rss_growth_mib and growth["fds"] <= args.max_fd_growth)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
