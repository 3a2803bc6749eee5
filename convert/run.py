"""``edgefer convert``: Keras model (SVM folded) -> checked artifacts with sidecar manifests."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from edgefer import __version__
from edgefer.runtime.datasets import FaceDataset, load_dataset
from edgefer.runtime.formats import get_format
from edgefer.runtime.manifest import Manifest, sha256_of
from edgefer.runtime.preprocess import InputSpec

from .parity import check_parity

log = logging.getLogger(__name__)

DEFAULT_PRECISION = {"tflite": "int8", "onnx": "fp32"}


class ConversionError(Exception):
    """Conversion could not run (bad input) or an artifact failed its parity check."""


def _load_meta(model_path: Path) -> dict[str, Any]:
    meta_path = model_path.parent / "meta.json"
    if not meta_path.is_file():
        raise ConversionError(
            f"{meta_path} not found: convert needs the meta.json that `edgefer train` writes beside the model"
        )
    return json.loads(meta_path.read_text())


def sample_calibration(ds: FaceDataset, count: int, seed: int) -> np.ndarray:
    """A class-stratified random sample of real training faces for INT8 calibration."""
    rng = np.random.default_rng(seed)
    per_class = max(1, count // len(np.unique(ds.labels)))
    picks = []
    for c in np.unique(ds.labels):
        idx = np.flatnonzero(ds.labels == c)
        picks.extend(rng.choice(idx, min(per_class, len(idx)), replace=False))
    rng.shuffle(picks)
    return ds.images[np.asarray(picks[:count])]


def _export(model, fmt_name: str, precision: str, calibration: np.ndarray, spec: InputSpec, path: Path,
            meta: dict[str, Any]) -> dict[str, Any]:
    if fmt_name == "tflite" and precision == "int8":
        from .tflite import export_tflite_int8

        q = export_tflite_int8(model, calibration, spec, path)
        return {"input_quantization": q["input"], "output_quantization": q["output"]}
    if fmt_name == "onnx" and precision == "fp32":
        from .onnx_export import export_onnx

        export_onnx(model, spec, path, metadata={
            "labels": json.dumps(meta["labels"]), "input": json.dumps(spec.to_dict()), "head": meta["head"],
        })
        return {}
    raise ConversionError(f"{fmt_name} at {precision} is not supported yet; supported: tflite int8, onnx fp32")


def run_conversion(
    model_path: str | Path,
    out_dir: str | Path,
    calib_data: str | Path,
    val_data: str | Path,
    formats: list[str] = ["tflite", "onnx"],
    name: str = "model",
    num_calib: int = 300,
    max_drop_points: float = 1.0,
    val_limit_per_class: int | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Export each format, write its manifest, evaluate it through the runtime and gate on accuracy."""
    import keras

    from edgefer.train.data import predict_batches

    model_path, out_dir = Path(model_path), Path(out_dir)
    if not model_path.is_file():
        raise ConversionError(f"Keras model {model_path} does not exist")
    for f in formats:
        try:
            get_format(f)
        except ValueError as exc:
            raise ConversionError(str(exc)) from None
    meta = _load_meta(model_path)
    spec = InputSpec.from_dict(meta["input"])
    out_dir.mkdir(parents=True, exist_ok=True)
    model = keras.models.load_model(model_path)

    size = (spec.height, spec.width)
    calibration = sample_calibration(load_dataset(calib_data, "train", size), num_calib, seed)
    val = load_dataset(val_data, "val", size, val_limit_per_class)
    keras_pred = predict_batches(model, val.images, spec).argmax(1)

    report: dict[str, Any] = {"model": str(model_path), "validation": str(val_data), "artifacts": []}
    failures = []
    for fmt_name in formats:
        fmt = get_format(fmt_name)
        precision = DEFAULT_PRECISION[fmt_name]
        path = out_dir / f"{name}_{precision}{fmt.suffix}"
        t0 = time.time()
        quant = _export(model, fmt_name, precision, calibration, spec, path, meta)
        manifest = Manifest(
            format=fmt.name, precision=precision, labels=list(meta["labels"]), input=spec, head=meta["head"],
            sha256=sha256_of(path), input_quantization=quant.get("input_quantization"),
            output_quantization=quant.get("output_quantization"),
            extra={
                "architecture": meta.get("architecture"),
                "svm": meta.get("svm"),
                "training": {k: v for k, v in meta.get("training", {}).items() if k != "config"},
                "calibration": {"faces": int(len(calibration)), "data": str(calib_data)} if quant else None,
                "edgefer_version": __version__,
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "size_bytes": path.stat().st_size,
            },
        )
        manifest.write(path)
        parity = check_parity(path, val.images, val.labels, keras_pred, max_drop_points, list(meta["labels"]))
        manifest.extra["metrics"] = {
            "validation": str(val_data),
            "keras_accuracy": parity.keras_accuracy,
            "accuracy": parity.artifact_accuracy,
            "macro_f1": parity.artifact_macro_f1,
            "agreement_with_keras": parity.agreement,
            "samples": parity.samples,
            "training_metrics": meta.get("metrics"),
        }
        manifest.write(path)
        log.info("%s written in %.1f s", path, time.time() - t0)
        print(parity.describe())
        report["artifacts"].append({"path": str(path), "format": fmt.name, "precision": precision,
                                    "size_bytes": path.stat().st_size, "parity": parity.to_dict()})
        if not parity.passed:
            failures.append(parity)
    (out_dir / f"{name}.conversion.json").write_text(json.dumps(report, indent=2) + "\n")
    if failures:
        raise ConversionError("; ".join(p.describe() for p in failures))
    return report
