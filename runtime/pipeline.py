"""Frames -> :class:`~.recognizer.EmotionRecognizer` -> results; JSON events are made only in :meth:`FrameResult.to_event`.

An event (one JSON object per frame on ``edgefer detect``'s stdout)::

    {"frame": 0, "timestamp": 1764850000.123, "position_s": 0.04, "source": "clip.mp4", "size": [640, 480],
     "scores_kind": "svm_margins",
     "faces": [{"box": [x, y, w, h], "label": "happy", "probability": 0.91,
                "probabilities": {"angry": 0.01, ...}, "scores": {"angry": -0.98, ...}}],
     "timings_ms": {"read": 1.2, "detect": 9.8, "preprocess": 0.1, "infer": 0.6}}

``timestamp`` is when the frame was read (Unix epoch seconds) for every source; ``position_s``
(video files only) is where the frame sits in the clip. ``probabilities`` are calibrated and sum
to 1; ``scores`` are the model's raw outputs, whose kind ``scores_kind`` names. A bad frame
gives ``{"frame", "timestamp", "source", "error"}`` instead of ``size``/``faces``/``timings_ms``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .recognizer import Analysis, EmotionRecognizer, Face
from .sources import Frame
from .stats import StreamingStats

STAGES = ("read", "detect", "preprocess", "infer")


@dataclass
class FrameResult:
    """What one frame gave: faces and timings, or the error that replaced them."""

    frame: Frame
    analysis: Analysis | None = None
    error: str | None = None
    scores_kind: str = "scores"
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def faces(self) -> list[Face]:
        return self.analysis.faces if self.analysis else []

    def to_event(self) -> dict[str, Any]:
        """The JSON-ready event (see the module docstring)."""
        f = self.frame
        event: dict[str, Any] = {"frame": f.index, "timestamp": round(f.timestamp, 6)}
        if f.position_s is not None:
            event["position_s"] = round(f.position_s, 6)
        event["source"] = f.origin
        if self.analysis is None:
            event["error"] = self.error or "empty frame"
            return event
        event.update({
            "size": list(self.analysis.size),
            "scores_kind": self.scores_kind,
            "faces": [face.to_dict() for face in self.analysis.faces],
            "timings_ms": {k: round(v, 3) for k, v in self.timings_ms.items()},
        })
        return event


class Pipeline:
    """Runs the recognizer on frames; a bad frame gives an error result, never an exception."""

    def __init__(self, recognizer: EmotionRecognizer):
        self.recognizer = recognizer
        self._origin: str | None = None

    def run(self, frame: Frame) -> FrameResult:
        """The result for one frame."""
        kind = self.recognizer.scores_kind
        if frame.image is None:
            return FrameResult(frame, error=frame.error or "empty frame", scores_kind=kind)
        try:
            if frame.origin != self._origin:
                # Faces are followed only within one stream; a folder's next image is unrelated.
                self._origin = frame.origin
                self.recognizer.reset()
            analysis = self.recognizer.analyse(frame.image, still=frame.still)
        except Exception as exc:  # a device program must never die on one bad frame
            return FrameResult(frame, error=f"{type(exc).__name__}: {exc}", scores_kind=kind)
        timings = {"read": frame.read_ms, **analysis.timings_ms}
        return FrameResult(frame, analysis, scores_kind=kind, timings_ms=timings)

    def process(self, frame: Frame) -> dict[str, Any]:
        """The JSON-ready event for one frame."""
        return self.run(frame).to_event()


class TimingSummary:
    """Accumulates per-stage timings of results for a closing summary, in constant memory (a day-long
    camera run costs what a second does; see :class:`~.stats.StreamingStats`)."""

    def __init__(self) -> None:
        self.stages: dict[str, StreamingStats] = {s: StreamingStats() for s in STAGES}
        self.frames = 0
        self.errors = 0
        self.faces = 0

    def add(self, result: FrameResult) -> None:
        self.frames += 1
        if result.analysis is None:
            self.errors += 1
            return
        self.faces += len(result.faces)
        for stage, ms in result.timings_ms.items():
            stats = self.stages.get(stage)
            if stats is None:
                stats = self.stages[stage] = StreamingStats()
            stats.add(ms)

    def as_dict(self) -> dict[str, Any]:
        stages = {}
        for stage, st in self.stages.items():
            if st.count:
                stages[stage] = {"mean_ms": round(st.mean, 3), "p50_ms": round(st.percentile(50), 3),
                                 "p95_ms": round(st.percentile(95), 3), "max_ms": round(st.max, 3)}
        return {"frames": self.frames, "errors": self.errors, "faces": self.faces, "stages_ms": stages}

    def format(self) -> str:
        d = self.as_dict()
        lines = [f"{d['frames']} frame(s), {d['faces']} face(s), {d['errors']} error(s)",
                 f"{'stage':<12}{'mean ms':>10}{'p50 ms':>10}{'max ms':>10}"]
        total = 0.0
        for stage, s in d["stages_ms"].items():
            total += s["mean_ms"]
            lines.append(f"{stage:<12}{s['mean_ms']:>10.2f}{s['p50_ms']:>10.2f}{s['max_ms']:>10.2f}")
        lines.append(f"{'total':<12}{total:>10.2f}")
        return "\n".join(lines)
