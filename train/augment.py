"""On-the-fly augmentation of grey uint8 faces (OpenCV, before the shared preprocessing)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import cv2
import numpy as np


@dataclass(frozen=True)
class AugmentConfig:
    """Ranges from the FER literature: rotation ±10°, flips, brightness 0.8–1.2, zoom ±10 %."""

    rotation_deg: float = 10.0
    zoom: float = 0.10
    shift: float = 0.08
    flip: bool = True
    brightness: tuple[float, float] = (0.8, 1.2)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def parse(cls, text: str) -> "AugmentConfig":
        """``"rotation_deg=15,zoom=0.05,flip=false,brightness=0.7:1.3"``; unnamed fields keep their defaults."""
        names = {f.name for f in fields(cls)}
        values: dict = {}
        for part in (p.strip() for p in text.split(",") if p.strip()):
            key, sep, raw = part.partition("=")
            key = key.strip()
            if not sep or key not in names:
                raise ValueError(
                    f"bad augmentation setting {part!r}: use name=value with name in {', '.join(sorted(names))}"
                )
            try:
                if key == "flip":
                    if raw.lower() not in ("true", "false", "1", "0"):
                        raise ValueError
                    values[key] = raw.lower() in ("true", "1")
                elif key == "brightness":
                    lo, hi = (float(v) for v in raw.split(":"))
                    values[key] = (lo, hi)
                else:
                    values[key] = float(raw)
            except ValueError:
                raise ValueError(
                    f"bad value in augmentation setting {part!r} (numbers; flip=true|false; brightness=LOW:HIGH)"
                ) from None
        return cls(**values)


def augment_batch(images: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig = AugmentConfig()) -> np.ndarray:
    """Randomly rotate, zoom, shift, flip and brighten a (N, H, W) uint8 batch."""
    n, h, w = images.shape
    out = np.empty_like(images)
    angles = rng.uniform(-cfg.rotation_deg, cfg.rotation_deg, n)
    zooms = rng.uniform(1 - cfg.zoom, 1 + cfg.zoom, n)
    shifts = rng.uniform(-cfg.shift, cfg.shift, (n, 2)) * (w, h)
    flips = rng.random(n) < 0.5 if cfg.flip else np.zeros(n, bool)
    gains = rng.uniform(cfg.brightness[0], cfg.brightness[1], n)
    centre = (w / 2.0, h / 2.0)
    for i in range(n):
        m = cv2.getRotationMatrix2D(centre, float(angles[i]), float(zooms[i]))
        m[:, 2] += shifts[i]
        img = cv2.warpAffine(images[i], m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
        if flips[i]:
            img = img[:, ::-1]
        out[i] = np.clip(img.astype(np.float32) * gains[i], 0, 255).astype(np.uint8)
    return out
