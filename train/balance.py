"""Class imbalance: per-class loss weights or class-balanced sampling (FER2013 has 436 disgust vs 7,215 happy)."""

from __future__ import annotations

import numpy as np

BALANCE_MODES = ("none", "weights", "sampling")


def balanced_class_weights(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """``n / (k * count_c)`` per class (scikit-learn's "balanced"); absent classes get weight 0."""
    counts = np.bincount(np.asarray(labels, np.int64), minlength=num_classes).astype(np.float64)
    present = counts > 0
    weights = np.zeros(num_classes)
    weights[present] = counts.sum() / (present.sum() * counts[present])
    return weights


def balanced_order(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One epoch of indices drawn so every present class is equally frequent (rare classes repeat)."""
    labels = np.asarray(labels, np.int64)
    classes = np.unique(labels)
    per_class = int(np.ceil(len(labels) / len(classes)))
    picks = [rng.choice(np.flatnonzero(labels == c), per_class, replace=True) for c in classes]
    return rng.permutation(np.concatenate(picks))[: len(labels)]
