"""Training reports: classification report text and confusion-matrix PNG."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def save_confusion_png(summary: dict[str, Any], path: Path, title: str) -> None:
    """Row-normalised confusion matrix with counts, written as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = np.asarray(summary["confusion_matrix"], np.float64)
    labels = summary["labels"]
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(6.4, 5.6), dpi=110)
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{title}\naccuracy {summary['accuracy'] * 100:.2f} %, macro-F1 {summary['macro_f1'] * 100:.2f} %")
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(j, i, f"{int(cm[i, j])}", ha="center", va="center", fontsize=7,
                    color="white" if norm[i, j] > 0.5 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def classification_report_text(y_true: np.ndarray, y_pred: np.ndarray, labels: list[str]) -> str:
    """scikit-learn's classification report with the class names."""
    from sklearn.metrics import classification_report

    return classification_report(
        y_true, y_pred, labels=list(range(len(labels))), target_names=labels, digits=4, zero_division=0
    )


def evaluate_head(out: Path, tag: str, title: str, y_true: np.ndarray, scores: np.ndarray,
                  labels: list[str]) -> dict[str, Any]:
    """Summary of one head on one split, and its files: ``confusion_<tag>.{png,json}``, ``roc_<tag>.{png,json}``.

    Returns :func:`classification_summary`'s dict with ``macro_auc`` added.
    """
    import json

    from edgefer.runtime.metrics import classification_summary

    from .figures import one_vs_rest_roc, save_roc

    summary = classification_summary(y_true, scores.argmax(1), labels)
    save_confusion_png(summary, out / f"confusion_{tag}.png", title)
    (out / f"confusion_{tag}.json").write_text(json.dumps(summary, indent=2) + "\n")
    roc = one_vs_rest_roc(y_true, scores, labels)
    save_roc(roc, out / f"roc_{tag}.png", out / f"roc_{tag}.json", title)
    summary["macro_auc"] = roc["macro_auc"]
    return summary


def headline(summary: dict[str, Any]) -> dict[str, Any]:
    """The figures ``meta.json`` keeps for one head on one split."""
    return {k: summary[k] for k in ("accuracy", "macro_f1", "samples", "macro_auc") if k in summary}
