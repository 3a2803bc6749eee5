"""CK+ (extended Cohn-Kanade): the original sequence layout and the 48x48 class-folder variant.

Original: ``cohn-kanade-images/S005/001/S005_001_00000011.png`` frames and
``Emotion/S005/001/S005_001_00000011_emotion.txt`` holding one code
(0 neutral, 1 anger, 2 contempt, 3 disgust, 4 fear, 5 happy, 6 sadness,
7 surprise). Only sequences with an Emotion file are labelled; their last
``peak_frames`` frames get the label and, optionally, the first frame is a
neutral face. Contempt is not one of the 7 classes and is skipped (counted).
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np

from edgefer.runtime.datasets import IMAGE_SUFFIXES, FaceDataset
from edgefer.runtime.labels import EMOTIONS, canonical_label

from .corpus import Corpus, corpus_from_items
from .crop import CropReport, FaceCropper

log = logging.getLogger(__name__)

CK_CODES = {0: "neutral", 1: "angry", 2: None, 3: "disgust", 4: "fear", 5: "happy", 6: "sad", 7: "surprise"}
_FRAME_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")


def _find_dir(root: Path, name: str) -> Path:
    for cand in (root / name, *root.glob(f"*/{name}")):
        if cand.is_dir():
            return cand
    raise FileNotFoundError(
        f"CK+ folder {name!r} not found under {root}; expected {root}/cohn-kanade-images and {root}/Emotion"
    )


def read_emotion_code(path: Path) -> int:
    """The integer code in a CK+ ``*_emotion.txt`` file (stored as e.g. ``3.0000000e+00``)."""
    text = path.read_text().strip()
    try:
        code = int(float(text))
    except ValueError:
        raise ValueError(f"{path}: expected one emotion code 0-7, got {text[:40]!r}") from None
    if code not in CK_CODES:
        raise ValueError(f"{path}: emotion code {code} is outside 0-7")
    return code


def load_ckplus(
    root: str | Path,
    size: tuple[int, int] = (48, 48),
    peak_frames: int = 3,
    neutral_first: bool = True,
    cropper: FaceCropper | None = None,
) -> Corpus:
    """Load the original CK+ layout, Haar-cropping every frame used."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"CK+ folder {root} does not exist")
    images_dir, emotion_dir = _find_dir(root, "cohn-kanade-images"), _find_dir(root, "Emotion")
    items: list[tuple[str, str, str | None, str | None]] = []
    contempt = 0
    for label_file in sorted(emotion_dir.rglob("*_emotion.txt")):
        code = read_emotion_code(label_file)
        subject, sequence = label_file.parent.parent.name, label_file.parent.name
        seq_dir = images_dir / subject / sequence
        frames = sorted(p for p in seq_dir.glob("*") if p.suffix.lower() in _FRAME_SUFFIXES)
        if not frames:
            log.warning("%s has a label but %s holds no frames; skipped", label_file, seq_dir)
            continue
        if CK_CODES[code] is None:
            contempt += 1
            continue
        for frame in frames[-peak_frames:]:
            items.append((str(frame), CK_CODES[code], subject, None))
        if neutral_first and len(frames) > peak_frames:
            items.append((str(frames[0]), "neutral", subject, None))
    if not items:
        raise ValueError(f"no labelled CK+ sequences under {root} (Emotion/*/*/*_emotion.txt with matching frames)")
    report = CropReport()
    faces = (cropper or FaceCropper(size)).crop_files([Path(it[0]) for it in items], report)
    return corpus_from_items("ckplus", items, faces, {
        "crop": report.to_dict(), "contempt_sequences_skipped": contempt, "peak_frames": peak_frames,
        "neutral_first": neutral_first,
    })


#: The one CK+ class outside :data:`EMOTIONS`; the 8-class protocol keeps it as a label of its own.
CKPLUS48_CONTEMPT = "contempt"


def load_ckplus48(root: str | Path, size: tuple[int, int] | None = (48, 48), contempt: bool = False) -> Corpus:
    """Load the 48x48 class-folder CK+ (``anger/S010_004_00000017.png``); subjects come from the file names.

    Folder names map to the project's labels (``anger`` -> ``angry``, ``sadness`` -> ``sad``).
    The label set is the classes present, in :data:`EMOTIONS` order: this variant has no
    neutral faces, so the usual 7-class protocol (``contempt=False``, contempt dropped as
    the papers do) has 6 classes; ``contempt=True`` (the 8-class protocol) appends
    ``contempt`` as a 7th present class. A model trained on it outputs exactly these classes.
    ``size=None`` keeps the crops as they are (they must then all be one size).
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"CK+ folder {root} does not exist (expected <root>/anger/S010_004_00000017.png ...)")
    folders: dict[str, Path] = {}
    dropped = 0
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        name = canonical_label(folder.name)
        if name is None and folder.name.strip().lower() == CKPLUS48_CONTEMPT:
            if not contempt:
                dropped = sum(1 for f in folder.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
                continue
            name = CKPLUS48_CONTEMPT
        if name is None:
            raise ValueError(f"{folder}: {folder.name!r} is not a CK+ class (anger, contempt, disgust, fear, happy, "
                             f"sadness, surprise, neutral); move it out of {root}")
        if name in folders:
            raise ValueError(f"{folder} and {folders[name]} are both {name!r}; keep one of them")
        folders[name] = folder
    names = tuple(e for e in EMOTIONS if e in folders) + ((CKPLUS48_CONTEMPT,) if CKPLUS48_CONTEMPT in folders else ())
    if not names:
        raise ValueError(f"no CK+ class folders (anger, disgust, ...) under {root}")
    images, labels, sources, subjects, skipped = [], [], [], [], []
    for index, name in enumerate(names):
        for path in sorted(p for p in folders[name].iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
            stem = path.name
            if stem[:1].upper() != "S" or "_" not in stem:
                raise ValueError(f"{path}: expected a CK+ name like S010_004_00000017.png to know the subject")
            img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
            if img is None:
                log.warning("skipping unreadable image %s", path)
                skipped.append(str(path))
                continue
            if size is not None and img.shape != tuple(size):
                img = cv2.resize(img, (size[1], size[0]), interpolation=cv2.INTER_AREA
                                 if img.shape[0] > size[0] else cv2.INTER_LINEAR)
            images.append(img)
            labels.append(index)
            sources.append(str(path))
            subjects.append(stem.split("_", 1)[0].upper())
    if not images:
        raise ValueError(f"no readable images in the CK+ class folders under {root}")
    if size is None and len({im.shape for im in images}) > 1:
        raise ValueError(f"the CK+ images under {root} differ in size; pass a size to resize them")
    faces = FaceDataset(np.stack(images), np.asarray(labels, np.int64), sources, skipped, names)
    report = {"skipped": skipped, "classes": list(names), "contempt": "kept" if contempt else f"dropped ({dropped})",
              "neutral": "absent from this variant" if "neutral" not in names else "present"}
    return Corpus("ckplus48", faces, np.asarray(subjects), None, report)
