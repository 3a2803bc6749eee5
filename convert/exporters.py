"""One export function per (format, precision) target; each returns what its manifest records."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgefer.runtime.formats import ExportFormat
from edgefer.runtime.preprocess import InputSpec


@dataclass(frozen=True)
class ExportOptions:
    """Knobs of the exporters (``edgefer convert`` flags)."""

    io_dtype: str = "int8"  # TFLite INT8 input/output type: int8 or uint8
    float_fallback: bool = True  # TFLite INT8: let ops without int8 kernels (COS) run in float
    opset: int = 13
    onnx_calibration: str = "minmax"  # minmax, entropy or percentile
    onnx_symmetric: bool = True  # symmetric activations: what TensorRT needs from the QDQ model
    onnx_centre: bool = True  # symmetric QDQ: centre ReLU6 outputs on zero first (twice as fine a grid)
    onnx_float_head: bool = True  # QDQ: keep the linear head in float, its input channels equalised
    trt_int8_route: str = "qdq"  # qdq (TensorRT 10) or entropy (TensorRT 8.x calibrator)
    trt_max_batch: int = 32
    condition_int8_head: bool = True  # INT8 only: replace head inputs int8 cannot resolve by their mean
    adaround: tuple[str, ...] = ()  # INT8 formats (tflite, onnx) whose weight rounding is learned (AdaRound)
    adaround_iterations: int = 1000  # optimiser steps per layer
    adaround_faces: int = 1024  # training faces the AdaRound reconstruction is fitted on


def dependencies(fmt: ExportFormat, precision: str, options: ExportOptions) -> list[tuple[str, str]]:
    """The (format, precision) artifacts a target is built from, which must be exported first."""
    if fmt.name == "onnx" and precision == "int8":
        return [("onnx", "fp32")]
    if fmt.name == "tensorrt":
        if precision == "int8" and options.trt_int8_route == "qdq":
            return [("onnx", "fp32"), ("onnx", "int8")]
        return [("onnx", "fp32")]
    return []


def onnx_metadata(meta: dict[str, Any], spec: InputSpec) -> dict[str, str]:
    """What every ONNX artifact carries in ``metadata_props`` besides its sidecar."""
    return {"labels": json.dumps(meta["labels"]), "input": json.dumps(spec.to_dict()), "head": meta["head"]}


def export(
    model: Any, fmt: ExportFormat, precision: str, path: Path, spec: InputSpec, meta: dict[str, Any],
    calibration: np.ndarray, built: dict[tuple[str, str], Path], options: ExportOptions,
    matches_fp32_onnx: bool = True, float_head: bool = False,
) -> dict[str, Any]:
    """Write ``path``; returns manifest fields (``input_quantization``, ``float_ops``, ``tensorrt``...).

    ``built`` maps (format, precision) to artifacts already written in this run, which
    ONNX INT8 and TensorRT build from. ``matches_fp32_onnx`` is False when ``model`` is the
    INT8-conditioned or head-equalised copy: ONNX INT8 is then quantised from its own fp32
    export, keeping the head in float when ``float_head``.
    """
    if fmt.name == "tflite":
        from .tflite import export_tflite

        return export_tflite(model, precision, spec, path, calibration if precision == "int8" else None,
                             options.io_dtype, options.float_fallback)
    if fmt.name == "onnx" and precision == "fp32":
        from .onnx_export import export_onnx

        export_onnx(model, spec, path, opset=options.opset, metadata=onnx_metadata(meta, spec))
        return {"opset": options.opset}
    if fmt.name == "onnx" and precision == "int8":
        from .onnx_quant import quantize_onnx_int8

        def quantize(fp32: Path) -> dict[str, Any]:
            return quantize_onnx_int8(fp32, path, calibration, spec, options.onnx_calibration, options.onnx_symmetric,
                                      metadata=onnx_metadata(meta, spec), centre=options.onnx_centre,
                                      float_head=float_head)

        if matches_fp32_onnx:
            return quantize(built[("onnx", "fp32")])
        from .onnx_export import export_onnx

        with tempfile.TemporaryDirectory(prefix="edgefer-int8-src-") as tmp:
            source = Path(tmp) / "conditioned_fp32.onnx"
            export_onnx(model, spec, source, opset=options.opset, metadata=onnx_metadata(meta, spec))
            return quantize(source)
    if fmt.name == "tensorrt":
        from .tensorrt_build import build_engine

        qdq = precision == "int8" and options.trt_int8_route == "qdq"
        source = built[("onnx", "int8")] if qdq else built[("onnx", "fp32")]
        record = build_engine(source, path, precision, spec, options.trt_int8_route, calibration,
                              options.trt_max_batch)
        return {"tensorrt": record}
    raise ValueError(f"no exporter for {fmt.name} at {precision}")
