"""Labelled face datasets: a class-folder tree or the original ``fer2013.csv``.

Both loaders map class names through :func:`canonical_label`, so ``anger/``,
``Angry/`` and ``0_angry/`` all land on ``angry``; folders that are not one of
the 7 emotions (CK+'s ``contempt``) are skipped with a warning.
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from .images import ImageError, read_image
from .labels import EMOTIONS, canonical_label
from .limits import DEFAULT_MAX_IMAGE_PIXELS

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".pgm", ".tif", ".tiff", ".webp"})

#: FER2013 CSV label ids, in the order the challenge published them.
_FER_CSV_IDS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
_FER_CSV_USAGE = {"train": "Training", "val": "PublicTest", "test": "PrivateTest"}


@dataclass
class FaceDataset:
    """Grey uint8 faces of one size with integer labels in :data:`EMOTIONS` order."""

    images: np.ndarray  # (N, H, W) uint8
    labels: np.ndarray  # (N,) int64
    sources: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    label_names: tuple[str, ...] = EMOTIONS

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def class_counts(self) -> dict[str, int]:
        counts = np.bincount(self.labels, minlength=len(self.label_names))
        return {name: int(c) for name, c in zip(self.label_names, counts)}

    def subset(self, index: np.ndarray) -> "FaceDataset":
        return FaceDataset(
            self.images[index], self.labels[index], [self.sources[i] for i in index], [], self.label_names
        )


def _fit(img: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    if size is None or img.shape == size:
        return img
    interp = cv2.INTER_AREA if img.shape[0] > size[0] else cv2.INTER_LINEAR
    return cv2.resize(img, (size[1], size[0]), interpolation=interp)


def load_class_folders(
    root: str | Path, size: tuple[int, int] | None = (48, 48), limit_per_class: int | None = None,
    max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
) -> FaceDataset:
    """Load ``<root>/<class>/*.jpg`` (FER2013 Kaggle layout and any class-folder set).

    Images are read grey and resized to ``size`` (height, width). Unreadable
    files (also cut-short ones and those over ``max_pixels``, see :func:`.images.read_image`)
    are listed in ``skipped`` rather than aborting the load.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset folder {root} does not exist (expected <root>/<class>/*.jpg)")
    images: list[np.ndarray] = []
    labels: list[int] = []
    sources: list[str] = []
    skipped: list[str] = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        label = canonical_label(folder.name)
        if label is None:
            log.warning("skipping class folder %s: %r is not one of %s", folder, folder.name, ", ".join(EMOTIONS))
            continue
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if limit_per_class is not None:
            files = files[:limit_per_class]
        for path in files:
            try:
                img = read_image(path, grey=True, max_pixels=max_pixels)
            except ImageError as exc:  # truncated, over the pixel budget, not an image
                log.warning("skipping %s", exc)
                skipped.append(str(path))
                continue
            images.append(_fit(img, size))
            labels.append(EMOTIONS.index(label))
            sources.append(str(path))
    if not images:
        raise ValueError(
            f"no labelled images found under {root}: expected sub-folders named after emotions "
            f"({', '.join(EMOTIONS)}) holding image files"
        )
    if size is None and len({im.shape for im in images}) > 1:
        raise ValueError(f"images under {root} differ in size; pass a size to resize them")
    return FaceDataset(np.stack(images), np.asarray(labels, np.int64), sources, skipped)


def load_fer2013_csv(
    path: str | Path, split: str = "train", size: tuple[int, int] | None = (48, 48)
) -> FaceDataset:
    """Load the original ``fer2013.csv`` (``emotion,pixels,Usage``) for one split.

    ``split`` is ``train`` (Training), ``val`` (PublicTest) or ``test``
    (PrivateTest); the CSV's label ids are remapped to :data:`EMOTIONS` order.
    """
    path = Path(path)
    if split not in _FER_CSV_USAGE:
        raise ValueError(f"unknown split {split!r}; use one of {', '.join(_FER_CSV_USAGE)}")
    usage = _FER_CSV_USAGE[split]
    images, labels, sources, skipped = [], [], [], []
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        missing = {"emotion", "pixels"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{path} is not a FER2013 CSV: missing column(s) {', '.join(sorted(missing))}")
        for row_no, row in enumerate(reader, start=2):
            if "Usage" in row and row["Usage"] != usage:
                continue
            try:
                pixels = np.asarray(row["pixels"].split(), dtype=np.uint8)
                side = int(round(len(pixels) ** 0.5))
                img = pixels.reshape(side, side)
                label = _FER_CSV_IDS[int(row["emotion"])]
            except (ValueError, IndexError):
                skipped.append(f"{path}:{row_no}")
                continue
            images.append(_fit(img, size))
            labels.append(EMOTIONS.index(label))
            sources.append(f"{path}:{row_no}")
    if not images:
        raise ValueError(f"{path} has no usable rows for split {split!r} (Usage == {usage!r})")
    return FaceDataset(np.stack(images), np.asarray(labels, np.int64), sources, skipped)


def load_dataset(
    spec: str | Path, split: str = "train", size: tuple[int, int] | None = (48, 48),
    limit_per_class: int | None = None,
) -> FaceDataset:
    """Load a dataset from a class-folder root, a root with ``<split>/`` inside, or a FER2013 CSV."""
    path = Path(spec)
    if path.suffix.lower() == ".csv":
        return load_fer2013_csv(path, split, size)
    if (path / split).is_dir():
        path = path / split
    return load_class_folders(path, size, limit_per_class)
