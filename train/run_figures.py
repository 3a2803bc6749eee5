"""The per-run figures: training curves, per-face probability bars and Grad-CAM for sample faces."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edgefer.runtime.datasets import FaceDataset
from edgefer.runtime.preprocess import InputSpec

if TYPE_CHECKING:
    from .trainer import TrainConfig

log = logging.getLogger(__name__)


def write_run_figures(out: Path, explain_model, spec: InputSpec, ds: FaceDataset, scores: np.ndarray,
                      labels: list[str], cfg: "TrainConfig", title: str, is_probability: bool,
                      explained_part: str | None = None) -> dict[str, str]:
    """Write ``curves.png``, ``faces.png`` and ``gradcam.png``; returns the files written, by kind."""
    from .figures import sample_faces, save_probability_bars, save_training_curves
    from .gradcam import GradCamUnavailable, gradcam, save_gradcam

    written: dict[str, str] = {}
    if save_training_curves(out / "history.csv", out / "curves.png", f"training curves: {title}"):
        written["training_curves"] = "curves.png"
    picks = sample_faces(ds.labels, 1, cfg.seed)[: cfg.report_faces]
    if len(picks) == 0:
        return written
    save_probability_bars(ds.images[picks], scores[picks], labels, ds.labels[picks], out / "faces.png",
                          f"per-face {'probabilities' if is_probability else 'SVM scores'}: {title}",
                          "probability" if is_probability else "SVM score")
    written["probability_bars"] = "faces.png"
    try:
        heat, predicted = gradcam(explain_model, ds.images[picks], spec)
    except (GradCamUnavailable, ValueError, ImportError) as exc:
        # A figure must never cost a finished run its meta.json: say why and go on without it.
        log.warning("gradcam.png skipped: %s", exc)
        return written
    caption = f"Grad-CAM ({explained_part}): {title}" if explained_part else f"Grad-CAM: {title}"
    save_gradcam(ds.images[picks], heat, predicted, ds.labels[picks], labels, out / "gradcam.png", caption)
    written["gradcam"] = "gradcam.png"
    return written
