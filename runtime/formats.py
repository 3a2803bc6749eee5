"""The one table of export formats: what ``edgefer convert`` can write, in which precisions.

What *runs* each format (its file suffix, import probe, install hint) is the backend's
record in :data:`edgefer.runtime.backends.BACKENDS`; a format only names its backend.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .backends import BACKENDS, BackendRecord, backend_for_suffix


@dataclass(frozen=True)
class ExportFormat:
    """An artifact kind: the backend that runs it, the precisions it comes in, what writing it needs.

    ``build_needs`` is what ``edgefer convert`` needs to *write* it; what a device needs to
    *run* it is the backend record's ``install``. ``default_precision`` is what a bare
    ``--to NAME`` means.
    """

    name: str
    backend: str
    precisions: tuple[str, ...]
    default_precision: str
    build_needs: str
    portable: bool = True  # False: the artifact only runs on the machine (GPU + library version) that built it

    @property
    def record(self) -> BackendRecord:
        """The registry record of the backend that runs this format."""
        return BACKENDS[self.backend]

    @property
    def suffix(self) -> str:
        """The file suffix ``edgefer convert`` writes (the backend's first)."""
        return self.record.suffixes[0]

    @property
    def needs(self) -> str:
        """What a device installs to run this format."""
        return self.record.install

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
        ExportFormat("tflite", "litert", ("fp32", "fp16", "dynamic", "int8"), "int8",
                     "pip install 'edgefer[train-cpu]' (tensorflow, ai-edge-litert)"),
        ExportFormat("onnx", "onnx", ("fp32", "int8"), "fp32",
                     "pip install 'edgefer[train-cpu]' (tf2onnx, onnx, onnxruntime)"),
        ExportFormat("tensorrt", "tensorrt", ("fp16", "int8"), "int8",
                     "TensorRT (python bindings) and cuda-python or pycuda on the target GPU", portable=False),
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
    """The format of an artifact file, from its suffix (which the backend registry owns)."""
    suffix = Path(path).suffix.lower()
    record = backend_for_suffix(suffix)
    for fmt in FORMATS.values():
        if record is not None and fmt.backend == record.name:
            return fmt
    known = ", ".join(f"{f.suffix} ({f.name})" for f in FORMATS.values())
    raise ValueError(f"cannot tell the model format of {path}: its suffix {suffix!r} is not one of {known}")
