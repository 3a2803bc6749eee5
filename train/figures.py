"""Report figures beyond the confusion matrix: one-vs-rest ROC, training curves, per-face score bars."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def one_vs_rest_roc(y_true: np.ndarray, scores: np.ndarray, labels: Sequence[str]) -> dict[str, Any]:
    """Per-class ROC curve (false/true positive rates) and AUC, plus the macro-average AUC.

    ``scores`` may be probabilities or SVM decision values; only their order matters.
    Classes absent from ``y_true`` have no curve (AUC ``None``).
    """
    from sklearn.metrics import auc, roc_curve

    curves: dict[str, Any] = {}
    aucs = []
    for c, name in enumerate(labels):
        positive = np.asarray(y_true) == c
        if positive.all() or not positive.any():
            curves[name] = {"auc": None, "fpr": [], "tpr": []}
            continue
        fpr, tpr, _ = roc_curve(positive, scores[:, c])
        value = float(auc(fpr, tpr))
        aucs.append(value)
        curves[name] = {"auc": value, "fpr": np.round(fpr, 5).tolist(), "tpr": np.round(tpr, 5).tolist()}
    return {"macro_auc": float(np.mean(aucs)) if aucs else None, "classes": curves}


def save_roc(roc: dict[str, Any], png: Path, json_path: Path, title: str) -> None:
    """The ROC curves as a PNG and their points + AUCs as JSON."""
    json_path.write_text(json.dumps(roc) + "\n")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 5.5), dpi=110)
    for name, curve in roc["classes"].items():
        if curve["auc"] is not None:
            ax.plot(curve["fpr"], curve["tpr"], lw=1.4, label=f"{name} (AUC {curve['auc']:.3f})")
    ax.plot([0, 1], [0, 1], "k--", lw=0.8)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    macro = roc["macro_auc"]
    ax.set_title(f"{title}\none-vs-rest ROC, macro AUC {macro:.3f}" if macro is not None else title)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(png)
    plt.close(fig)


def save_training_curves(history_csv: Path, png: Path, title: str) -> bool:
    """Loss and accuracy per epoch (train and validation) from Keras' CSVLogger file; False if there is none."""
    if not history_csv.is_file():
        return False
    with history_csv.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        return False
    epochs = [int(r["epoch"]) + 1 for r in rows]
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), dpi=110)
    for ax, metric in zip(axes, ("loss", "accuracy")):
        for prefix, style in (("", "-"), ("val_", "--")):
            key = prefix + metric
            if key in rows[0]:
                ax.plot(epochs, [float(r[key]) for r in rows], style, label=key)
        ax.set_xlabel("epoch")
        ax.set_title(metric)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(png)
    plt.close(fig)
    return True


def save_probability_bars(probs: np.ndarray, labels: Sequence[str], true: np.ndarray, png: Path, title: str,
                          value_name: str = "probability") -> None:
    """A bar chart of per-class outputs for each sample face, captioned with its true class.

    The faces themselves are never drawn: dataset images may not be published (see
    :mod:`.public_faces`), so this takes the model's outputs only.
    """
    plt = _pyplot()
    n = len(probs)
    cols = min(n, 4)
    rows = -(-n // cols) if n else 1
    fig, axes = plt.subplots(rows, max(cols, 1), figsize=(2.6 * max(cols, 1), 2.1 * rows), dpi=100, squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_axis_off()
    for i, ax in enumerate(axes.flat[:n]):
        t = int(true[i])
        colours = ["tab:green" if c == t else "tab:blue" for c in range(len(labels))]
        ax.barh(range(len(labels)), probs[i], color=colours)
        ax.set_yticks(range(len(labels)), labels, fontsize=7)
        ax.invert_yaxis()
        ax.tick_params(axis="x", labelsize=7)
        ax.set_xlabel(value_name, fontsize=7)
        ax.set_title(f"true: {labels[t]} → {labels[int(np.argmax(probs[i]))]}", fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(png)
    plt.close(fig)


def sample_faces(labels: np.ndarray, per_class: int = 1, seed: int = 0) -> np.ndarray:
    """Indices of up to ``per_class`` random faces of each present class (the report samples)."""
    rng = np.random.default_rng(seed)
    picks = [rng.choice(np.flatnonzero(labels == c), min(per_class, int((labels == c).sum())), replace=False)
             for c in np.unique(labels)]
    return np.concatenate(picks) if picks else np.zeros(0, np.int64)
