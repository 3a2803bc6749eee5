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
    # Stronger levers (issue 19's ablation), all off by default:
    contrast: tuple[float, float] = (1.0, 1.0)  # gain about the face's mean grey
    crop_scale: float = 1.0  # random resized crop: keep a square of this share of the area, or more
    blur: float = 0.0  # probability of a 3x3 or 5x5 Gaussian blur
    noise: float = 0.0  # std of Gaussian pixel noise, in grey levels
    occlusion: float = 0.0  # probability of a grey rectangle (1/8 to 1/3 of a side) over part of the face

    def __post_init__(self) -> None:
        if not 0.0 < self.crop_scale <= 1.0:
            raise ValueError(f"augmentation crop_scale must lie in (0, 1], not {self.crop_scale}")
        for name in ("blur", "occlusion"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"augmentation {name} is a probability in [0, 1], not {getattr(self, name)}")
        if self.noise < 0:
            raise ValueError(f"augmentation noise is a standard deviation >= 0, not {self.noise}")

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
                elif key in ("brightness", "contrast"):
                    lo, hi = (float(v) for v in raw.split(":"))
                    values[key] = (lo, hi)
                else:
                    values[key] = float(raw)
            except ValueError:
                raise ValueError(
                    f"bad value in augmentation setting {part!r} (numbers; flip=true|false; brightness=LOW:HIGH; "
                    "contrast=LOW:HIGH)"
                ) from None
        return cls(**values)


def augment_batch(images: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig = AugmentConfig()) -> np.ndarray:
    """Randomly rotate, zoom, shift, flip and brighten a (N, H, W) uint8 batch (plus the stronger levers set)."""
    n, h, w = images.shape
    out = np.empty_like(images)
    angles = rng.uniform(-cfg.rotation_deg, cfg.rotation_deg, n)
    zooms = rng.uniform(1 - cfg.zoom, 1 + cfg.zoom, n)
    shifts = rng.uniform(-cfg.shift, cfg.shift, (n, 2)) * (w, h)
    flips = rng.random(n) < 0.5 if cfg.flip else np.zeros(n, bool)
    gains = rng.uniform(cfg.brightness[0], cfg.brightness[1], n)
    centre = (w / 2.0, h / 2.0)
    extras = (cfg.crop_scale < 1.0 or cfg.contrast != (1.0, 1.0) or cfg.blur > 0 or cfg.noise > 0
              or cfg.occlusion > 0)
    for i in range(n):
        m = cv2.getRotationMatrix2D(centre, float(angles[i]), float(zooms[i]))
        m[:, 2] += shifts[i]
        img = cv2.warpAffine(images[i], m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
        if flips[i]:
            img = img[:, ::-1]
        if extras:
            img = _stronger(img, rng, cfg)
        out[i] = np.clip(img.astype(np.float32) * gains[i], 0, 255).astype(np.uint8)
    return out


def _stronger(img: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig) -> np.ndarray:
    """Random resized crop, contrast, blur, occlusion and noise on one (H, W) uint8 face."""
    h, w = img.shape
    if cfg.crop_scale < 1.0:
        side = np.sqrt(rng.uniform(cfg.crop_scale, 1.0))
        ch, cw = max(2, int(round(h * side))), max(2, int(round(w * side)))
        y0, x0 = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        img = cv2.resize(np.ascontiguousarray(img[y0 : y0 + ch, x0 : x0 + cw]), (w, h), interpolation=cv2.INTER_LINEAR)
    out = img.astype(np.float32)
    if cfg.contrast != (1.0, 1.0):
        mean = out.mean()
        out = (out - mean) * rng.uniform(*cfg.contrast) + mean
    if cfg.blur > 0 and rng.random() < cfg.blur:
        k = int(rng.choice((3, 5)))
        out = cv2.GaussianBlur(out, (k, k), 0)
    if cfg.occlusion > 0 and rng.random() < cfg.occlusion:
        oh, ow = (int(rng.uniform(1 / 8, 1 / 3) * n) for n in (h, w))
        y0, x0 = int(rng.integers(0, h - oh + 1)), int(rng.integers(0, w - ow + 1))
        out[y0 : y0 + oh, x0 : x0 + ow] = rng.uniform(0, 255)
    if cfg.noise > 0:
        out = out + rng.normal(0.0, cfg.noise, out.shape).astype(np.float32)
    return np.clip(out, 0, 255)
