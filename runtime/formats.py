"""The one table of export formats: converter, runtime backend choice and benchmarks read it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ExportFormat:
    """An artifact kind: file suffix, the backend that runs it, the precisions it comes in."""

    name: str
    suffix: str
    backend: str
    precisions: tuple[str, ...]
    needs: str  # what to install to run it


FORMATS: dict[str, ExportFormat] = {
    f.name: f
    for f in (
        ExportFormat("tflite", ".tflite", "litert", ("fp32", "fp16", "dynamic", "int8"), "pip install 'edgefer[litert]'"),
        ExportFormat("onnx", ".onnx", "onnx", ("fp32", "int8"), "pip install 'edgefer[onnx]'"),
        ExportFormat("tensorrt", ".engine", "tensorrt", ("fp16", "int8"), "TensorRT 10 (JetPack 6) and cuda-python"),
    )
}


def get_format(name: str) -> ExportFormat:
    """Look a format up by name; an unknown name is an error that lists the valid ones."""
    try:
        return FORMATS[name]
    except KeyError:
        raise ValueError(f"unknown export format {name!r}; valid formats: {', '.join(FORMATS)}") from None


def format_for_path(path: str | Path) -> ExportFormat:
    """The format of an artifact file, from its suffix."""
    suffix = Path(path).suffix.lower()
    for fmt in FORMATS.values():
        if fmt.suffix == suffix:
            return fmt
    known = ", ".join(f"{f.suffix} ({f.name})" for f in FORMATS.values())
    raise ValueError(f"cannot tell the model format of {path}: its suffix {suffix!r} is not one of {known}")
