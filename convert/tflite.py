"""Keras -> TFLite, full-integer INT8 calibrated on real faces through the shared preprocessing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgefer.runtime.preprocess import InputSpec, preprocess_faces


def export_tflite_int8(model, calibration: np.ndarray, spec: InputSpec, path: Path) -> dict[str, Any]:
    """Write a TFLite model with int8 input and output; returns its I/O quantisation parameters.

    ``calibration`` holds real (N, H, W) uint8 faces; they pass through
    :func:`preprocess_faces` exactly as the runtime will feed the model.
    """
    import tensorflow as tf

    if len(calibration) == 0:
        raise ValueError("INT8 calibration needs real faces; got none")

    def representative():
        for i in range(len(calibration)):
            yield [preprocess_faces(calibration[i : i + 1], spec)]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    path.write_bytes(converter.convert())

    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path))
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    return {
        "input": {"dtype": "int8", "scale": float(inp["quantization"][0]), "zero_point": int(inp["quantization"][1])},
        "output": {"dtype": "int8", "scale": float(out["quantization"][0]), "zero_point": int(out["quantization"][1])},
    }
