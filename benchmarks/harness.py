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
from edgefer.runtime.detect import DetectorConfig, create_detector
from edgefer.runtime.pipeline import Pipeline
from edgefer.runtime.preprocess import preprocess_faces
from edgefer.runtime.sources import Frame, open_source
from edgefer.runtime.tracking import TrackConfig

from .frames import fit_frame
from .stats import summarize

PIPELINE_STAGES = ("read", "detect", "preprocess", "infer", "postprocess")


@dataclass(frozen=True)
class PipelineSetup:
    """What the pipeline part of a benchmark runs on."""

    source: str
    frame_size: tuple[int, int] | None
    detector: DetectorConfig
    tracking: TrackConfig


def bench_model(classifier: EmotionClassifier, warmup: int, iterations: int, batch: int = 1,
                seed: int = 0) -> dict[str, Any]:
    """Backend ``infer`` alone on a fixed, preprocessed batch of ``batch`` random faces."""
    spec = classifier.spec
    faces = np.random.default_rng(seed).integers(0, 256, (batch, spec.height, spec.width), dtype=np.uint8)
    x = preprocess_faces(faces, spec)
    for _ in range(warmup):
        classifier.backend.infer(x)
    samples = []
    for _ in range(iterations):
        t0 = time.perf_counter()
        classifier.backend.infer(x)
        samples.append((time.perf_counter() - t0) * 1e3)
    return {"batch": batch, "warmup": warmup, "iterations": iterations, "stats": summarize(samples),
            "samples_ms": [round(s, 4) for s in samples]}


def looped_frames(source: str, count: int, size: tuple[int, int] | None,
                  on_restart=None) -> Iterator[Frame]:
    """``count`` frames of ``source``, reopened from the start when it runs out, resized to ``size``."""
    delivered = 0
    while delivered < count:
        produced = 0
        with open_source(source) as frames:
            for frame in frames:
                if delivered >= count:
                    return
                if frame.image is not None and size is not None:
                    t0 = time.perf_counter()
                    frame.image = fit_frame(frame.image, size)
                    frame.read_ms += (time.perf_counter() - t0) * 1e3
                produced += 1
                delivered += 1
                yield frame
        if produced == 0:
            raise ValueError(f"source {source} delivered no frames")
        if on_restart is not None:
            on_restart()


def bench_pipeline(classifier: EmotionClassifier, setup: PipelineSetup, warmup: int,
                   iterations: int) -> dict[str, Any]:
    """The real pipeline over ``warmup + iterations`` frames; statistics over the last ``iterations``."""
    detector = create_detector(setup.detector, setup.tracking)
    pipeline = Pipeline(detector, classifier)
    samples: dict[str, list[float]] = {s: [] for s in (*PIPELINE_STAGES, "total")}
    boxes: list[list[list[int]]] = []
    faces = errors = 0
    reset = getattr(detector, "reset", None)
    for i, frame in enumerate(looped_frames(setup.source, warmup + iterations, setup.frame_size, reset)):
        t0 = time.perf_counter()
        event = pipeline.process(frame)
        json.dumps(event)
        process_ms = (time.perf_counter() - t0) * 1e3
        if i < warmup:
            continue
        if "error" in event:
            errors += 1
            boxes.append([])
            continue
        t = event["timings_ms"]
        inner = t["detect"] + t["preprocess"] + t["infer"]
        for stage in ("detect", "preprocess", "infer"):
            samples[stage].append(t[stage])
        samples["read"].append(frame.read_ms)
        samples["postprocess"].append(max(process_ms - inner, 0.0))
        samples["total"].append(frame.read_ms + process_ms)
        faces += len(event["faces"])
        boxes.append([f["box"] for f in event["faces"]])
    if not samples["total"]:
        raise ValueError(f"every benchmark frame of {setup.source} was an error frame")
    stages = {s: summarize(v) for s, v in samples.items()}
    return {
        "source": setup.source,
        "frame_size": list(setup.frame_size) if setup.frame_size else "native",
        "detector": {"kind": type(setup.detector).__name__, **asdict(setup.detector)},
        "tracking": asdict(setup.tracking),
        "detection_passes": getattr(detector, "detections", None),
        "warmup": warmup, "frames": len(samples["total"]), "faces": faces, "errors": errors,
        "fps": stages["total"]["per_second"],
        "stages": stages,
        "samples_ms": {s: [round(v, 3) for v in vals] for s, vals in samples.items()},
        "boxes": boxes,
    }
