"""Per-face temporal smoothing: greedy IoU tracks, an EMA of each track's probabilities, a minimum confidence.

A kiosk must not flicker between labels when one frame's probabilities wobble: each face
is followed by IoU from frame to frame, its probability vector is averaged
exponentially (so it still sums to 1), and its reported label changes only when the
smoothed top probability reaches ``min_confidence`` (until then the previous label stays; a new track
reports ``None``). A face is reported once seen ``min_hits`` times and survives
``max_missed`` frames without a detection, so a detector blink does not flicker.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..detect import Box


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes."""
    ix = max(0, min(a.x + a.w, b.x + b.w) - max(a.x, b.x))
    iy = max(0, min(a.y + a.h, b.y + b.h) - max(a.y, b.y))
    inter = ix * iy
    union = a.w * a.h + b.w * b.h - inter
    return inter / union if union > 0 else 0.0


@dataclass
class Track:
    """One face followed over frames."""

    id: int
    box: Box
    probabilities: np.ndarray  # smoothed, in the model's label order
    scores: np.ndarray | None = None  # raw head outputs of the last frame the face was seen in (not smoothed)
    label: str | None = None
    hits: int = 1
    missed: int = 0


@dataclass(frozen=True)
class TrackedFace:
    """A face of the current frame as the service reports it."""

    track: int
    box: Box
    label: str | None
    probability: float  # smoothed probability of ``label`` (of the top class while ``label`` is None)
    probabilities: dict[str, float]
    scores: dict[str, float] | None = None  # raw head outputs of the last frame it was seen in


class FaceTracker:
    """Matches each frame's faces to tracks and smooths their probabilities."""

    def __init__(self, labels: Sequence[str], alpha: float = 0.4, iou_threshold: float = 0.3, max_missed: int = 5,
                 min_hits: int = 2, min_confidence: float = 0.0):
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        self.labels = list(labels)
        self.alpha = alpha
        self.iou_threshold = iou_threshold
        self.max_missed = max_missed
        self.min_hits = min_hits
        self.min_confidence = min_confidence
        self.tracks: list[Track] = []
        self._next_id = 1

    def update(self, boxes: Sequence[Box], probabilities: np.ndarray,
               scores: np.ndarray | None = None) -> list[TrackedFace]:
        """Feed one frame's faces (boxes and their (N, K) probabilities); returns the faces to report.

        ``scores``, the (N, K) raw head outputs of the same faces, are kept as they are (a raw SVM
        margin has no meaning averaged over frames) so that events can carry them beside the
        smoothed probabilities.

        Reported are the tracks seen in at least ``min_hits`` frames and missed in at most
        ``max_missed`` consecutive ones, in track order.
        """
        raw = None if scores is None else np.asarray(scores, np.float32).reshape(len(boxes), len(self.labels))
        probs = np.asarray(probabilities, np.float32).reshape(len(boxes), len(self.labels))
        pairs = sorted(((iou(t.box, b), ti, bi) for ti, t in enumerate(self.tracks) for bi, b in enumerate(boxes)),
                       reverse=True)
        matched_tracks: set[int] = set()
        track_of_box: dict[int, Track] = {}
        for overlap, ti, bi in pairs:
            if overlap < self.iou_threshold:
                break
            if ti in matched_tracks or bi in track_of_box:
                continue
            matched_tracks.add(ti)
            track = self.tracks[ti]
            track.box, track.hits, track.missed = boxes[bi], track.hits + 1, 0
            track.probabilities = self.alpha * probs[bi] + (1.0 - self.alpha) * track.probabilities
            track.scores = None if raw is None else raw[bi].copy()
            track_of_box[bi] = track
        for ti, track in enumerate(self.tracks):
            if ti not in matched_tracks:
                track.missed += 1
        self.tracks = [t for t in self.tracks if t.missed <= self.max_missed]
        for bi, box in enumerate(boxes):
            if bi not in track_of_box:
                track = Track(self._next_id, box, probs[bi].copy(), None if raw is None else raw[bi].copy())
                self._next_id += 1
                self.tracks.append(track)
                track_of_box[bi] = track
        for track in track_of_box.values():
            self._relabel(track)
        # A track missed for a few frames is still reported (with its last box): one frame in
        # which the detector blinks must not make a face vanish and reappear.
        return [self._face(t) for t in sorted(self.tracks, key=lambda t: t.id) if t.hits >= self.min_hits]

    def _relabel(self, track: Track) -> None:
        top = int(np.argmax(track.probabilities))
        if float(track.probabilities[top]) >= self.min_confidence:
            track.label = self.labels[top]

    def _face(self, track: Track) -> TrackedFace:
        p = track.probabilities
        index = self.labels.index(track.label) if track.label is not None else int(np.argmax(p))
        return TrackedFace(
            track=track.id, box=track.box, label=track.label, probability=round(float(p[index]), 4),
            probabilities={name: round(float(v), 4) for name, v in zip(self.labels, p)},
            scores=None if track.scores is None else {
                name: round(float(v), 4) for name, v in zip(self.labels, track.scores)},
        )
