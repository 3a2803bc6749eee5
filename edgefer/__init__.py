"""edgefer: facial emotion recognition for edge devices.

>>> from edgefer import EmotionRecognizer
>>> with EmotionRecognizer() as fer:
...     faces = fer.detect("photo.jpg")

The distribution is split the way the work flows: ``edgefer.train`` (workstation,
Keras), ``edgefer.convert`` (workstation, TFLite/ONNX/TensorRT) and
``edgefer.runtime`` (device; numpy + OpenCV + one inference backend).
Importing this package does no work and pulls in no framework: the public names
below are loaded on first use.
"""

from __future__ import annotations

import os as _os

__version__ = "0.1.0"

# Run from a source checkout (python in the repository root), ``edgefer/`` here shadows the installed
# package, whose subpackages live beside it in the checkout as runtime/, train/ and convert/
# (pyproject's package-dir). Look for them there too, so ``edgefer.runtime`` resolves either way.
_checkout = _os.path.dirname(_os.path.dirname(_os.path.abspath(__file__)))
if all(_os.path.isfile(_os.path.join(_checkout, d, "__init__.py")) for d in ("runtime", "train", "convert")) \
        and not _os.path.isdir(_os.path.join(_os.path.dirname(_os.path.abspath(__file__)), "runtime")):
    __path__.append(_checkout)  # type: ignore[name-defined]  # noqa: F821

#: Public name -> the module that defines it (imported on first access).
_EXPORTS = {
    "EmotionRecognizer": "edgefer.runtime.recognizer",
    "Face": "edgefer.runtime.recognizer",
    "EdgeferError": "edgefer.runtime.errors",
    "ImageError": "edgefer.runtime.errors",
    "ModelError": "edgefer.runtime.manifest",
    "DetectorError": "edgefer.runtime.detect",
    "SourceError": "edgefer.runtime.sources",
    "BackendUnavailable": "edgefer.runtime.backends",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'edgefer' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
