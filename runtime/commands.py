"""Runtime subcommands (``detect``, ``eval``); they load nothing beyond numpy, OpenCV and one backend."""

from __future__ import annotations

import json
import sys
from typing import Any, TextIO

import numpy as np

from .classifier import EmotionClassifier
from .datasets import load_class_folders
from .detect import DetectorConfig, HaarConfig, create_detector
from .metrics import classification_summary, format_summary
from .pipeline import Pipeline, TimingSummary
from .sources import open_source
from .tracking import TrackConfig


def run_detect(
    source: str,
    model: str | None = None,
    backend: str | None = None,
    threads: int | None = None,
    haar: DetectorConfig = HaarConfig(),
    max_frames: int | None = None,
    out: TextIO | None = None,
    summary_out: TextIO | None = sys.stderr,
    tracking: TrackConfig | None = None,
) -> dict[str, Any]:
    """Print one JSON event per frame; model and detector are checked before capture starts."""
    out = out or sys.stdout
    classifier = EmotionClassifier(model, backend, threads)
    try:
        pipeline = Pipeline(create_detector(haar, tracking), classifier)
        summary = TimingSummary()
        with open_source(source) as frames:
            for frame in frames:
                if max_frames is not None and summary.frames >= max_frames:
                    break
                event = pipeline.process(frame)
                summary.add(event)
                out.write(json.dumps(event) + "\n")
                out.flush()
    finally:
        classifier.close()
    result = summary.as_dict()
    result["model"] = str(classifier.path)
    result["backend"] = classifier.backend.name
    if summary_out is not None:
        print(f"model {classifier.path} ({classifier.backend.name}, {classifier.manifest.precision}, "
              f"{classifier.manifest.head} head)", file=summary_out)
        print(summary.format(), file=summary_out)
    return result


def run_eval(
    model: str | None, data: str, backend: str | None = None, threads: int | None = None,
    limit_per_class: int | None = None,
) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class precision/recall and confusion matrix of an artifact on a class-folder set."""
    classifier = EmotionClassifier(model, backend, threads)
    spec = classifier.spec
    try:
        ds = load_class_folders(data, (spec.height, spec.width), limit_per_class)
        scores = classifier.predict_dataset(ds.images)
    finally:
        classifier.close()
    # Map the dataset's canonical labels onto the model's label order.
    order = {name: i for i, name in enumerate(classifier.labels)}
    missing = [n for n in ds.label_names if n not in order]
    if missing:
        raise ValueError(f"model {classifier.path} has no class for {', '.join(missing)}")
    y_true = np.asarray([order[ds.label_names[y]] for y in ds.labels])
    summary = classification_summary(y_true, scores.argmax(1), classifier.labels)
    summary.update({"model": str(classifier.path), "backend": classifier.backend.name, "data": str(data),
                    "skipped": ds.skipped})
    return summary


def print_eval(summary: dict[str, Any], as_json: bool, out: TextIO | None = None) -> None:
    """Print an eval result as a table or JSON (to ``out``, default the current ``sys.stdout``)."""
    out = out or sys.stdout
    if as_json:
        out.write(json.dumps(summary, indent=2) + "\n")
    else:
        out.write(f"model {summary['model']} ({summary['backend']}) on {summary['data']}\n")
        out.write(format_summary(summary) + "\n")
