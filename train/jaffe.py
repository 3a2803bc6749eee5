"""JAFFE: ``KA.AN1.39.tiff`` = subject KA, angry (first pose), image 39; Haar-cropped."""

from __future__ import annotations

import logging
import re
from pathlib import Path

from .corpus import Corpus, corpus_from_items
from .crop import CropReport, FaceCropper

log = logging.getLogger(__name__)

JAFFE_EMOTIONS = {"AN": "angry", "DI": "disgust", "FE": "fear", "HA": "happy", "NE": "neutral", "SA": "sad",
                  "SU": "surprise"}
_NAME = re.compile(r"^([A-Z]{2})\.(AN|DI|FE|HA|NE|SA|SU)\d*\.\d+\.tiff?$", re.IGNORECASE)


def parse_jaffe_name(name: str) -> tuple[str, str]:
    """(subject, canonical emotion) of a JAFFE file name; ``ValueError`` if it is not one."""
    m = _NAME.match(name)
    if not m:
        raise ValueError(f"{name!r} is not a JAFFE name: expected <subject>.<AN|DI|FE|HA|NE|SA|SU><n>.<id>.tiff")
    return m.group(1).upper(), JAFFE_EMOTIONS[m.group(2).upper()]


def load_jaffe(root: str | Path, size: tuple[int, int] = (48, 48), cropper: FaceCropper | None = None) -> Corpus:
    """Load every JAFFE image under ``root`` (non-JAFFE files are ignored and counted)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"JAFFE folder {root} does not exist")
    items: list[tuple[str, str, str | None, str | None]] = []
    ignored: list[str] = []
    for path in sorted(p for p in root.rglob("*") if p.suffix.lower() in (".tif", ".tiff")):
        try:
            subject, emotion = parse_jaffe_name(path.name)
        except ValueError:
            ignored.append(str(path))
            continue
        items.append((str(path), emotion, subject, None))
    if not items:
        raise ValueError(f"no JAFFE images (e.g. KA.AN1.39.tiff) under {root}")
    report = CropReport()
    faces = (cropper or FaceCropper(size)).crop_files([Path(it[0]) for it in items], report)
    return corpus_from_items("jaffe", items, faces, {"crop": report.to_dict(), "ignored": ignored})
