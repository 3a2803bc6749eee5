"""The detector pipeline: frame -> faces (any :class:`~.detect.Detector`) -> one batched classification -> one event."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from .classifier import EmotionClassifier
from .detect import Detector
from .preprocess import to_grey
from .sources import Frame

STAGES = ("read", "detect", "preprocess", "infer")


class Pipeline:
    """Runs detection and classification on frames; holds no model loading in the loop."""

    def __init__(self, detector: Detector, classifier: EmotionClassifier):
        self.detector = detector
        self.classifier = classifier
        self._origin: str | None = None

    def process(self, frame: Frame) -> dict[str, Any]:
        """The event for one frame; a bad frame yields an error event instead of raising."""
        base: dict[str, Any] = {"frame": frame.index, "timestamp": round(frame.timestamp, 6), "source": frame.origin}
        if frame.image is None:
            return {**base, "error": frame.error or "empty frame"}
        try:
            return {**base, **self._analyse(frame)}
        except Exception as exc:  # a device program must never die on one bad frame
            return {**base, "error": f"{type(exc).__name__}: {exc}"}

    def _analyse(self, frame: Frame) -> dict[str, Any]:
        image = frame.image
        if not isinstance(image, np.ndarray) or image.ndim not in (2, 3) or image.size == 0:
            raise ValueError(f"frame is not an image array (shape {getattr(image, 'shape', None)})")
        t0 = time.perf_counter()
        grey = to_grey(image)
        if frame.origin != self._origin:
            # Faces are followed only within one stream; a folder's next image is unrelated.
            self._origin = frame.origin
            reset = getattr(self.detector, "reset", None)
            if reset is not None:
                reset()
        colour = getattr(self.detector, "needs_colour", False) and image.ndim == 3
        boxes = self.detector.detect(image if colour else grey)
        detect_ms = (time.perf_counter() - t0) * 1e3
        # All faces of the frame go to the backend as one batch.
        result = self.classifier.classify([b.crop(grey) for b in boxes])
        labels = self.classifier.labels
        faces = []
        for box, scores in zip(boxes, result.scores):
            top = int(np.argmax(scores))
            faces.append({
                "box": box.as_list(),
                "label": labels[top],
                "score": round(float(scores[top]), 4),
                "scores": {name: round(float(s), 4) for name, s in zip(labels, scores)},
            })
        return {
            "size": [int(image.shape[1]), int(image.shape[0])],
            "faces": faces,
            "timings_ms": {
                "read": round(frame.read_ms, 3),
                "detect": round(detect_ms, 3),
                "preprocess": round(result.preprocess_ms, 3),
                "infer": round(result.infer_ms, 3),
            },
        }


class TimingSummary:
    """Accumulates per-stage timings of events for a closing summary."""

    def __init__(self) -> None:
        self.samples: dict[str, list[float]] = {s: [] for s in STAGES}
        self.frames = 0
        self.errors = 0
        self.faces = 0

    def add(self, event: dict[str, Any]) -> None:
        self.frames += 1
        if "error" in event:
            self.errors += 1
            return
        self.faces += len(event["faces"])
        for stage, ms in event["timings_ms"].items():
            self.samples.setdefault(stage, []).append(ms)

    def as_dict(self) -> dict[str, Any]:
        stages = {}
        for stage, values in self.samples.items():
            if values:
                arr = np.asarray(values)
                stages[stage] = {"mean_ms": round(float(arr.mean()), 3), "p50_ms": round(float(np.median(arr)), 3),
                                 "max_ms": round(float(arr.max()), 3)}
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
