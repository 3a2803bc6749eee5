"""fp32 ONNX -> INT8 ONNX in QDQ form, statically calibrated on real faces (onnxruntime.quantization).

The QDQ model is also what TensorRT 10 builds INT8 engines from (explicit quantisation),
so by default activations and weights are symmetric int8 (zero point 0), which TensorRT requires.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from edgefer.runtime.preprocess import InputSpec, preprocess_faces

from .onnx_centre import centre_bounded_activations

CALIBRATION_METHODS = ("minmax", "entropy", "percentile")


def _reader(faces: np.ndarray, spec: InputSpec, input_name: str, batch: int):
    from onnxruntime.quantization import CalibrationDataReader

    class FaceReader(CalibrationDataReader):
        """Batches of real faces through the runtime's own preprocessing."""

        def __init__(self) -> None:
            self._batches: Iterator[dict[str, np.ndarray]] = iter(
                {input_name: preprocess_faces(faces[i : i + batch], spec)} for i in range(0, len(faces), batch)
            )

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._batches, None)

    return FaceReader()


#: Elementwise maths with no integer kernel in onnxruntime or TensorRT: run in float between DQ and Q.
FLOAT_ONLY_OPS = frozenset({"Cos", "Sin", "Tan", "Acos", "Asin", "Atan", "Exp", "Log", "Sqrt", "Pow", "Erf",
                            "Reciprocal", "Div"})


def float_op_types(path: Path) -> dict[str, int]:
    """Counts of the ops of a QDQ model that compute in float (e.g. the Cos of a random-feature head)."""
    import onnx

    counts = Counter(n.op_type for n in onnx.load(str(path)).graph.node if n.op_type in FLOAT_ONLY_OPS)
    return dict(sorted(counts.items()))


def _calibrated_maxima(model: Any, calibration: np.ndarray, spec: InputSpec, input_name: str) -> dict[str, float]:
    """The largest value each Clip output takes on the calibration faces (what MinMax calibration will see)."""
    import onnx
    import onnxruntime as ort

    names = [n.output[0] for n in model.graph.node if n.op_type == "Clip"]
    if not names:
        return {}
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    known = {o.name for o in probe.graph.output}
    for name in names:
        if name not in known:
            probe.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    session = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    peaks = dict.fromkeys(names, -np.inf)
    for i in range(0, len(calibration), 32):
        outputs = session.run(names, {input_name: preprocess_faces(calibration[i : i + 32], spec)})
        for name, value in zip(names, outputs):
            peaks[name] = max(peaks[name], float(np.max(value)))
    return peaks


def head_nodes(graph: Any) -> list[Any]:
    """The nodes of the final linear layer (Gemm, or MatMul and its bias Add) that make the graph's output."""
    producers = {out: node for node in graph.node for out in node.output}
    constants = {init.name for init in graph.initializer}
    node = producers.get(graph.output[0].name)
    if node is None:
        return []
    if node.op_type in ("Gemm", "MatMul"):
        return [node]
    if node.op_type == "Add" and any(i in constants for i in node.input):
        inner = next((producers.get(i) for i in node.input if i not in constants), None)
        if inner is not None and inner.op_type == "MatMul":
            return [node, inner]
    return []


def quantize_onnx_int8(
    fp32_path: Path, path: Path, calibration: np.ndarray, spec: InputSpec, method: str = "minmax",
    symmetric_activations: bool = True, per_channel: bool = True, metadata: dict[str, str] | None = None,
    centre: bool = True, float_head: bool = False,
) -> dict[str, Any]:
    """Write the QDQ INT8 version of ``fp32_path`` to ``path``; returns what the manifest records.

    ``calibration`` holds real (N, H, W) uint8 faces, never random data. ``metadata`` is
    copied into the quantised model's ``metadata_props`` (the quantiser drops them). With
    symmetric activations and ``centre``, bounded activations (ReLU6) are first centred on
    zero (:mod:`.onnx_centre`) so that their int8 grid is twice as fine: each on the middle of
    the range it takes on the calibration faces, which is also the range calibration gives it.
    With ``float_head`` the final linear layer is left in float (its input is still quantised):
    what :mod:`.equalise` prepares the model for.
    """
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if method not in CALIBRATION_METHODS:
        raise ValueError(f"ONNX calibration method {method!r} is not one of {', '.join(CALIBRATION_METHODS)}")
    if len(calibration) == 0:
        raise ValueError("ONNX INT8 calibration needs real faces; got none")
    input_name = onnx.load(str(fp32_path)).graph.input[0].name
    with tempfile.TemporaryDirectory(prefix="edgefer-qdq-") as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        # Shape inference + graph optimisation first, as onnxruntime recommends for static quantisation.
        quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=True)
        graph = onnx.load(str(prepared))
        excluded: list[str] = []
        if float_head:
            head = head_nodes(graph.graph)
            if not head:
                raise ValueError(f"{fp32_path}: no final Gemm or MatMul(+Add) makes the output, so there is no "
                                 "head to keep in float; convert with --onnx-int8-head")
            for i, node in enumerate(head):
                node.name = node.name or f"edgefer_head_{i}"  # nodes_to_exclude matches by name
            excluded = [node.name for node in head]
        centred = None
        if symmetric_activations and centre:
            ceilings = _calibrated_maxima(graph, calibration, spec, input_name)
            centred = centre_bounded_activations(graph, per_channel, ceilings, frozenset(excluded)).to_dict()
        onnx.save(graph, str(prepared))
        # Histogram calibrators stack per-batch outputs, so they need equal batches: feed one face at a time.
        quantize_static(
            str(prepared), str(path), _reader(calibration, spec, input_name, 32 if method == "minmax" else 1),
            quant_format=QuantFormat.QDQ, per_channel=per_channel,
            activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
            calibrate_method={"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
                              "percentile": CalibrationMethod.Percentile}[method],
            extra_options={"ActivationSymmetric": symmetric_activations, "WeightSymmetric": True},
            nodes_to_exclude=excluded,
        )
    proto = onnx.load(str(path))
    del proto.metadata_props[:]
    for key, value in (metadata or {}).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))
    return {
        "quantization": {"format": "QDQ", "method": method, "activations": "int8 symmetric" if symmetric_activations
                         else "int8 asymmetric", "weights": "int8 symmetric" + (" per-channel" if per_channel else ""),
                         "centred_activations": centred, "float_nodes": excluded},
        "float_ops": [op for op, n in float_op_types(path).items() for _ in range(n)],
    }
