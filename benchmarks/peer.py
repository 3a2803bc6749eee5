"""Running a peer (the ``fer`` package) in its own process and comparing it with an edgefer run."""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Sequence

from .stats import ratio, stage_sums, summarize

PEERS = {"fer": Path(__file__).resolve().parent / "peer_fer.py"}

Box = Sequence[int]


def _centre_inside(a: Box, b: Box) -> bool:
    cx, cy = a[0] + a[2] / 2, a[1] + a[3] / 2
    return b[0] <= cx <= b[0] + b[2] and b[1] <= cy <= b[1] + b[3]


def same_face(a: Box, b: Box) -> bool:
    """Two ``[x, y, w, h]`` boxes are the same face when either's centre lies inside the other."""
    return _centre_inside(a, b) or _centre_inside(b, a)


def lost_faces(ours: Sequence[Sequence[Box]], theirs: Sequence[Sequence[Box]]) -> dict[str, Any]:
    """Faces the peer found that we did not, frame by frame (both lists cover the same frames)."""
    if len(ours) != len(theirs):
        raise ValueError(f"cannot match faces of {len(ours)} frames against {len(theirs)}")
    lost = []
    for index, (mine, peer) in enumerate(zip(ours, theirs)):
        for box in peer:
            if not any(same_face(box, m) for m in mine):
                lost.append({"frame": index, "box": list(box)})
    return {"peer_faces": sum(len(p) for p in theirs), "our_faces": sum(len(m) for m in ours),
            "lost": len(lost), "lost_faces": lost}


def run_peer(name: str, python: str, source: str, frame_size: str, warmup: int, iterations: int,
             timeout: float = 3600) -> dict[str, Any]:
    """Run a peer's script under ``python`` on the same frames; its timings summarised like ours."""
    if name not in PEERS:
        raise ValueError(f"unknown peer {name!r}; known peers: {', '.join(PEERS)}")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "peer.json"
        cmd = [python, str(PEERS[name]), "--source", source, "--frames", str(iterations), "--warmup", str(warmup),
               "--size", frame_size, "--json", str(out)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if proc.returncode == 3:
            raise RuntimeError(
                f"peer {name!r} is not installed for {python}; it is never an edgefer dependency: install it in a "
                f"separate virtual environment (python -m venv /work/fer-venv && /work/fer-venv/bin/pip install fer) "
                f"and pass --peer-python /work/fer-venv/bin/python"
            )
        if proc.returncode != 0 or not out.is_file():
            raise RuntimeError(f"peer {name!r} failed (exit {proc.returncode}): {proc.stderr[-1500:]}")
        raw = json.loads(out.read_text())
    stages = {"read": raw["read_ms"], "process": raw["process_ms"]}
    stages["total"] = stage_sums(stages, ("read", "process"))
    summary = {s: summarize(v) for s, v in stages.items()}
    return {"peer": name, "versions": raw["versions"], "settings": raw["settings"], "python": python,
            "frames": len(raw["process_ms"]), "stages": summary, "fps": summary["total"]["per_second"],
            "peak_rss_mib": raw["peak_rss_mib"], "faces": sum(len(b) for b in raw["boxes"]),
            "samples_ms": {s: [round(v, 3) for v in vals] for s, vals in stages.items()}, "boxes": raw["boxes"]}


def versus(run: dict[str, Any], peer: dict[str, Any], speed_target: float = 5.0,
           memory_target: float = 0.2) -> dict[str, Any]:
    """Our run against the peer's: frames-per-second and peak-memory ratios, faces the peer found that we lost."""
    pipe = run.get("pipeline")
    if not pipe:
        return {"error": "this run has no pipeline part to compare"}
    fps_ratio = ratio(pipe["fps"], peer["fps"])
    rss_ratio = ratio(run["peak_rss_mib"], peer["peak_rss_mib"])
    lost = lost_faces(pipe["boxes"], peer["boxes"])
    return {
        "backend": run["backend"], "fps": pipe["fps"], "peer_fps": peer["fps"],
        "fps_ratio": round(fps_ratio, 2) if fps_ratio else None,
        "peak_rss_mib": run["peak_rss_mib"], "peer_peak_rss_mib": peer["peak_rss_mib"],
        "rss_ratio": round(rss_ratio, 3) if rss_ratio else None,
        "faces": lost,
        "targets": {
            f"fps >= {speed_target:g}x peer": bool(fps_ratio and fps_ratio >= speed_target),
            f"peak RSS <= {memory_target:g} x peer": bool(rss_ratio is not None and rss_ratio <= memory_target),
            "no peer face lost": lost["lost"] == 0,
        },
    }
