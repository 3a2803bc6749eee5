"""Measurements of one backend: the model alone on a fixed input, and the real pipeline on frames.

The pipeline is the one ``edgefer detect`` runs (source -> detector -> preprocess ->
backend -> event), timed per stage: ``read`` (decode, plus the resize to the
benchmark frame size), ``detect`` (grey conversion, detection or tracking),
``preprocess``, ``infer``, ``postprocess`` (building the event and its JSON line)
and ``total``. Nothing here asserts a speed; it only measures.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from typing import Any, Iterator

import numpy as np

from edgefer.runtime.classifier import EmotionClassifier
from edgefer.runtime.detect import DetectorConfig
from edgefer.runtime.detectors import create_detector
from edgefer.runtime.pipeline import Pipeline
from edgefer.runtime.recognizer import EmotionRecognizer
from edgefer.runtime.preprocess import preprocess_faces
from edgefer.runtime.sources import Frame, open_source
from edgefer.runtime.tracking import TrackConfig

from .frames import fit_frame
from .stats import pass_p50s, split_counts, summarize

PIPELINE_STAGES = ("read", "detect", "preprocess", "infer", "postprocess")


@dataclass(frozen=True)
class PipelineSetup:
    """What the pipeline part of a benchmark runs on."""

    source: str
    frame_size: tuple[int, int] | None
    detector: DetectorConfig
    tracking: TrackConfig
    still: bool = False  # every frame a still image of its own (no tracking), as edgefer detects photos


def bench_model(classifier: EmotionClassifier, warmup: int, iterations: int, batch: int = 1,
                seed: int = 0, passes: int = 1, gap_s: float = 0.0) -> dict[str, Any]:
    """Backend ``infer`` alone on a fixed, preprocessed batch of ``batch`` random faces.

    The iterations run in ``passes`` passes ``gap_s`` seconds apart; each pass's p50 is kept,
    so a stretch of load from outside the process shows as one slow pass (see ``latency.py``).
    """
    spec = classifier.spec
    faces = np.random.default_rng(seed).integers(0, 256, (batch, spec.height, spec.width), dtype=np.uint8)
    x = preprocess_faces(faces, spec)
    for _ in range(warmup):
        classifier.backend.infer(x)
    samples = []
    counts = split_counts(iterations, passes)
    for i, count in enumerate(counts):
        if i:
            time.sleep(gap_s)
        for _ in range(count):
            t0 = time.perf_counter()
            classifier.backend.infer(x)
            samples.append((time.perf_counter() - t0) * 1e3)
    stats = summarize(samples)
    p50s = pass_p50s(samples, counts)
    return {"batch": batch, "warmup": warmup, "iterations": iterations, "stats": stats,
            "per_face_p50_ms": round(stats["p50_ms"] / batch, 4),
            "passes": {"iterations": counts, "gap_s": gap_s, "p50_ms": [round(v, 4) for v in p50s]},
            "per_face_best_pass_ms": round(min(p50s) / batch, 4),
            "samples_ms": [round(s, 4) for s in samples]}


def looped_frames(source: str, size: tuple[int, int] | None, on_restart=None) -> Iterator[Frame]:
    """The frames of ``source`` for ever, reopened from the start when it runs out, resized to ``size``."""
    while True:
        produced = 0
        with open_source(source) as frames:
            for frame in frames:
                if frame.image is not None and size is not None:
                    t0 = time.perf_counter()
                    frame.image = fit_frame(frame.image, size)
                    frame.read_ms += (time.perf_counter() - t0) * 1e3
                produced += 1
                yield frame
        if produced == 0:
            raise ValueError(f"source {source} delivered no frames")
        if on_restart is not None:
            on_restart()


class PipelineBench:
    """The real pipeline, run in blocks of frames (so a peer can take turns with it)."""

    def __init__(self, classifier: EmotionClassifier, setup: PipelineSetup):
        self.setup = setup
        self.detector = create_detector(setup.detector, setup.tracking, still=setup.still)
        self.pipeline = Pipeline(EmotionRecognizer.from_parts(self.detector, classifier))
        self._frames = looped_frames(setup.source, setup.frame_size, getattr(self.detector, "reset", None))
        self.samples: dict[str, list[float]] = {s: [] for s in (*PIPELINE_STAGES, "total")}
        self.boxes: list[list[list[int]]] = []
        self.faces = self.errors = self.warmup = 0

    def run(self, count: int, record: bool = True) -> None:
        """Process the next ``count`` frames; with ``record`` false they are warm-up."""
        for _ in range(count):
            frame = next(self._frames)
            t0 = time.perf_counter()
            event = self.pipeline.process(frame)
            json.dumps(event)
            process_ms = (time.perf_counter() - t0) * 1e3
            if not record:
                self.warmup += 1
                continue
            if "error" in event:
                self.errors += 1
                self.boxes.append([])
                continue
            t = event["timings_ms"]
            for stage in ("detect", "preprocess", "infer"):
                self.samples[stage].append(t[stage])
            self.samples["read"].append(frame.read_ms)
            self.samples["postprocess"].append(max(process_ms - t["detect"] - t["preprocess"] - t["infer"], 0.0))
            self.samples["total"].append(frame.read_ms + process_ms)
            self.faces += len(event["faces"])
            self.boxes.append([f["box"] for f in event["faces"]])

    def result(self) -> dict[str, Any]:
        """Per-stage statistics, raw samples and the boxes of every timed frame."""
        self._frames.close()
        if not self.samples["total"]:
            raise ValueError(f"every benchmark frame of {self.setup.source} was an error frame")
        stages = {s: summarize(v) for s, v in self.samples.items()}
        return {
            "source": self.setup.source,
            "frame_size": list(self.setup.frame_size) if self.setup.frame_size else "native",
            "detector": {"kind": type(self.setup.detector).__name__, **asdict(self.setup.detector)},
            "tracking": None if self.setup.still else asdict(self.setup.tracking),
            "stills": self.setup.still,
            "detection_passes": getattr(self.detector, "detections", None),
            "warmup": self.warmup, "frames": len(self.boxes), "faces": self.faces, "errors": self.errors,
            "fps": stages["total"]["per_second"],
            "stages": stages,
            "samples_ms": {s: [round(v, 3) for v in vals] for s, vals in self.samples.items()},
            "boxes": self.boxes,
        }
