"""ONNX -> TensorRT engine, built on the device that will run it (engines are not portable).

Two INT8 routes:

- ``qdq`` (TensorRT 10, the default): explicit quantisation from the INT8 QDQ ONNX model,
  whose scales come from onnxruntime's static calibration on real faces.
- ``entropy`` (TensorRT 8.x, JetPack 5): the fp32 ONNX model with an
  ``IInt8EntropyCalibrator2`` fed the same real calibration faces (implicit calibration is
  deprecated since TensorRT 10.1, so this route is for older devices only).

fp16 engines are built from the fp32 ONNX model. The engine's manifest records the TensorRT
version and GPU compute capability; the runtime refuses an engine built elsewhere.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from edgefer.runtime.backends.tensorrt import import_tensorrt
from edgefer.runtime.preprocess import InputSpec, preprocess_faces

log = logging.getLogger(__name__)

INT8_ROUTES = ("qdq", "entropy")


def _entropy_calibrator(trt: Any, cuda: Any, faces: np.ndarray, spec: InputSpec, batch: int, cache: Path | None):
    """An ``IInt8EntropyCalibrator2`` over real faces, through the runtime's preprocessing."""

    class FaceEntropyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)
            self._next = 0
            self._ptr = cuda.malloc(batch * spec.height * spec.width * spec.channels * 4)

        def get_batch_size(self) -> int:
            return batch

        def get_batch(self, names: list[str]) -> list[int] | None:
            if self._next + batch > len(faces):
                return None
            cuda.to_device(self._ptr, preprocess_faces(faces[self._next : self._next + batch], spec))
            cuda.synchronize()
            self._next += batch
            return [self._ptr]

        def read_calibration_cache(self) -> bytes | None:
            return cache.read_bytes() if cache is not None and cache.is_file() else None

        def write_calibration_cache(self, data: Any) -> None:
            if cache is not None:
                cache.write_bytes(bytes(data))

    return FaceEntropyCalibrator()


def _network_flags(trt: Any) -> int:
    # TensorRT 10 networks are always explicit-batch and the flag is deprecated; 8.x needs it set.
    if int(trt.__version__.split(".")[0]) >= 10:
        return 0
    return 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)


def build_engine(
    onnx_path: Path, path: Path, precision: str, spec: InputSpec, int8_route: str = "qdq",
    calibration: np.ndarray | None = None, max_batch: int = 32, workspace_mib: int = 1024,
) -> dict[str, Any]:
    """Build a TensorRT engine from ``onnx_path`` and write it to ``path``; returns the manifest's record.

    ``precision`` is ``fp16`` or ``int8``. For INT8 with ``int8_route="qdq"``, ``onnx_path``
    must be the QDQ model; with ``"entropy"`` it is the fp32 model and ``calibration``
    (real (N, H, W) uint8 faces) feeds the entropy calibrator. The engine accepts batches of
    1 to ``max_batch`` faces.
    """
    trt = import_tensorrt()
    from edgefer.runtime.backends.cuda_mem import CudaContext

    if precision not in ("fp16", "int8"):
        raise ValueError(f"TensorRT precision {precision!r} is not one of fp16, int8")
    if int8_route not in INT8_ROUTES:
        raise ValueError(f"TensorRT INT8 route {int8_route!r} is not one of {', '.join(INT8_ROUTES)}")
    entropy = precision == "int8" and int8_route == "entropy"
    if entropy and (calibration is None or len(calibration) == 0):
        raise ValueError("the TensorRT entropy calibrator needs real calibration faces; got none")

    cuda = CudaContext()
    try:
        logger = trt.Logger(trt.Logger.WARNING)
        builder = trt.Builder(logger)
        network = builder.create_network(_network_flags(trt))
        parser = trt.OnnxParser(network, logger)
        if not parser.parse(onnx_path.read_bytes()):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise ValueError(f"TensorRT could not parse {onnx_path}: {errors}")
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mib << 20)
        if precision == "fp16" or entropy:
            # fp16 also lets layers that stay unquantised in an INT8 engine run in half precision.
            config.set_flag(trt.BuilderFlag.FP16)
        if precision == "int8":
            config.set_flag(trt.BuilderFlag.INT8)

        face = network.get_input(0)
        hwc = (spec.height, spec.width, spec.channels)
        profile = builder.create_optimization_profile()
        profile.set_shape(face.name, (1, *hwc), (min(8, max_batch), *hwc), (max_batch, *hwc))
        config.add_optimization_profile(profile)
        if entropy and calibration is not None:
            batch = min(max_batch, 16, len(calibration))
            config.int8_calibrator = _entropy_calibrator(
                trt, cuda, calibration, spec, batch, path.with_name(path.name + ".calib")
            )
            config.set_calibration_profile(profile)

        serialized = builder.build_serialized_network(network, config)
        if serialized is None:
            raise ValueError(f"TensorRT failed to build a {precision} engine from {onnx_path} (see its log above)")
        path.write_bytes(bytes(serialized))
        record = {
            "version": trt.__version__,
            "compute_capability": cuda.compute_capability,
            "device": cuda.device_name,
            "built_from": onnx_path.name,
            "int8_route": int8_route if precision == "int8" else None,
            "max_batch": max_batch,
        }
    finally:
        cuda.close()
    log.info("TensorRT %s engine %s built (TensorRT %s, sm %s)", precision, path, record["version"],
             record["compute_capability"])
    return record
