"""The one table of export formats: converter, runtime backend choice and benchmarks read it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ExportFormat:
    """An artifact kind: file suffix, the backend that runs it, the precisions it comes in.

    ``needs`` is what a device installs to *run* the artifact; ``build_needs`` is what
    ``edgefer convert`` needs to *write* it. ``default_precision`` is what a bare
    ``--to NAME`` means.
    """

    name: str
    suffix: str
    backend: str
    precisions: tuple[str, ...]
    needs: str
    default_precision: str
    build_needs: str
    portable: bool = True  # False: the artifact only runs on the machine (GPU + library version) that built it
    other_backends: tuple[str, ...] = ()  # backends that also run it (``--backend NAME``)

    @property
    def backends(self) -> tuple[str, ...]:
        """Every backend that runs this format, the default one first."""
        return (self.backend, *self.other_backends)

    def check_precision(self, precision: str) -> str:
        """``precision`` if this format has it; otherwise an error listing the ones it has."""
        if precision not in self.precisions:
            raise ValueError(
                f"{self.name} has no precision {precision!r}; valid precisions for {self.name}: "
                f"{', '.join(self.precisions)}"
            )
        return precision

    def artifact_name(self, base: str, precision: str) -> str:
        """``<base>_<precision><suffix>``, the file name ``edgefer convert`` writes."""
        return f"{base}_{self.check_precision(precision)}{self.suffix}"


FORMATS: dict[str, ExportFormat] = {
    f.name: f
    for f in (
        ExportFormat(
            "tflite", ".tflite", "litert", ("fp32", "fp16", "dynamic", "int8"), "pip install 'edgefer[litert]'",
            "int8", "pip install 'edgefer[train-cpu]' (tensorflow, ai-edge-litert)",
        ),
        ExportFormat(
            "onnx", ".onnx", "onnx", ("fp32", "int8"), "pip install 'edgefer[onnx]'",
            "fp32", "pip install 'edgefer[train-cpu]' (tf2onnx, onnx, onnxruntime)",
        ),
        ExportFormat(
            "tensorrt", ".engine", "tensorrt", ("fp16", "int8"), "TensorRT 10 (JetPack 6) and cuda-python or pycuda",
            "int8", "TensorRT (python bindings) and cuda-python or pycuda on the target GPU", portable=False,
        ),
    )
}


def get_format(name: str) -> ExportFormat:
    """Look a format up by name; an unknown name is an error that lists the valid ones."""
    try:
        return FORMATS[name]
    except KeyError:
        raise ValueError(f"unknown export format {name!r}; valid formats: {', '.join(FORMATS)}") from None


def parse_target(text: str) -> tuple[ExportFormat, str]:
    """``"onnx:int8"`` -> (onnx format, ``"int8"``); a bare ``"tflite"`` takes the format's default precision."""
    name, _, precision = text.strip().partition(":")
    fmt = get_format(name)
    return fmt, fmt.check_precision(precision or fmt.default_precision)


def all_targets(portable_only: bool = True) -> list[tuple[ExportFormat, str]]:
    """Every (format, precision) of the table, in table order; engines are left out unless asked for."""
    return [(f, p) for f in FORMATS.values() if f.portable or not portable_only for p in f.precisions]


def format_for_path(path: str | Path) -> ExportFormat:
    """The format of an artifact file, from its suffix."""
    suffix = Path(path).suffix.lower()
    for fmt in FORMATS.values():
        if fmt.suffix == suffix:
            return fmt
    known = ", ".join(f"{f.suffix} ({f.name})" for f in FORMATS.values())
    raise ValueError(f"cannot tell the model format of {path}: its suffix {suffix!r} is not one of {known}")
