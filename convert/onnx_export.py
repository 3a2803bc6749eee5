"""Keras -> ONNX (fp32) with tf2onnx, batch axis dynamic."""

from __future__ import annotations

import gc
import logging
from pathlib import Path

from edgefer.runtime.preprocess import InputSpec

log = logging.getLogger(__name__)


def export_onnx(model, spec: InputSpec, path: Path, opset: int = 13, metadata: dict[str, str] | None = None) -> None:
    """Write an fp32 ONNX model whose input is ``face`` (N, H, W, C); ``metadata`` goes into metadata_props."""
    import onnx
    import tensorflow as tf
    import tf2onnx
    from tf2onnx.graph import GraphUtil

    signature = [tf.TensorSpec((None, spec.height, spec.width, spec.channels), tf.float32, name="face")]
    # tf2onnx reads `output_names` off the model, which Keras 3 functional models do not set.
    if not hasattr(model, "output_names"):
        model.output_names = [model.layers[-1].name]
    # tf2onnx's own optimiser pass deep-copies the graph, weights included, before each of its
    # optimisers so that it can roll one back; on the 58 M-parameter hybrid that grew past 16 GB.
    # The same optimisers run once here without the copies (the hybrid peaks near 10 GB).
    proto, _ = tf2onnx.convert.from_keras(model, input_signature=signature, opset=opset, optimizers={})
    try:
        proto = GraphUtil.optimize_model_proto(proto, catch_errors=False)
    except Exception as exc:  # noqa: BLE001 - an optimiser bug must not lose a valid, unoptimised export
        log.warning("tf2onnx's graph optimisers failed (%s: %s); writing the unoptimised ONNX graph, "
                    "which computes the same function", type(exc).__name__, exc)
    for key, value in (metadata or {}).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))
    del proto
    # tf2onnx's graph objects form reference cycles holding every weight array: on the hybrid ~8 GB
    # stay resident until the cycle collector runs, enough for the next export (INT8's source) to OOM.
    gc.collect()
