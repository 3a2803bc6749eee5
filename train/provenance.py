"""Which faces a model has seen: the ``training.sources`` record of ``meta.json`` and of every artifact's manifest.

Each entry is ``{"dataset", "role", "path", "faces", "subjects"}``: ``role`` is ``train``,
``validation`` (epoch choice, SVM grid: seen too) or ``test`` (only evaluated); ``subjects`` lists
the people of that part, or is ``None`` where the dataset has no subject ids (FER2013). Dataset
names are the layout's for research sets (``kdef``; CK+ and CK+48 are both ``ckplus``: one set of
people) and the folder's name for class folders (``fer2013``). ``edgefer eval-cross`` takes the
people a model never saw from here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

#: Layouts whose subject ids name the same people.
_LAYOUT_DATASET = {"kdef": "kdef", "ckplus": "ckplus", "ckplus48": "ckplus", "jaffe": "jaffe", "rafdb": "rafdb"}
SEEN_ROLES = ("train", "validation")


def dataset_name(layout: str, root: str | Path) -> str:
    """``kdef`` for the KDEF layout, ``fer2013`` for ``../shared/datasets/fer2013`` (or its ``train/``)."""
    if layout in _LAYOUT_DATASET:
        return _LAYOUT_DATASET[layout]
    path = Path(root)
    if path.suffix.lower() == ".csv":
        return path.stem.lower()
    if path.name.lower() in ("train", "val", "test") and path.parent.name:
        path = path.parent
    return path.name.lower() or str(root)


def source(dataset: str, role: str, path: str | Path, faces: int, subjects: Iterable[str] | None) -> dict[str, Any]:
    """One ``training.sources`` entry."""
    if role not in (*SEEN_ROLES, "test"):
        raise ValueError(f"role must be train, validation or test, not {role!r}")
    return {"dataset": dataset, "role": role, "path": str(path), "faces": int(faces),
            "subjects": None if subjects is None else sorted({str(s) for s in subjects})}


def seen_subjects(sources: list[dict[str, Any]], dataset: str) -> set[str] | None:
    """People of ``dataset`` whose faces trained or selected the model; ``None``: some part has no subject ids.

    An empty set means the model never saw that dataset at all.
    """
    seen: set[str] = set()
    for entry in sources:
        if entry.get("dataset") != dataset or entry.get("role") not in SEEN_ROLES:
            continue
        if entry.get("subjects") is None:
            return None
        seen.update(entry["subjects"])
    return seen
