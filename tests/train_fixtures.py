"""Generated datasets in each research layout (KDEF, CK+, CK+48, JAFFE, RAF-DB) for the training tests.

Layouts that need Haar cropping use scikit-image's public-domain astronaut photo
(a real face the detector finds) and blank frames (where it finds none).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edgefer.runtime.labels import EMOTIONS

from .conftest import synthetic_face


def face_photo(size: int = 256) -> np.ndarray:
    """A grey photo with one real frontal face (the Haar detector finds it at this size)."""
    import skimage.data

    grey = cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2GRAY)
    return cv2.resize(grey, (size, size), interpolation=cv2.INTER_AREA)


def blank_photo(size: int = 256) -> np.ndarray:
    return np.full((size, size), 128, np.uint8)


def write_kdef(root: Path) -> Path:
    """Two people (F01, M02) in session A: S photos with a face; M02's HL photos blank (Haar misses them)."""
    face, blank = face_photo(), blank_photo()
    for person in ("AF01", "AM02"):
        folder = root / person
        folder.mkdir(parents=True, exist_ok=True)
        for emo in ("AF", "AN", "DI", "HA", "NE", "SA", "SU"):
            for angle in ("S", "HL", "HR", "FL"):
                img = blank if person == "AM02" and angle == "HL" else face
                cv2.imwrite(str(folder / f"{person}{emo}{angle}.JPG"), img)
    # M02 afraid has no straight photo to borrow a box from: its blank HL photo must be left out.
    (root / "AM02" / "AM02AFS.JPG").unlink()
    (root / "AF01" / "notes.jpg").write_bytes(cv2.imencode(".jpg", blank)[1].tobytes())
    return root


def write_ckplus(root: Path) -> Path:
    """Original CK+: 2 subjects, sequences of 5 frames, labels 1 (anger), 5 (happy), 2 (contempt), one unlabelled."""
    face = face_photo()
    sequences = {("S005", "001"): 1, ("S005", "002"): 5, ("S010", "001"): 2, ("S010", "003"): None}
    for (subject, seq), code in sequences.items():
        frames = root / "cohn-kanade-images" / subject / seq
        frames.mkdir(parents=True, exist_ok=True)
        for i in range(1, 6):
            cv2.imwrite(str(frames / f"{subject}_{seq}_{i:08d}.png"), face)
        if code is not None:
            labels = root / "Emotion" / subject / seq
            labels.mkdir(parents=True, exist_ok=True)
            (labels / f"{subject}_{seq}_00000005_emotion.txt").write_text(f"   {code:.7e}\n")
    return root


def write_ckplus48(root: Path, subjects: int = 6, per_subject: int = 3, seed: int = 0) -> Path:
    """CK+48 class folders (CK+ folder names, contempt included) of separable generated faces."""
    rng = np.random.default_rng(seed)
    names = {"angry": "anger", "sad": "sadness"}
    for label, emotion in enumerate(EMOTIONS):
        folder = root / names.get(emotion, emotion)
        folder.mkdir(parents=True, exist_ok=True)
        for s in range(subjects):
            for k in range(per_subject):
                cv2.imwrite(str(folder / f"S{100 + s:03d}_{label + 1:03d}_{k:08d}.png"), synthetic_face(label, rng))
    (root / "contempt").mkdir(exist_ok=True)
    cv2.imwrite(str(root / "contempt" / "S100_009_00000001.png"), synthetic_face(0, rng))
    return root


def write_jaffe(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    face = face_photo()
    for subject in ("KA", "KL"):
        for n, emo in enumerate(("AN", "DI", "FE", "HA", "NE", "SA", "SU")):
            cv2.imwrite(str(root / f"{subject}.{emo}1.{n + 10}.tiff"), face)
    cv2.imwrite(str(root / "README.tiff"), face)
    return root


def write_rafdb(root: Path, per_class: int = 2, seed: int = 0) -> Path:
    """RAF-DB basic: EmoLabel/list_patition_label.txt and Image/aligned/*_aligned.jpg (100x100)."""
    rng = np.random.default_rng(seed)
    raf_code = {"surprise": 1, "fear": 2, "disgust": 3, "happy": 4, "sad": 5, "angry": 6, "neutral": 7}
    aligned = root / "Image" / "aligned"
    aligned.mkdir(parents=True)
    (root / "EmoLabel").mkdir()
    lines = []
    n = 0
    for label, emotion in enumerate(EMOTIONS):
        for part in ("train", "test"):
            for _ in range(per_class):
                n += 1
                cv2.imwrite(str(aligned / f"{part}_{n:05d}_aligned.jpg"), synthetic_face(label, rng, 100))
                lines.append(f"{part}_{n:05d}.jpg {raf_code[emotion]}")
    (root / "EmoLabel" / "list_patition_label.txt").write_text("\n".join(lines) + "\n")
    return root
