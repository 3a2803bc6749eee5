"""Classification metrics in plain numpy (the runtime has no scikit-learn)."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np


ECE_BINS = 15


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> float:
    """ECE: the face-weighted mean |accuracy - confidence| over equal-width bins of the top-1 probability."""
    probs = np.asarray(probs)
    if len(probs) == 0:
        raise ValueError("ECE of no faces is undefined")
    conf = probs.max(axis=1)
    correct = probs.argmax(axis=1) == np.asarray(labels)
    # Bin i holds confidences in (i/bins, (i+1)/bins]; a confidence of exactly 0 cannot occur with softmax.
    which = np.clip(np.ceil(conf * bins).astype(np.int64) - 1, 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            ece += inside.mean() * abs(correct[inside].mean() - conf[inside].mean())
    return float(ece)



def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Rows are true classes, columns predicted classes."""
    cm = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(cm, (np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)), 1)
    return cm


def classification_summary(y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[str]) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class precision/recall/F1/support and the confusion matrix."""
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if y_true.shape != y_pred.shape or y_true.size == 0:
        raise ValueError(f"need equal-length, non-empty label arrays, got {y_true.shape} and {y_pred.shape}")
    k = len(labels)
    cm = confusion_matrix(y_true, y_pred, k)
    tp = np.diag(cm).astype(np.float64)
    predicted = cm.sum(axis=0).astype(np.float64)
    actual = cm.sum(axis=1).astype(np.float64)
    precision = np.divide(tp, predicted, out=np.zeros(k), where=predicted > 0)
    recall = np.divide(tp, actual, out=np.zeros(k), where=actual > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros(k), where=denom > 0)
    present = actual > 0
    return {
        "samples": int(y_true.size),
        "accuracy": float(tp.sum() / y_true.size),
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "per_class": {
            name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for name, p, r, f, s in zip(labels, precision, recall, f1, actual)
        },
        "labels": list(labels),
        "confusion_matrix": cm.tolist(),
    }


def format_summary(summary: dict[str, Any]) -> str:
    """A human-readable table of :func:`classification_summary`'s result."""
    labels = summary["labels"]
    width = max(len(n) for n in labels) + 2
    lines = [
        f"samples {summary['samples']}  accuracy {summary['accuracy'] * 100:.2f} %  "
        f"macro-F1 {summary['macro_f1'] * 100:.2f} %",
        "",
        f"{'class':<{width}}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>9}",
    ]
    for name in labels:
        pc = summary["per_class"][name]
        lines.append(
            f"{name:<{width}}{pc['precision']:>10.3f}{pc['recall']:>10.3f}{pc['f1']:>10.3f}{pc['support']:>9d}"
        )
    lines += ["", "confusion matrix (rows true, columns predicted):", " " * width + "".join(f"{n[:7]:>8}" for n in labels)]
    for name, row in zip(labels, summary["confusion_matrix"]):
        lines.append(f"{name:<{width}}" + "".join(f"{v:>8d}" for v in row))
    return "\n".join(lines)
