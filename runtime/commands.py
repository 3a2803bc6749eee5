"""Runtime subcommands (``detect``, ``eval``); they load nothing beyond numpy, OpenCV and one backend."""

from __future__ import annotations

import json
import sys
from typing import Any, TextIO

import cv2
import numpy as np

from .classifier import DEFAULT_ZOOM
from .datasets import load_class_folders
from .detect import DetectorConfig, HaarConfig
from .limits import DEFAULT_MAX_IMAGE_PIXELS
from .metrics import classification_summary, expected_calibration_error, format_summary
from .pipeline import Pipeline, TimingSummary
from .recognizer import EmotionRecognizer
from .redact import redact
from .sources import CaptureOptions, SourceError, open_source
from .stills import StillConfig
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
    annotate: str | None = None,
    show: bool = False,
    providers: list[str] | None = None,
    capture: CaptureOptions | None = None,
    still: StillConfig | None = None,
    flip: bool = True,
    zoom: float | None = DEFAULT_ZOOM,
) -> dict[str, Any]:
    """Print one JSON event per frame; model and detector are checked before capture starts.

    Images and folders are detected as still images (``still``), streams every
    ``tracking.detect_every`` frames with tracking in between (docs/detection.md).

    ``annotate`` writes each frame with its faces drawn (see :class:`~.annotate.AnnotatedOutput`);
    ``show`` displays them in a window (needs an OpenCV build with a GUI). A video file that ends
    before its declared length raises :class:`SourceError` once its events and the summary are out.
    """
    from .annotate import AnnotatedOutput, Window, draw_faces, require_gui

    out = out or sys.stdout
    if show:
        require_gui()  # before the model loads: say it at once
    with EmotionRecognizer(model, backend, haar, threads=threads, tracking=tracking,
                           providers=providers, still=still, flip=flip, zoom=zoom) as recognizer:
        pipeline = Pipeline(recognizer)
        summary = TimingSummary()
        with open_source(source, capture) as frames:
            writer = AnnotatedOutput(annotate, fps=_fps(frames)) if annotate else None
            window = Window() if show else None
            try:
                for frame in frames:
                    if max_frames is not None and summary.frames >= max_frames:
                        break
                    result = pipeline.run(frame)
                    summary.add(result)
                    out.write(redact(json.dumps(result.to_event())) + "\n")
                    out.flush()
                    if frame.image is None or (writer is None and window is None):
                        continue
                    picture = draw_faces(frame.image, result.faces)
                    if writer is not None:
                        writer.write(frame, picture)
                    if window is not None and not window.show(picture, 0 if frame.position_s is None
                                                              and not frames.live else 1):
                        break
            finally:
                if writer is not None:
                    writer.close()
                if window is not None:
                    window.close()
    if writer is not None and summary_out is not None:
        print("annotated: " + ", ".join(str(p) for p in writer.written[:3])
              + (f" and {len(writer.written) - 3} more" if len(writer.written) > 3 else ""), file=summary_out)
    result_summary = summary.as_dict()
    result_summary["model"] = str(recognizer.model_path)
    result_summary["backend"] = recognizer.backend
    result_summary["backend_info"] = info = recognizer.backend_info
    if summary_out is not None:
        m = recognizer.manifest
        on = f" on {', '.join(info['providers'])}" if info.get("providers") else ""
        print(f"model {recognizer.model_path} ({recognizer.backend}{on}, {m.precision}, {m.head} head, "
              f"{'calibrated' if recognizer.calibrated else 'uncalibrated'} probabilities)", file=summary_out)
        print(summary.format(), file=summary_out)
    incomplete = getattr(frames, "incomplete", None)  # a video file that ended before its declared length
    if incomplete:
        raise SourceError(incomplete)
    return result_summary


def _fps(source: object) -> float:
    """The frame rate a video or camera reports (for an annotated video), 15 when it says nothing."""
    cap = getattr(source, "_cap", None)
    fps = float(cap.get(cv2.CAP_PROP_FPS)) if cap is not None else 0.0
    return fps if 1.0 <= fps <= 240.0 else 15.0


def run_eval(
    model: str | None, data: str, backend: str | None = None, threads: int | None = None,
    limit_per_class: int | None = None, batch_size: int = 64, providers: list[str] | None = None,
    max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS, flip: bool = True, zoom: float | None = DEFAULT_ZOOM,
) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class precision/recall, confusion matrix and the probabilities' expected
    calibration error (``ece``) of an artifact on a class-folder set, with the given test-time views."""
    with EmotionRecognizer(model, backend, detector=None, threads=threads, providers=providers,
                           flip=flip, zoom=zoom) as recognizer:
        spec = recognizer.manifest.input
        ds = load_class_folders(data, (spec.height, spec.width), limit_per_class, max_pixels)
        labels = recognizer.labels
        # Map the dataset's canonical labels onto the model's label order.
        order = {name: i for i, name in enumerate(labels)}
        missing = [n for n in ds.label_names if n not in order]
        if missing:
            raise ValueError(f"model {recognizer.model_path} has no class for {', '.join(missing)}")
        faces = [face for i in range(0, len(ds.images), batch_size)
                 for face in recognizer.classify(ds.images[i : i + batch_size])]
        calibrated = recognizer.calibrated
    y_true = np.asarray([order[ds.label_names[y]] for y in ds.labels])
    summary = classification_summary(y_true, np.asarray([order[f.label] for f in faces]), labels)
    # How far the reported probabilities are from the accuracy they claim, on these faces.
    probabilities = np.asarray([[f.probabilities[name] for name in labels] for f in faces])
    summary["ece"] = expected_calibration_error(probabilities, y_true)
    summary["calibrated"] = calibrated
    summary.update({"model": str(recognizer.model_path), "backend": recognizer.backend,
                    "backend_info": recognizer.backend_info, "data": str(data),
                    "test_time_flip": flip, "test_time_zoom": zoom, "skipped": ds.skipped})
    return summary


def print_eval(summary: dict[str, Any], as_json: bool, out: TextIO | None = None) -> None:
    """Print an eval result as a table or JSON (to ``out``, default the current ``sys.stdout``)."""
    out = out or sys.stdout
    if as_json:
        out.write(json.dumps(summary, indent=2) + "\n")
    else:
        zoom = summary.get("test_time_zoom")
        flip = (", test-time flip" if summary.get("test_time_flip") else "") + (f", zoom {zoom:g}" if zoom else "")
        out.write(f"model {summary['model']} ({summary['backend']}{flip}) on {summary['data']}\n")
        out.write(format_summary(summary) + "\n")
        if "ece" in summary:
            how = "temperature-scaled" if summary.get("calibrated") else "plain softmax: no temperature in the manifest"
            out.write(f"\nexpected calibration error {summary['ece'] * 100:.2f} % ({how} probabilities)\n")
