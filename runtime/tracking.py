"""Detect every N frames, follow the faces in between.

A full detection pass costs tens of milliseconds on a Raspberry Pi; following a
known face costs a fraction of one: its grey patch from the last detection is
matched (normalised cross-correlation) inside a window around its last box, on
a copy shrunk so the face is ``template_width`` pixels wide. A face whose best
match falls below ``min_score`` is dropped and the next frame is a detection
frame, so a face that leaves or turns away costs at most one frame of lag.
A face the detector misses on a detection frame (Haar flickers on turned or
blurred faces) is still followed if it matches, for at most ``keep_missed``
detection passes in a row.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .detect import Box, Detector, shrink


@dataclass(frozen=True)
class TrackConfig:
    """How often to detect and how to follow faces in between."""

    # detect_every, min_score and keep_missed: chosen on benchmarks/track_dev.py's development clips (track-dev.json)
    detect_every: int = 6
    search: float = 0.5  # the search window extends this fraction of the box side on each side
    min_score: float = 0.4  # normalised cross-correlation below which a face counts as lost
    template_width: int = 24  # faces are matched shrunk to this width
    keep_missed: int = 1  # detection passes a followed face may be missed by the detector before it is dropped

    def __post_init__(self) -> None:
        if self.detect_every < 1:
            raise ValueError(f"detect_every must be at least 1, got {self.detect_every}")
        if not 0.0 < self.search <= 2.0:
            raise ValueError(f"search must be in (0, 2] (fraction of the face side), got {self.search}")
        if not -1.0 <= self.min_score < 1.0:
            raise ValueError(f"min_score must be in [-1, 1), got {self.min_score}")
        if self.keep_missed < 0:
            raise ValueError(f"keep_missed must be >= 0, got {self.keep_missed}")
        if self.template_width < 8:
            raise ValueError(f"template_width must be at least 8 pixels, got {self.template_width}")


@dataclass
class _Track:
    box: Box
    template: np.ndarray  # grey patch of the face, shrunk by ``scale``
    scale: float
    missed: int = 0  # detection passes in a row that did not find this face


def _grey(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image


class TrackingDetector:
    """Wraps any :class:`~.detect.Detector`: detects every ``detect_every`` frames, tracks in between.

    It is a detector itself (same ``detect``/``needs_colour``), so the pipeline
    needs no change; ``reset`` forgets the faces (a new stream or unrelated image).
    """

    def __init__(self, detector: Detector, config: TrackConfig = TrackConfig()):
        self.detector = detector
        self.config = config
        self.needs_colour = bool(getattr(detector, "needs_colour", False))
        self._tracks: list[_Track] = []
        self._since_detect = 0
        self._shape: tuple[int, ...] | None = None
        self.detections = 0  # full detection passes, for benchmarks
        self.tracked = 0  # frames served by tracking

    def reset(self) -> None:
        """Forget all faces: the next frame is a detection frame."""
        self._tracks = []
        self._shape = None

    def detect(self, image: np.ndarray) -> list[Box]:
        """Faces in this frame, largest first: detected, or followed from the last detection."""
        due = (self._shape != image.shape or self._since_detect + 1 >= self.config.detect_every
               or not self._tracks)
        if due:
            return self._detect(image)
        grey = _grey(image)
        kept = []
        for track in self._tracks:
            moved = self._follow(track, grey)
            if moved is None:
                # A lost face: detect on the next frame rather than wait out the interval.
                self._since_detect = self.config.detect_every
                continue
            kept.append(moved)
        self._tracks = kept
        self._since_detect += 1
        self.tracked += 1
        return sorted((t.box for t in self._tracks), key=lambda b: b.w * b.h, reverse=True)

    def _detect(self, image: np.ndarray) -> list[Box]:
        boxes = self.detector.detect(image)
        grey = _grey(image)
        same_stream = self._shape == image.shape
        tracks = [t for t in (self._template(b, grey) for b in boxes) if t is not None]
        for old in self._tracks if same_stream else []:
            if old.missed >= self.config.keep_missed or any(_overlaps(old.box, b) for b in boxes):
                continue
            moved = self._follow(old, grey)
            if moved is not None:
                moved.missed = old.missed + 1
                tracks.append(moved)
        self._tracks = tracks
        self._shape = image.shape
        self._since_detect = 0
        self.detections += 1
        return sorted((t.box for t in tracks), key=lambda b: b.w * b.h, reverse=True)

    def _template(self, box: Box, grey: np.ndarray) -> _Track | None:
        patch = box.clipped(grey.shape[1], grey.shape[0]).crop(grey)
        if patch.shape[0] < 4 or patch.shape[1] < 4:
            return None
        scale = min(1.0, self.config.template_width / box.w)
        return _Track(box, shrink(patch, scale), scale)

    def _follow(self, track: _Track, grey: np.ndarray) -> _Track | None:
        box, cfg = track.box, self.config
        height, width = grey.shape[:2]
        pad_x, pad_y = round(box.w * cfg.search), round(box.h * cfg.search)
        window = Box(box.x - pad_x, box.y - pad_y, box.w + 2 * pad_x, box.h + 2 * pad_y).clipped(width, height)
        region = shrink(window.crop(grey), track.scale)
        th, tw = track.template.shape
        if region.shape[0] < th or region.shape[1] < tw:
            return None
        scores = cv2.matchTemplate(region, track.template, cv2.TM_CCOEFF_NORMED)
        _, best, _, (bx, by) = cv2.minMaxLoc(scores)
        if not np.isfinite(best) or best < cfg.min_score:
            return None
        moved = Box(window.x + round(bx / track.scale), window.y + round(by / track.scale), box.w, box.h)
        return _Track(moved, track.template, track.scale, track.missed)


# A followed box sharing this much of the smaller box with a detected face is that face, found again.
# Chosen on benchmarks/track_dev.py's clips: 0.1 and 0.2 both removed 6 of 225 false boxes, no face lost.
SAME_FACE_SHARE = 0.2


def _overlaps(a: Box, b: Box) -> bool:
    """Whether two boxes are one face found twice: either box's centre lies inside the other, or they
    share at least :data:`SAME_FACE_SHARE` of the smaller box (a box on part of a face, such as the
    mouth and chin that both cascades sometimes take for a small face, beside the whole face)."""
    def inside(p: Box, q: Box) -> bool:
        cx, cy = p.x + p.w / 2, p.y + p.h / 2
        return q.x <= cx <= q.x + q.w and q.y <= cy <= q.y + q.h

    iw = min(a.x + a.w, b.x + b.w) - max(a.x, b.x)
    ih = min(a.y + a.h, b.y + b.h) - max(a.y, b.y)
    shared = iw > 0 and ih > 0 and iw * ih >= SAME_FACE_SHARE * min(a.w * a.h, b.w * b.h)
    return inside(a, b) or inside(b, a) or shared

