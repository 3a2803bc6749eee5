"""``edgefer convert``: Keras model (head folded in) -> checked artifacts with sidecar manifests.

Each requested (format, precision) target is exported, described by its manifest, run
through the runtime backend on a labelled set and gated on accuracy drop and top-1
agreement with the Keras model. What a target is built from (the fp32 ONNX model under
an INT8 QDQ model or a TensorRT engine) is exported and checked too.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from edgefer import __version__
from edgefer.runtime.datasets import FaceDataset, load_dataset
from edgefer.runtime.formats import ExportFormat
from edgefer.runtime.manifest import Manifest, sha256_of
from edgefer.runtime.preprocess import InputSpec

from .exporters import ExportOptions, export
from .gate import (ConversionError, ConversionReport, check_buildable, gate_artifact, resolve_targets,
                   sample_calibration)
from .on_device import build_engines_from_onnx

__all__ = ["ConversionError", "run_conversion", "sample_calibration"]

log = logging.getLogger(__name__)

def _load_meta(model_path: Path) -> dict[str, Any]:
    meta_path = model_path.parent / "meta.json"
    if not meta_path.is_file():
        raise ConversionError(
            f"{meta_path} not found: convert needs the meta.json that `edgefer train` writes beside the model"
        )
    return json.loads(meta_path.read_text())


def _manifest(fmt: ExportFormat, precision: str, path: Path, spec: InputSpec, meta: dict[str, Any],
              fields: dict[str, Any], graph: dict[str, Any], calibration: dict[str, Any] | None) -> Manifest:
    extra = {
        "architecture": meta.get("architecture"),
        "svm": meta.get("svm"),
        "head_kind": meta.get("head_kind"),
        "training": {k: v for k, v in meta.get("training", {}).items() if k != "config"},
        "int8_calibration": calibration,
        "edgefer_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "size_bytes": path.stat().st_size,
        "graph": graph,
    }
    extra.update({k: v for k, v in fields.items() if k not in ("input_quantization", "output_quantization")})
    return Manifest(
        format=fmt.name, precision=precision, labels=list(meta["labels"]), input=spec, head=meta["head"],
        sha256=sha256_of(path), input_quantization=fields.get("input_quantization"),
        output_quantization=fields.get("output_quantization"), extra=extra,
    )


def _int8_model(model: Any, targets: list[tuple[ExportFormat, str]], calibration: np.ndarray, spec: InputSpec,
                options: ExportOptions) -> tuple[Any, dict[str, Any] | None]:
    """The model INT8 targets are exported from (head conditioned unless turned off) and what was done."""
    if not options.condition_int8_head or not any(p == "int8" for _, p in targets):
        return model, None
    from .condition import condition_head_for_int8

    int8_model, record = condition_head_for_int8(model, calibration, spec)
    for layer, scale in record.get("branch_scales", {}).items():
        log.warning("INT8: head branch %s rescaled by %.4g (exact in float) to share the other branch's range",
                    layer, scale)
    if record.get("hidden_features"):
        log.warning("INT8: %d of %d head inputs vary less than half an int8 step on the calibration faces; "
                    "their mean replaces them in the INT8 artifacts", record["hidden_features"], record["features"])
    return int8_model, record


def _onnx_int8_model(model: Any, int8_model: Any, targets: list[tuple[ExportFormat, str]],
                     calibration: np.ndarray, spec: InputSpec,
                     options: ExportOptions) -> tuple[Any, dict[str, Any] | None]:
    """The model the QDQ ONNX INT8 artifact is quantised from, and the head equalisation record.

    With ``options.onnx_float_head`` (the default) that is ``model`` with its head inputs
    equalised (:mod:`.equalise`), the head then staying in float; where the model cannot be
    equalised (e.g. the hybrid's concatenated head), the INT8-conditioned ``int8_model``.
    """
    if not options.onnx_float_head or not any(f.name == "onnx" and p == "int8" for f, p in targets):
        return int8_model, None
    from .equalise import equalise_head_input

    equalised, record = equalise_head_input(model, calibration, spec)
    if not record["applied"]:
        log.warning("ONNX INT8: head kept in int8 (%s)", record.get("reason", "no channel needed scaling"))
        return int8_model, record
    log.info("ONNX INT8: head kept in float, %d of %d head inputs scaled up to a common peak (at most x%.4g)",
             record["scaled_channels"], record["channels"], record["max_scale"])
    return equalised, record


def _adarounded(sources: dict[str, Any], targets: list[tuple[ExportFormat, str]], train: FaceDataset,
                calibration: np.ndarray, spec: InputSpec, options: ExportOptions, seed: int,
                float_heads: frozenset[str] = frozenset()) -> dict[str, tuple[Any, dict[str, Any]]]:
    """Per INT8 format named in ``options.adaround``, its source model AdaRounded for its activation quantisation.

    TFLite quantises activations asymmetrically, the QDQ ONNX model (and the TensorRT engine
    built from it) symmetrically (ReLU6 outputs centred) unless ``--onnx-asymmetric``, so each
    gets its own rounding. ``sources`` maps format names to the model each is exported from;
    formats in ``float_heads`` keep their head in float, so it is not rounded.
    """
    formats = {fmt.name for fmt, precision in targets if precision == "int8" and fmt.name in options.adaround}
    for name in sorted(set(options.adaround) - formats):
        log.warning("--adaround %s: no %s INT8 target is being exported (--to), so nothing is rounded for it",
                    name, name)
    if not formats:
        return {}
    from .adaround import AdaRoundUnsupported, adaround

    faces = sample_calibration(train, options.adaround_faces, seed + 1)
    rounded: dict[str, tuple[Any, dict[str, Any]]] = {}
    for name in sorted(formats):
        symmetric = name == "onnx" and options.onnx_symmetric
        centred = symmetric and options.onnx_centre
        log.info("AdaRound for %s INT8 (%s activations) on %d faces, %d iterations per layer", name,
                 ("centred " if centred else "") + ("symmetric" if symmetric else "asymmetric"), len(faces),
                 options.adaround_iterations)
        try:
            rounded[name] = adaround(sources[name], faces, calibration, spec, symmetric_activations=symmetric,
                                     centred_activations=centred, iterations=options.adaround_iterations, seed=seed,
                                     float_head=name in float_heads)
        except AdaRoundUnsupported as exc:
            raise ConversionError(f"--adaround {name}: {exc}; convert without --adaround") from None
    return rounded


def _check_gate_args(options: ExportOptions, min_agreement: float) -> None:
    if options.opset < 13:
        raise ConversionError(f"ONNX opset {options.opset} is too old: edgefer exports opset 13 or newer")
    if not 0.0 <= min_agreement <= 1.0:
        raise ConversionError(f"minimum agreement {min_agreement!r} must be a fraction between 0 and 1")


def run_conversion(
    model_path: str | Path,
    out_dir: str | Path,
    calib_data: str | Path | None,
    val_data: str | Path,
    formats: Sequence[str] = ("tflite", "onnx"),
    name: str = "model",
    num_calib: int = 300,
    max_drop_points: float = 1.0,
    val_limit_per_class: int | None = None,
    seed: int = 0,
    *,
    min_agreement: float = 0.98,
    options: ExportOptions | None = None,
    report_path: str | Path | None = None,
) -> dict[str, Any]:
    """Export each target, write its manifest, evaluate it through the runtime and gate it.

    The gate fails an artifact whose accuracy is more than ``max_drop_points`` below the
    Keras model's or whose top-1 agreement with Keras is below ``min_agreement`` (a
    fraction). Every artifact is still written and reported; then :class:`ConversionError`
    names each failure. The JSON report goes to ``<out>/<name>.conversion.json`` and, if
    given, ``report_path`` too.

    ``model_path`` may also be an ``.onnx`` artifact with its manifest: on a GPU device without
    TensorFlow, that builds TensorRT engines from it (see :mod:`edgefer.convert.on_device`).
    ``calib_data`` is needed by INT8 targets calibrated here (TFLite, ONNX, the entropy route).
    """
    options = options or ExportOptions()
    model_path, out_dir = Path(model_path), Path(out_dir)
    if not model_path.is_file():
        raise ConversionError(
            f"model {model_path} does not exist (pass a model.keras, or on a GPU device an .onnx artifact)"
        )
    _check_gate_args(options, min_agreement)
    if model_path.suffix.lower() == ".onnx":
        if options.adaround:
            raise ConversionError(
                "--adaround rounds the Keras model's weights before export; pass the model.keras, not an .onnx "
                "artifact (an engine built from an INT8 ONNX made with --adaround onnx keeps its rounding)"
            )
        return build_engines_from_onnx(model_path, out_dir, formats, val_data, calib_data, name, num_calib,
                                       max_drop_points, val_limit_per_class, seed, min_agreement, options,
                                       report_path)
    import keras

    from edgefer.train.data import predict_batches

    from .graph import GraphError, check_single_io, describe_graph

    targets = resolve_targets(formats, options)
    check_buildable(targets)
    int8_wanted = any(precision == "int8" for _, precision in targets)
    if calib_data is None and int8_wanted:
        raise ConversionError("--calib-data is required for INT8 targets: INT8 is calibrated on real training "
                              "faces (fp32 targets alone need only --val-data)")
    meta = _load_meta(model_path)
    spec = InputSpec.from_dict(meta["input"])
    model = keras.models.load_model(model_path)
    try:
        check_single_io(model)
    except GraphError as exc:
        raise ConversionError(str(exc)) from None
    graph = describe_graph(model)
    out_dir.mkdir(parents=True, exist_ok=True)

    size = (spec.height, spec.width)
    try:
        val = load_dataset(val_data, "val", size, val_limit_per_class)
        # fp32 targets read no training faces: nothing is calibrated or rounded, so `train` is never
        # sampled (AdaRound runs only for INT8 formats) and the validation set stands in for its type.
        train = load_dataset(calib_data, "train", size) if int8_wanted else val
        calibration = sample_calibration(train, num_calib, seed) if int8_wanted else val.images[:0]
    except (FileNotFoundError, ValueError) as exc:
        raise ConversionError(str(exc)) from None
    keras_scores = predict_batches(model, val.images, spec)
    calib_record = {"faces": int(len(calibration)), "data": str(calib_data), "seed": seed} if int8_wanted else None
    int8_model, conditioning = _int8_model(model, targets, calibration, spec, options)
    onnx_int8_model, equalisation = _onnx_int8_model(model, int8_model, targets, calibration, spec, options)
    float_heads = frozenset({"onnx"} if onnx_int8_model is not int8_model else set())
    sources = {"tflite": int8_model, "onnx": onnx_int8_model}
    rounded = _adarounded(sources, targets, train, calibration, spec, options, seed, float_heads)

    report = ConversionReport({
        "model": str(model_path), "name": name, "validation": str(val_data), "samples": int(len(val)),
        "keras_accuracy": float((keras_scores.argmax(1) == val.labels).mean()),
        "gate": {"max_drop_points": max_drop_points, "min_agreement": min_agreement},
        "int8_calibration": calib_record, "int8_conditioning": conditioning, "onnx_head_equalisation": equalisation,
        "adaround": {name: record for name, (_, record) in rounded.items()} or None,
        "graph": graph, "svm": meta.get("svm"), "artifacts": [],
    }, out_dir, name, report_path)
    built: dict[tuple[str, str], Path] = {}
    for fmt, precision in targets:
        path = out_dir / fmt.artifact_name(name, precision)
        t0 = time.time()
        try:
            int8 = precision == "int8"
            source = (rounded[fmt.name][0] if fmt.name in rounded else sources.get(fmt.name, int8_model)) \
                if int8 else model
            float_head = int8 and fmt.name in float_heads
            fields = export(source, fmt, precision, path, spec, meta, calibration, built,
                            options, matches_fp32_onnx=source is model, float_head=float_head)
            if float_head:
                fields["head_equalisation"] = equalisation
            elif int8 and conditioning is not None:
                fields["int8_conditioning"] = conditioning
            if int8 and fmt.name in rounded:
                fields["adaround"] = rounded[fmt.name][1]
        except ValueError as exc:
            raise ConversionError(f"{fmt.name} {precision} -> {path}: {exc}") from None
        built[(fmt.name, precision)] = path
        manifest = _manifest(fmt, precision, path, spec, meta, fields, graph,
                             calib_record if precision == "int8" else None)
        entry, parity = gate_artifact(path, manifest, val, keras_scores, val_data, max_drop_points, min_agreement,
                                      meta.get("metrics"), time.time() - t0, fields)
        report.add(entry, parity)
    return report.finish()
