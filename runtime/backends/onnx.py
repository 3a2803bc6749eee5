"""ONNX Runtime backend for ``.onnx``: TensorRT or CUDA execution providers where the installed onnxruntime has them.

A Jetson's onnxruntime-gpu build carries ``TensorrtExecutionProvider`` and
``CUDAExecutionProvider``; the PyPI wheel only ``CPUExecutionProvider``. Without an
explicit choice the backend takes the registry's order (TensorRT, CUDA, CPU) filtered
by what this onnxruntime has, logs the providers the session really uses and reports
them in :meth:`OnnxBackend.info`.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..manifest import Manifest, ModelError
from . import BACKENDS, check_input, check_output

log = logging.getLogger(__name__)

#: Short names accepted by ``--providers`` (full onnxruntime names are accepted too).
SHORT_NAMES = {
    "tensorrt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "cpu": "CPUExecutionProvider",
}


def parse_providers(text: str | Sequence[str] | None) -> list[str] | None:
    """``"cuda,cpu"`` or ``["cuda", "CPUExecutionProvider"]`` -> full onnxruntime names; empty -> ``None``."""
    if text is None:
        return None
    items = text.split(",") if isinstance(text, str) else list(text)
    names = [SHORT_NAMES.get(item.strip().lower(), item.strip()) for item in items if item.strip()]
    return names or None


def choose_providers(available: Sequence[str], requested: Sequence[str] | None = None) -> list[str]:
    """The execution providers to ask onnxruntime for.

    ``requested`` (full or short names) is used as given, in its order, after checking
    that this onnxruntime has each one. Without it: the registry's preferred providers
    that ``available`` holds, in the registry's order; the CPU provider is always last.
    """
    wanted = parse_providers(requested)
    if wanted:
        missing = [p for p in wanted if p not in available]
        if missing:
            raise ValueError(
                f"this onnxruntime has no {', '.join(missing)}; it has {', '.join(available) or 'none'} "
                f"(short names: {', '.join(SHORT_NAMES)}; a GPU build such as Jetson's onnxruntime-gpu adds "
                "CUDA and TensorRT)")
        return wanted
    chosen = [p for p in BACKENDS["onnx"].providers if p in available]
    if "CPUExecutionProvider" not in chosen:
        chosen.append("CPUExecutionProvider")
    return chosen


def _cache_dir() -> Path | None:
    """Where the TensorRT provider keeps its engines (building one takes minutes), if it can be created."""
    base = os.environ.get("CACHE_DIRECTORY")  # systemd's CacheDirectory=
    if base:
        path = Path(base.split(":")[0]) / "onnxruntime-trt"
    else:
        xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        path = Path(xdg) / "edgefer" / "onnxruntime-trt"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return path


def _provider_options(providers: Sequence[str]) -> list[dict[str, Any]]:
    options: list[dict[str, Any]] = []
    for name in providers:
        opts: dict[str, Any] = {}
        if name == "TensorrtExecutionProvider":
            cache = _cache_dir()
            if cache is not None:
                opts = {"trt_engine_cache_enable": True, "trt_engine_cache_path": str(cache)}
            else:
                log.warning("no writable cache directory: TensorRT rebuilds its engine on every start (minutes)")
        options.append(opts)
    return options


class OnnxBackend:
    """Runs ONNX models through onnxruntime with a dynamic batch axis."""

    name = "onnx"

    def __init__(self, providers: Sequence[str] | None = None) -> None:
        self._session: Any = None  # an onnxruntime.InferenceSession once loaded
        self._input = ""
        self._requested = parse_providers(providers)
        self.providers: list[str] = []  # what the session really uses, once loaded
        self._library = ""

    def load(self, path: Path, manifest: Manifest, threads: int | None = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise BACKENDS[self.name].unavailable() from None
        providers = choose_providers(ort.get_available_providers(), self._requested)
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        opts.log_severity_level = 3
        # Idle pool threads must not spin: between two small batches they would keep the cores from
        # OpenCV's decoding and detection in the same frame loop (on 2 cores: frame read 1.6 -> 0.8 ms,
        # pipeline 115-129 -> 142-155 fps, for ~0.2 ms more per model call alone).
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        # On x86 CPUs without VNNI (AVX2 only) onnxruntime runs a QDQ model's int8 convolutions as
        # u8 x s8 pairs summed into int16 (VPMADDUBSW), which saturates: the shipped default_int8.onnx
        # then agreed with its fp32 model on 86.0 % of PublicTest instead of 99.2 %. Its precision mode
        # avoids the overflow at no measured cost (2.28 ms a face both ways here); elsewhere it does nothing.
        opts.add_session_config_entry("session.x64quantprecision", "1")
        try:
            self._session = ort.InferenceSession(
                str(path), opts, providers=providers, provider_options=_provider_options(providers)
            )
        except Exception as exc:  # onnxruntime raises its own exception types per failure
            raise ModelError(f"onnxruntime could not load {path} with {', '.join(providers)}: {exc}") from None
        self.providers = list(self._session.get_providers())
        self._library = f"onnxruntime {ort.__version__}"
        log.info("onnx backend: %s runs on %s", path.name, ", ".join(self.providers))
        inp = self._session.get_inputs()[0]
        out = self._session.get_outputs()[0]
        check_input(manifest, tuple(inp.shape), path)
        last = out.shape[-1]
        if isinstance(last, int):
            check_output(manifest, last, path)
        self._input = inp.name

    def infer(self, batch: np.ndarray) -> np.ndarray:
        if self._session is None:
            raise RuntimeError("OnnxBackend.infer called before load")
        return np.asarray(self._session.run(None, {self._input: batch.astype(np.float32, copy=False)})[0], np.float32)

    def info(self) -> dict[str, Any]:
        return {"backend": self.name, "library": self._library, "providers": self.providers}

    def close(self) -> None:
        self._session = None
