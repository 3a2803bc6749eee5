"""The one preprocessing function shared by training, INT8 calibration and the runtime.

Every face, whatever its source, goes through :func:`preprocess_faces`: grey,
resized to the model input, normalised with ``x * scale + offset`` and
replicated to the channel count the model expects. Its parameters live in an
:class:`InputSpec`, which artifacts carry in their manifest.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Sequence

import cv2
import numpy as np


@dataclass(frozen=True)
class InputSpec:
    """What a model expects as input (stored in every artifact's manifest)."""

    height: int = 48
    width: int = 48
    channels: int = 3
    colour: str = "grey"
    scale: float = 1.0 / 127.5
    offset: float = -1.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["layout"] = "NHWC"
        d["normalisation"] = "x * scale + offset, x in [0, 255]"
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "InputSpec":
        try:
            spec = cls(
                height=int(data["height"]),
                width=int(data["width"]),
                channels=int(data["channels"]),
                colour=str(data.get("colour", "grey")),
                scale=float(data["scale"]),
                offset=float(data["offset"]),
            )
        except KeyError as exc:
            raise ValueError(f"input spec is missing the key {exc.args[0]!r}") from None
        if spec.colour != "grey" or spec.channels not in (1, 3):
            raise ValueError(f"unsupported input spec: colour={spec.colour!r} channels={spec.channels}")
        return spec


def to_grey(image: np.ndarray) -> np.ndarray:
    """Return a 2-D uint8 grey image from grey, BGR or BGRA input."""
    if image.ndim == 2:
        return image
    if image.ndim == 3 and image.shape[2] == 1:
        return image[:, :, 0]
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2GRAY)
    raise ValueError(f"expected a grey or BGR image, got an array of shape {image.shape}")


def resize_face(face: np.ndarray, spec: InputSpec) -> np.ndarray:
    """Grey-convert and resize one face crop to the model's input size (uint8)."""
    grey = to_grey(face)
    if grey.shape == (spec.height, spec.width):
        return grey
    shrinking = grey.shape[0] > spec.height or grey.shape[1] > spec.width
    interp = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(grey, (spec.width, spec.height), interpolation=interp)


def preprocess_faces(faces: Sequence[np.ndarray] | np.ndarray, spec: InputSpec) -> np.ndarray:
    """Turn face crops into the model's float32 NHWC input batch.

    ``faces`` is a sequence of crops (any size, grey or BGR) or an already
    resized uint8 array of shape (N, H, W).
    """
    if isinstance(faces, np.ndarray) and faces.ndim == 3 and faces.shape[1:] == (spec.height, spec.width):
        batch = faces
    else:
        batch = np.stack([resize_face(f, spec) for f in faces]) if len(faces) else np.zeros(
            (0, spec.height, spec.width), np.uint8
        )
    x = batch.astype(np.float32) * np.float32(spec.scale) + np.float32(spec.offset)
    x = x[..., None]
    if spec.channels == 3:
        x = np.repeat(x, 3, axis=-1)
    return x
