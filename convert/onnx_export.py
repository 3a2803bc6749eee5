"""Keras -> ONNX (fp32) with tf2onnx, batch axis dynamic."""

from __future__ import annotations

from pathlib import Path

from edgefer.runtime.preprocess import InputSpec


def export_onnx(model, spec: InputSpec, path: Path, opset: int = 13, metadata: dict[str, str] | None = None) -> None:
    """Write an fp32 ONNX model whose input is ``face`` (N, H, W, C); ``metadata`` goes into metadata_props."""
    import onnx
    import tensorflow as tf
    import tf2onnx

    signature = [tf.TensorSpec((None, spec.height, spec.width, spec.channels), tf.float32, name="face")]
    # tf2onnx reads `output_names` off the model, which Keras 3 functional models do not set.
    if not hasattr(model, "output_names"):
        model.output_names = [model.layers[-1].name]
    proto, _ = tf2onnx.convert.from_keras(model, input_signature=signature, opset=opset)
    for key, value in (metadata or {}).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))
