"""What both conversion routes share: the targets, the calibration sample, the parity gate and the report.

:mod:`.run` converts a Keras model; :mod:`.on_device` builds TensorRT engines from an ONNX
artifact on the GPU device. Both import this module, and neither imports the other's user.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from edgefer.runtime.datasets import FaceDataset
from edgefer.runtime.formats import ExportFormat, all_targets, get_format, parse_target
from edgefer.runtime.manifest import Manifest

from .exporters import ExportOptions, dependencies
from .parity import Parity, parity_of_scores
from .temperature import artifact_scores, calibration_from_scores
from .temperature import describe as describe_temperature

log = logging.getLogger(__name__)


class ConversionError(Exception):
    """Conversion could not run (bad input) or an artifact failed its parity check."""


def sample_calibration(ds: FaceDataset, count: int, seed: int) -> np.ndarray:
    """A class-stratified random sample of real training faces for INT8 calibration."""
    rng = np.random.default_rng(seed)
    per_class = max(1, count // len(np.unique(ds.labels)))
    picks: list[int] = []
    for c in np.unique(ds.labels):
        idx = np.flatnonzero(ds.labels == c)
        picks.extend(rng.choice(idx, min(per_class, len(idx)), replace=False))
    rng.shuffle(picks)
    return ds.images[np.asarray(picks[:count])]


def resolve_targets(requested: Sequence[str], options: ExportOptions) -> list[tuple[ExportFormat, str]]:
    """``["tflite", "onnx:int8", "all"]`` -> ordered, de-duplicated (format, precision) pairs, dependencies first.

    ``all`` means every portable target (each TFLite and ONNX precision); TensorRT engines
    are only built when named, on the device that will run them.
    """
    wanted: list[tuple[ExportFormat, str]] = []
    for text in requested:
        try:
            wanted.extend(all_targets() if text.strip() == "all" else [parse_target(text)])
        except ValueError as exc:
            raise ConversionError(f"--to {text!r}: {exc} (or 'all')") from None
    ordered: list[tuple[ExportFormat, str]] = []
    for fmt, precision in wanted:
        for dep_name, dep_precision in dependencies(fmt, precision, options):
            dep = (get_format(dep_name), dep_precision)
            if dep not in ordered:
                log.info("%s:%s is built from %s:%s; exporting that too", fmt.name, precision, dep_name, dep_precision)
                ordered.append(dep)
        if (fmt, precision) not in ordered:
            ordered.append((fmt, precision))
    return ordered


def check_buildable(targets: list[tuple[ExportFormat, str]]) -> None:
    """Fail before any work when a target's build tools are missing (TensorRT off a GPU host)."""
    if any(fmt.name == "tensorrt" for fmt, _ in targets):
        from edgefer.runtime.backends import BackendUnavailable
        from edgefer.runtime.backends.tensorrt import import_tensorrt

        try:
            import_tensorrt()
        except BackendUnavailable as exc:
            raise ConversionError(
                f"--to tensorrt builds the engine on the GPU device that will run it, and this machine cannot: {exc}"
            ) from None


def gate_artifact(
    path: Path, manifest: Manifest, val: FaceDataset, ref_scores: np.ndarray, val_data: str | Path,
    max_drop_points: float, min_agreement: float, training_metrics: Any, export_seconds: float,
    fields: dict[str, Any], reference: str = "Keras",
) -> tuple[dict[str, Any], Parity]:
    """Write ``manifest``, run ``path`` through the runtime on ``val`` and record parity in it.

    Returns the report entry and the :class:`Parity` verdict.
    """
    manifest.write(path)
    by_views = artifact_scores(path, val.images)  # every view setting's scores; parity is of one view a face
    scores = by_views["one"]
    parity = parity_of_scores(path, scores, val.labels, ref_scores, max_drop_points, list(manifest.labels),
                              min_agreement, reference)
    # The probabilities the runtime reports are softmax(scores / T), T fitted on these validation
    # faces (never a test set) with this artifact's own scores: an INT8 head's are not the Keras model's.
    manifest.calibration = calibration_from_scores(by_views, val.labels, f"{val_data} ({len(val)} faces)")
    manifest.extra["metrics"] = {
        "validation": str(val_data),
        "keras_accuracy": parity.keras_accuracy,
        "accuracy": parity.artifact_accuracy,
        "macro_f1": parity.artifact_macro_f1,
        "agreement_with_keras": parity.agreement,
        "samples": parity.samples,
        "training_metrics": training_metrics,
    }
    manifest.extra["parity"] = {"reference": reference, "max_drop_points": max_drop_points,
                                "min_agreement": min_agreement, "drop_points": round(parity.drop_points, 3),
                                "agreement": parity.agreement, "passed": parity.passed}
    manifest.write(path)
    log.info("%s written and checked in %.1f s", path, export_seconds)
    print(parity.describe())
    print(describe_temperature(path, manifest.calibration))
    return {
        "path": str(path), "format": manifest.format, "precision": manifest.precision,
        "size_bytes": path.stat().st_size, "export_seconds": round(export_seconds, 1),
        "float_ops": fields.get("float_ops", []),
        "quantization": fields.get("quantization") or manifest.input_quantization,
        "parity": parity.to_dict(),
        "temperature": manifest.calibration.to_dict(),
    }, parity


class ConversionReport:
    """The JSON report of one conversion: ``<out>/<name>.conversion.json`` and, if given, ``report_path``.

    Rewritten after every artifact with ``complete: false``, so a conversion that dies later
    (out of memory on a large model, a failing exporter) still leaves the checked artifacts' report.
    """

    def __init__(self, report: dict[str, Any], out_dir: Path, name: str, report_path: str | Path | None) -> None:
        self.report = report
        self._paths = [out_dir / f"{name}.conversion.json"] + ([Path(report_path)] if report_path is not None else [])
        self._failures: list[Parity] = []

    def _write(self, complete: bool) -> None:
        text = json.dumps({**self.report, "complete": complete}, indent=2) + "\n"
        for path in self._paths:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)

    def add(self, entry: dict[str, Any], parity: Parity) -> None:
        """Record one gated artifact and rewrite the (still incomplete) report."""
        self.report["artifacts"].append(entry)
        if not parity.passed:
            self._failures.append(parity)
        self._write(complete=False)

    def finish(self) -> dict[str, Any]:
        """Write the final report (``complete: true``); raise if any artifact failed its gate."""
        self._write(complete=True)
        if self._failures:
            raise ConversionError("; ".join(p.describe() for p in self._failures))
        return self.report
