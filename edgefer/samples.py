"""Sample images for the demo and tests, made on the spot (no third-party media is committed).

The demo photo is NASA's public-domain ``astronaut`` image that scikit-image
ships inside its wheel; it is read from an installed scikit-image or straight
out of a downloaded wheel, so the lean runtime environment need not install it.
"""

from __future__ import annotations

import argparse
import io
import zipfile
from pathlib import Path

import cv2
import numpy as np

_MEMBER = "skimage/data/astronaut.png"


def astronaut_bgr(wheel_dir: str | Path | None = None) -> np.ndarray:
    """The astronaut photo as a BGR uint8 array (512x512)."""
    try:
        from skimage import data

        return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    except ImportError:
        pass
    wheels = sorted(Path(wheel_dir).glob("scikit_image-*.whl")) if wheel_dir else []
    if not wheels:
        raise FileNotFoundError(
            "the astronaut sample comes from scikit-image: pip install scikit-image, or "
            "pip download --no-deps scikit-image -d DIR and pass --wheel-dir DIR"
        )
    with zipfile.ZipFile(wheels[-1]) as zf:
        png = zf.read(_MEMBER)
    img = cv2.imdecode(np.frombuffer(io.BytesIO(png).getvalue(), np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError(f"{wheels[-1]} holds no readable {_MEMBER}")
    return img


def main() -> int:
    parser = argparse.ArgumentParser(description="write the astronaut demo photo as a JPEG")
    parser.add_argument("out")
    parser.add_argument("--wheel-dir")
    args = parser.parse_args()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), astronaut_bgr(args.wheel_dir))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
