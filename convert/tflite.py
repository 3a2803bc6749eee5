"""Keras -> TFLite at fp32, fp16, dynamic-range or full-integer INT8 (calibrated on real faces)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from edgefer.runtime.preprocess import InputSpec, preprocess_faces

log = logging.getLogger(__name__)

IO_DTYPES = ("int8", "uint8")
#: Ops that move data between the integer and float domains; they are not "float ops" themselves.
_BOUNDARY_OPS = frozenset({"QUANTIZE", "DEQUANTIZE"})


def _converter(model, precision: str, calibration: np.ndarray | None, spec: InputSpec, io_dtype: str,
               float_fallback: bool):
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if precision == "fp32":
        return converter
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if precision == "fp16":
        converter.target_spec.supported_types = [tf.float16]
    elif precision == "int8":
        faces = calibration

        def representative():
            for i in range(len(faces)):
                yield [preprocess_faces(faces[i : i + 1], spec)]

        converter.representative_dataset = representative
        ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if float_fallback:
            # Ops with no int8 kernel (COS of a random-feature head) may then run in float between
            # DEQUANTIZE/QUANTIZE instead of failing the whole conversion.
            ops.append(tf.lite.OpsSet.TFLITE_BUILTINS)
        converter.target_spec.supported_ops = ops
        converter.inference_input_type = tf.int8 if io_dtype == "int8" else tf.uint8
        converter.inference_output_type = converter.inference_input_type
    return converter


def float_ops(path: Path) -> list[str]:
    """Names of the ops of a TFLite model that compute in float (empty for a full-integer model)."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path))
    dtypes = {t["index"]: np.dtype(t["dtype"]) for t in interp.get_tensor_details()}
    found = []
    # _get_ops_details is the interpreter's only per-op view (the public API lists tensors only).
    for op in interp._get_ops_details():
        if op["op_name"] in _BOUNDARY_OPS:
            continue
        tensors = [i for i in (*op["inputs"], *op["outputs"]) if i >= 0]
        if any(dtypes[i].kind == "f" for i in tensors):
            found.append(str(op["op_name"]))
    return found


def io_quantization(path: Path) -> dict[str, dict[str, Any] | None]:
    """The input/output dtype, scale and zero point of a TFLite model (``None`` for float I/O)."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path))

    def describe(detail: dict[str, Any]) -> dict[str, Any] | None:
        dtype = np.dtype(detail["dtype"])
        if dtype.kind not in "iu":
            return None
        scale, zero = detail["quantization"]
        return {"dtype": dtype.name, "scale": float(scale), "zero_point": int(zero)}

    return {"input": describe(interp.get_input_details()[0]), "output": describe(interp.get_output_details()[0])}


def export_tflite(
    model, precision: str, spec: InputSpec, path: Path, calibration: np.ndarray | None = None,
    io_dtype: str = "int8", float_fallback: bool = True,
) -> dict[str, Any]:
    """Write ``model`` as TFLite at ``precision`` (fp32, fp16, dynamic, int8).

    Dynamic-range models keep their depthwise convolutions and head in float
    (:mod:`.tflite_weights`; ``float_weights`` counts them).

    INT8 is full-integer with ``io_dtype`` (int8 or uint8) input and output, calibrated on
    ``calibration``: real (N, H, W) uint8 faces passed through :func:`preprocess_faces`
    exactly as the runtime will feed the model. Returns the I/O quantisation and the ops
    that still compute in float (``float_ops``; empty when the model is full-integer).
    With ``float_fallback`` off, an INT8 model with any float op is an error.
    """
    if precision not in ("fp32", "fp16", "dynamic", "int8"):
        raise ValueError(f"TFLite precision {precision!r} is not one of fp32, fp16, dynamic, int8")
    if precision == "int8":
        if io_dtype not in IO_DTYPES:
            raise ValueError(f"INT8 input/output type {io_dtype!r} is not one of {', '.join(IO_DTYPES)}")
        if calibration is None or len(calibration) == 0:
            raise ValueError("INT8 calibration needs real faces; got none")
    try:
        data = _converter(model, precision, calibration, spec, io_dtype, float_fallback).convert()
    except Exception as exc:  # the converter raises ConverterError, RuntimeError or ValueError per failure
        strict = precision == "int8" and not float_fallback
        hint = " (drop --strict-int8 to let ops without int8 kernels run in float)" if strict else ""
        raise ValueError(f"TFLite {precision} conversion failed{hint}: {str(exc).strip()[-800:]}") from None
    float_weights: dict[str, int] = {}
    if precision == "dynamic":
        from .tflite_weights import dequantize_weights

        data, float_weights = dequantize_weights(data)
    path.write_bytes(data)
    quant = io_quantization(path)
    in_float = float_ops(path) if precision == "int8" else []
    if in_float:
        if not float_fallback:
            path.unlink()
            raise ValueError(
                f"TFLite int8: op(s) {', '.join(sorted(set(in_float)))} have no int8 kernel and would run in float; "
                "drop --strict-int8 to allow that float fallback"
            )
        log.warning("TFLite int8 %s: %s run in float (no int8 kernel)", path.name, ", ".join(sorted(set(in_float))))
    fields = {"input_quantization": quant["input"], "output_quantization": quant["output"], "float_ops": in_float}
    if float_weights:
        fields["float_weights"] = float_weights
    return fields
