"""Raw head scores -> probabilities a person can read: ``softmax(scores / T)``.

``T`` is the temperature stored in the artifact's manifest (``calibration.temperature``, or the
one of the test-time views in use from ``calibration.temperatures``), fitted on validation data
when the artifact was made. Dividing by one positive number
never changes the top class, only how confident the probabilities say the model is.
An artifact without a calibration record still works: its probabilities are the plain
softmax of its scores (for a softmax head, its own outputs), with a warning logged once.
"""

from __future__ import annotations

import logging

import numpy as np

from .manifest import Manifest

log = logging.getLogger(__name__)

#: What the raw ``scores`` of each head are, as events name them in ``scores_kind``.
SCORES_KIND = {"svm": "svm_margins", "softmax": "softmax_outputs"}

_warned: set[str] = set()


def softmax(scores: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of ``scores / temperature`` (computed in float64, returned as float64)."""
    z = np.asarray(scores, np.float64) / float(temperature)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


class ProbabilityMap:
    """Turns an artifact's raw scores into probabilities, as its manifest says."""

    def __init__(self, manifest: Manifest, where: str = "model", views: str | None = None):
        """``views``: the test-time view setting the scores come from (``views_name``), whose own
        temperature the manifest may hold; ``None`` takes its default one."""
        self.head = manifest.head
        self.scores_kind = SCORES_KIND.get(manifest.head, f"{manifest.head}_outputs")
        self.temperature = manifest.calibration.temperature_for(views) if manifest.calibration else None
        self._where = where

    @property
    def calibrated(self) -> bool:
        return self.temperature is not None

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        """(N, K) raw scores -> (N, K) probabilities, each row summing to 1."""
        scores = np.asarray(scores, np.float64)
        if self.temperature is not None:
            return softmax(scores, self.temperature)
        if self._where not in _warned:
            _warned.add(self._where)
            log.warning("%s has no calibration temperature in its manifest: probabilities are the plain softmax "
                        "of its scores and may over- or under-state confidence; add one with `edgefer calibrate`",
                        self._where)
        if self.head == "softmax":
            # A softmax head already outputs probabilities (up to INT8 rounding): renormalise, do not squash them.
            clipped = np.clip(scores, 0.0, None)
            total = clipped.sum(axis=-1, keepdims=True)
            return np.divide(clipped, total, out=np.full_like(clipped, 1.0 / max(scores.shape[-1], 1)),
                             where=total > 0)
        return softmax(scores)
