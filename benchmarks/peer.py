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


def lost_faces(ours: Sequence[Sequence[Box]], theirs: Sequence[Sequence[Box]],
               truth: Sequence[Sequence[Box]] | None = None) -> dict[str, Any]:
    """Faces the peer found that we did not, frame by frame (all lists cover the same frames).

    With ``truth`` (a referee detector's boxes), each lost face says whether it is a
    real face, and ``lost_confirmed`` counts those.
    """
    if len(ours) != len(theirs) or (truth is not None and len(truth) != len(ours)):
        raise ValueError(f"cannot match faces of {len(ours)} frames against {len(theirs)}")
    lost = []
    for index, (mine, peer) in enumerate(zip(ours, theirs)):
        for box in peer:
            if not any(same_face(box, m) for m in mine):
                item: dict[str, Any] = {"frame": index, "box": list(box)}
                if truth is not None:
                    item["real_face"] = any(same_face(box, t) for t in truth[index])
                lost.append(item)
    out: dict[str, Any] = {"peer_faces": sum(len(p) for p in theirs), "our_faces": sum(len(m) for m in ours),
                           "lost": len(lost), "lost_faces": lost}
    if truth is not None:
        out["lost_confirmed"] = sum(1 for item in lost if item["real_face"])
        out["peer_real_faces"] = sum(1 for t, p in zip(truth, theirs) for b in p if any(same_face(b, x) for x in t))
    return out


class PeerSession:
    """A peer running in its own process, asked for the next N frames at a time.

    Blocks alternate with edgefer's own blocks, so both contenders meet the same
    machine load (a shared CPU changes by the minute) and see the same frames in
    the same order.
    """

    def __init__(self, name: str, python: str, source: str, frame_size: str):
        if name not in PEERS:
            raise ValueError(f"unknown peer {name!r}; known peers: {', '.join(PEERS)}")
        self.name = name
        self.python = python
        # stderr goes to a file: TensorFlow's chatter must never fill a pipe nobody reads while we wait.
        self._stderr = tempfile.TemporaryFile(mode="w+")
        self._proc = subprocess.Popen([python, str(PEERS[name]), "--source", source, "--size", frame_size],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
                                      text=True, bufsize=1)
        self.read_ms: list[float] = []
        self.process_ms: list[float] = []
        self.boxes: list[list[list[int]]] = []

    def _fail(self) -> RuntimeError:
        self._proc.kill()
        code = self._proc.wait()
        self._stderr.seek(0)
        err = self._stderr.read()
        if code == 3:
            return RuntimeError(
                f"peer {self.name!r} is not installed for {self.python}; it is never an edgefer dependency: install "
                "it in a separate virtual environment (python -m venv /work/fer-venv && /work/fer-venv/bin/pip "
                "install fer) and pass --peer-python /work/fer-venv/bin/python"
            )
        return RuntimeError(f"peer {self.name!r} failed (exit {code}): {err[-1500:]}")

    def run(self, count: int, record: bool = True) -> None:
        """Let the peer process its next ``count`` frames; keep the timings unless this is warm-up."""
        try:
            self._proc.stdin.write(f"{count}\n")
            self._proc.stdin.flush()
            line = self._proc.stdout.readline()
        except (BrokenPipeError, OSError):
            raise self._fail() from None
        if not line:
            raise self._fail()
        block = json.loads(line)
        if record:
            self.read_ms += block["read_ms"]
            self.process_ms += block["process_ms"]
            self.boxes += block["boxes"]

    def finish(self) -> dict[str, Any]:
        """Close the peer and summarise its timings like ours."""
        try:
            self._proc.stdin.close()
            line = self._proc.stdout.readline()
        except (BrokenPipeError, OSError):
            raise self._fail() from None
        if not line or self._proc.wait() != 0:
            raise self._fail()
        info = json.loads(line)
        if not self.process_ms:
            raise RuntimeError(f"peer {self.name!r} was asked for no timed frames")
        stages = {"read": self.read_ms, "process": self.process_ms}
        stages["total"] = stage_sums(stages, ("read", "process"))
        summary = {s: summarize(v) for s, v in stages.items()}
        return {"peer": self.name, "versions": info["versions"], "settings": info["settings"], "python": self.python,
                "model_load_s": info["model_load_s"], "frames": len(self.process_ms), "stages": summary,
                "fps": summary["total"]["per_second"], "peak_rss_mib": info["peak_rss_mib"],
                "faces": sum(len(b) for b in self.boxes),
                "samples_ms": {s: [round(v, 3) for v in vals] for s, vals in stages.items()}, "boxes": self.boxes}

    def close(self) -> None:
        """Stop the peer process if it still runs."""
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._stderr.close()


def versus(run: dict[str, Any], peer: dict[str, Any], truth: Sequence[Sequence[Box]] | None = None,
           speed_target: float = 8.0, memory_target: float = 0.2) -> dict[str, Any]:
    """Our run against the peer's: frames-per-second and peak-memory ratios, faces the peer found that we lost."""
    pipe = run.get("pipeline")
    if not pipe:
        return {"error": "this run has no pipeline part to compare"}
    fps_ratio = ratio(pipe["fps"], peer["fps"])
    rss_ratio = ratio(run["peak_rss_mib"], peer["peak_rss_mib"])
    lost = lost_faces(pipe["boxes"], peer["boxes"], truth)
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
            **({"no real peer face lost (YuNet referee)": lost["lost_confirmed"] == 0} if truth is not None else {}),
        },
    }
