"""KDEF (Karolinska Directed Emotional Faces): file-name parsing, angle filter, Haar cropping.

Names are ``<session><sex><id><emotion><angle>.JPG``, e.g. ``AF01ANS.JPG``:
session A/B, female 01, angry, straight. The same person appears in both
sessions, so the subject is sex + id (``F01``).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

from .corpus import Corpus, corpus_from_items
from .crop import CropReport, FaceCropper

log = logging.getLogger(__name__)

KDEF_EMOTIONS = {"AF": "fear", "AN": "angry", "DI": "disgust", "HA": "happy", "NE": "neutral", "SA": "sad",
                 "SU": "surprise"}
KDEF_ANGLES = ("FL", "HL", "S", "HR", "FR")
#: The angles of the published protocol (2,938 images: 2,644 train / 294 test).
PUBLISHED_ANGLES = ("S", "HL", "HR")

_NAME = re.compile(r"^([AB])([FM])(\d{2})(AF|AN|DI|HA|NE|SA|SU)(FL|HL|S|HR|FR)\.jpe?g$", re.IGNORECASE)


@dataclass(frozen=True)
class KdefName:
    """The fields of one KDEF file name."""

    session: str
    sex: str
    number: int
    emotion: str  # canonical label
    angle: str

    @property
    def subject(self) -> str:
        return f"{self.sex}{self.number:02d}"


def parse_kdef_name(name: str) -> KdefName:
    """Parse ``AF01ANS.JPG``; raises ``ValueError`` naming the expected pattern."""
    m = _NAME.match(name)
    if not m:
        raise ValueError(
            f"{name!r} is not a KDEF file name: expected <session A|B><sex F|M><2-digit id>"
            f"<emotion {'|'.join(KDEF_EMOTIONS)}><angle {'|'.join(KDEF_ANGLES)}>.JPG, e.g. AF01ANS.JPG"
        )
    session, sex, number, emo, angle = m.groups()
    return KdefName(session.upper(), sex.upper(), int(number), KDEF_EMOTIONS[emo.upper()], angle.upper())


def load_kdef(
    root: str | Path,
    angles: tuple[str, ...] = PUBLISHED_ANGLES,
    size: tuple[int, int] = (48, 48),
    cropper: FaceCropper | None = None,
    no_face: str = "borrow",
) -> Corpus:
    """Load ``<root>/**/<name>.JPG`` for the given angles, Haar-cropped.

    The frontal Haar cascade misses some half-profile (HL/HR) photos. KDEF shot
    every pose of a session from a fixed head position, so with ``no_face="borrow"``
    such a photo is cut with the box Haar found on the same person, session and
    emotion's straight (S) photo; ``"drop"`` leaves it out. Either way the
    corpus report lists every photo Haar missed, which ones borrowed a box, the
    files that are not KDEF names and the unreadable ones.
    """
    if no_face not in ("borrow", "drop"):
        raise ValueError(f"no_face must be 'borrow' or 'drop', got {no_face!r}")
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"KDEF folder {root} does not exist (expected <root>/<id>/AF01ANS.JPG ...)")
    bad = [a for a in angles if a.upper() not in KDEF_ANGLES]
    if bad:
        raise ValueError(f"unknown KDEF angle(s) {', '.join(bad)}; use some of {', '.join(KDEF_ANGLES)}")
    wanted = {a.upper() for a in angles}
    items: list[tuple[str, str, str | None, str | None]] = []
    paths: list[Path] = []
    not_kdef: list[str] = []
    for path in sorted(p for p in root.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg")):
        try:
            name = parse_kdef_name(path.name)
        except ValueError:
            not_kdef.append(str(path))
            continue
        if name.angle in wanted:
            items.append((str(path), name.emotion, name.subject, None))
            paths.append(path)
    if not_kdef:
        log.warning("%d files under %s are not KDEF names and were ignored (e.g. %s)", len(not_kdef), root, not_kdef[0])
    if not items:
        raise ValueError(f"no KDEF images with angle(s) {', '.join(sorted(wanted))} under {root}")
    report = CropReport()
    cropper = cropper or FaceCropper(size)
    faces = cropper.crop_files(paths, report)
    borrowed: list[str] = []
    if report.no_face and no_face == "borrow":
        borrowed = _borrow_straight_boxes(cropper, paths, faces)
    if report.no_face:
        log.warning("Haar found no face in %d of %d KDEF images; %d cut with the box of their straight photo, "
                    "%d left out (all listed in the crop report)", len(report.no_face), report.total, len(borrowed),
                    len(report.no_face) - len(borrowed))
    return corpus_from_items("kdef", items, faces, {
        "angles": sorted(wanted), "crop": report.to_dict(), "no_face_policy": no_face,
        "borrowed_straight_box": borrowed, "left_out": [str(p) for p, f in zip(paths, faces) if f is None],
        "not_kdef_names": not_kdef,
    })


def _borrow_straight_boxes(cropper: FaceCropper, paths: list[Path], faces: list) -> list[str]:
    """Fill ``faces[i] is None`` in place with the crop at the Haar box of the matching S photo."""
    import cv2

    borrowed = []
    for i, path in enumerate(paths):
        if faces[i] is not None:
            continue
        name = parse_kdef_name(path.name)
        straight = path.with_name(f"{name.session}{name.sex}{name.number:02d}{path.name[4:6]}S{path.suffix}")
        straight_img = cv2.imread(str(straight), cv2.IMREAD_GRAYSCALE) if straight.is_file() else None
        box = cropper.locate(straight_img) if straight_img is not None else None
        img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if box is None or img is None or img.shape != straight_img.shape:
            continue
        faces[i] = cropper.cut(img, box)
        borrowed.append(str(path))
    return borrowed
