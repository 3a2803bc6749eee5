"""A labelled face set with the facts protocols need: who each face is and any official split.

The runtime's :class:`FaceDataset` holds images and labels; research sets add the
subject of every face (for subject-independent splits and subject-wise k-fold)
and, for some, an official train/test partition. The loaders of each layout build
on this module; :mod:`.corpora` is the registry that picks one by name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgefer.runtime.datasets import FaceDataset
from edgefer.runtime.labels import EMOTIONS


@dataclass
class Corpus:
    """Faces plus per-face subject ids and official partition names (``None`` where unknown)."""

    name: str
    faces: FaceDataset
    subjects: np.ndarray | None = None  # (N,) str
    partition: np.ndarray | None = None  # (N,) str, e.g. "train" / "test" for RAF-DB
    report: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.faces)

    def subset(self, index: np.ndarray) -> "Corpus":
        index = np.asarray(index, np.int64)
        return Corpus(
            self.name, self.faces.subset(index),
            None if self.subjects is None else self.subjects[index],
            None if self.partition is None else self.partition[index],
            self.report,
        )


def corpus_from_items(
    name: str,
    items: list[tuple[str, str, str | None, str | None]],
    faces: list[np.ndarray | None],
    report: dict[str, Any],
) -> Corpus:
    """Assemble a corpus from ``(source, label, subject, partition)`` items and their face crops.

    Items whose crop is ``None`` (no face, unreadable) are left out here; the
    loader has already listed them in ``report``.
    """
    keep = [i for i, f in enumerate(faces) if f is not None]
    if not keep:
        raise ValueError(
            f"{name}: none of the {len(items)} images gave a usable face; check the path and that the files are "
            "readable images (see the crop report for the names)"
        )
    images = np.stack([faces[i] for i in keep])
    labels = np.asarray([EMOTIONS.index(items[i][1]) for i in keep], np.int64)
    sources = [items[i][0] for i in keep]
    skipped = [it[0] for it, f in zip(items, faces) if f is None]
    subjects = [items[i][2] for i in keep]
    partition = [items[i][3] for i in keep]
    return Corpus(
        name,
        FaceDataset(images, labels, sources, skipped),
        None if any(s is None for s in subjects) else np.asarray(subjects),
        None if any(p is None for p in partition) else np.asarray(partition),
        report,
    )
