"""RAF-DB basic: ``EmoLabel/list_patition_label.txt`` (sic) + ``Image/aligned`` or ``Image/original``.

Each label line is ``train_00001.jpg 5``; codes 1 surprise, 2 fear, 3 disgust,
4 happy, 5 sad, 6 angry, 7 neutral. The name prefix is the official partition.
Aligned images are already face crops; original photos are Haar-cropped.
"""

from __future__ import annotations

from pathlib import Path

import cv2

from .corpus import Corpus, corpus_from_items
from .crop import CropReport, FaceCropper

RAF_CODES = {1: "surprise", 2: "fear", 3: "disgust", 4: "happy", 5: "sad", 6: "angry", 7: "neutral"}
LABEL_FILE = "list_patition_label.txt"


def read_raf_labels(path: Path) -> list[tuple[str, str]]:
    """(image name, canonical label) per line; errors name the file and line."""
    rows = []
    for no, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        try:
            name, code = parts[0], int(parts[1])
            rows.append((name, RAF_CODES[code]))
        except (IndexError, ValueError, KeyError):
            raise ValueError(f"{path}:{no}: expected '<name>.jpg <label 1-7>', got {line.strip()!r}") from None
    return rows


def load_rafdb(root: str | Path, size: tuple[int, int] = (48, 48), aligned: bool = True,
               cropper: FaceCropper | None = None) -> Corpus:
    """Load RAF-DB basic with its official train/test partition."""
    root = Path(root)
    found = sorted(root.rglob(LABEL_FILE)) if root.is_dir() else []
    if not found:
        raise FileNotFoundError(f"{LABEL_FILE} not found under {root} (expected {root}/EmoLabel/{LABEL_FILE})")
    base = found[0].parent.parent
    folder = base / "Image" / ("aligned" if aligned else "original")
    if not folder.is_dir():
        raise FileNotFoundError(f"RAF-DB image folder {folder} does not exist")
    items: list[tuple[str, str, str | None, str | None]] = []
    faces = []
    report = CropReport()
    crop = None if aligned else (cropper or FaceCropper(size))
    for name, label in read_raf_labels(found[0]):
        stem, suffix = name.rsplit(".", 1)
        path = folder / (f"{stem}_aligned.{suffix}" if aligned else name)
        partition = "test" if stem.startswith("test") else "train"
        items.append((str(path), label, None, partition))
        if crop is not None:
            faces.extend(crop.crop_files([path], report))
            continue
        report.total += 1
        img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if img is None:
            report.unreadable.append(str(path))
            faces.append(None)
        else:
            report.cropped += 1
            faces.append(cv2.resize(img, (size[1], size[0]), interpolation=cv2.INTER_AREA))
    return corpus_from_items("rafdb", items, faces, {"crop": report.to_dict(), "aligned": aligned})
