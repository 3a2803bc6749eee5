"""On the GPU device: TensorRT engines from an ONNX artifact, without TensorFlow or the Keras model.

``edgefer convert --model default_int8.onnx --to tensorrt:int8 --val-data faces/ --out models/``
builds the engine where it will run. The source ONNX artifact (already gated against Keras
when it was converted) is the parity reference here: the engine must agree with it, and its
accuracy must not drop below it, by the same thresholds.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Sequence

from edgefer import __version__
from edgefer.runtime.classifier import EmotionClassifier
from edgefer.runtime.datasets import load_dataset
from edgefer.runtime.manifest import Manifest, ModelError, sha256_of

from .exporters import ExportOptions
from .gate import (ConversionError, ConversionReport, check_buildable, gate_artifact, resolve_targets,
                   sample_calibration)


def _source_for(precision: str, onnx_manifest: Manifest, path: Path, options: ExportOptions) -> None:
    """The ONNX artifact must be the one the requested engine is built from."""
    needed = "int8" if precision == "int8" and options.trt_int8_route == "qdq" else "fp32"
    if onnx_manifest.precision != needed:
        raise ConversionError(
            f"a TensorRT {precision} engine ({'QDQ route' if needed == 'int8' else 'from fp32'}) is built from the "
            f"{needed} ONNX artifact, but {path} is {onnx_manifest.precision}; pass <name>_{needed}.onnx"
        )


def build_engines_from_onnx(
    onnx_path: Path, out_dir: Path, formats: Sequence[str], val_data: str | Path, calib_data: str | Path | None,
    name: str, num_calib: int, max_drop_points: float, val_limit_per_class: int | None, seed: int,
    min_agreement: float, options: ExportOptions, report_path: str | Path | None,
) -> dict[str, Any]:
    """Build each requested TensorRT target from ``onnx_path`` and gate it against that ONNX model."""
    from .tensorrt_build import build_engine

    wanted = [(f, p) for f, p in resolve_targets(formats, options) if f.name == "tensorrt"]
    others = [t for t in formats if not t.strip().startswith("tensorrt")]
    if not wanted or others:
        raise ConversionError(
            f"from an ONNX model only TensorRT engines can be built (--to tensorrt:fp16 / tensorrt:int8), not "
            f"{', '.join(others) or 'nothing'}; TFLite and ONNX artifacts come from the Keras model.keras"
        )
    check_buildable(wanted)
    try:
        source = Manifest.load(onnx_path)
    except ModelError as exc:
        raise ConversionError(str(exc)) from None
    for _, precision in wanted:
        _source_for(precision, source, onnx_path, options)
    spec = source.input
    size = (spec.height, spec.width)
    entropy = any(p == "int8" for _, p in wanted) and options.trt_int8_route == "entropy"
    if entropy and calib_data is None:
        raise ConversionError("the entropy-calibrator route needs --calib-data (real training faces)")
    try:
        val = load_dataset(val_data, "val", size, val_limit_per_class)
        calibration = (sample_calibration(load_dataset(calib_data, "train", size), num_calib, seed)
                       if entropy else None)
    except (FileNotFoundError, ValueError) as exc:
        raise ConversionError(str(exc)) from None
    reference = EmotionClassifier(onnx_path)
    try:
        ref_scores = reference.predict_dataset(val.images)
    finally:
        reference.close()

    out_dir.mkdir(parents=True, exist_ok=True)
    calib_record = ({"faces": int(len(calibration)), "data": str(calib_data), "seed": seed}
                    if calibration is not None else None)
    report = ConversionReport({
        "model": str(onnx_path), "name": name, "validation": str(val_data), "samples": int(len(val)),
        "keras_accuracy": float((ref_scores.argmax(1) == val.labels).mean()),
        "reference": f"ONNX {onnx_path.name}",
        "gate": {"max_drop_points": max_drop_points, "min_agreement": min_agreement},
        "int8_calibration": calib_record,
        "graph": source.extra.get("graph"), "svm": source.extra.get("svm"), "artifacts": [],
    }, out_dir, name, report_path)
    for fmt, precision in wanted:
        path = out_dir / fmt.artifact_name(name, precision)
        t0 = time.time()
        try:
            record = build_engine(onnx_path, path, precision, spec, options.trt_int8_route, calibration,
                                  options.trt_max_batch)
        except ValueError as exc:
            raise ConversionError(f"tensorrt {precision} -> {path}: {exc}") from None
        extra = {k: v for k, v in source.extra.items() if k not in ("metrics", "parity", "float_ops", "quantization")}
        extra.update(
            tensorrt=record, edgefer_version=__version__, size_bytes=path.stat().st_size,
            created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            int8_calibration=(calib_record if precision == "int8" and entropy
                              else source.extra.get("int8_calibration")),
        )
        manifest = Manifest(fmt.name, precision, list(source.labels), spec, source.head, sha256_of(path),
                            extra=extra)
        entry, parity = gate_artifact(
            path, manifest, val, ref_scores, val_data, max_drop_points, min_agreement,
            (source.extra.get("metrics") or {}).get("training_metrics"), time.time() - t0, {"tensorrt": record},
            reference=f"ONNX {onnx_path.name}",
        )
        report.add(entry, parity)
    return report.finish()
