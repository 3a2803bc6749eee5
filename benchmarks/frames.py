"""Frame size handling both contenders share (cv2 only, so the ``fer`` peer script can use it too)."""

from __future__ import annotations

import cv2
import numpy as np


def parse_size(text: str | None) -> tuple[int, int] | None:
    """``"640x480"`` -> ``(640, 480)``; ``None``/``""``/``"native"`` keep the source's size."""
    if not text or text == "native":
        return None
    w, sep, h = text.lower().partition("x")
    if not sep or not w.isdigit() or not h.isdigit() or int(w) < 16 or int(h) < 16:
        raise ValueError(f"frame size must look like 640x480 (or 'native'), got {text!r}")
    return int(w), int(h)


def fit_frame(image: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    """The frame at ``size`` (width, height); both contenders resize the same way."""
    if size is None or (image.shape[1], image.shape[0]) == size:
        return image
    return cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
