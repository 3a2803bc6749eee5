"""The per-run figures: training curves, per-face probability bars and Grad-CAM; no dataset face is drawn."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edgefer.runtime.datasets import FaceDataset
from edgefer.runtime.preprocess import InputSpec

if TYPE_CHECKING:
    from .config import TrainConfig

log = logging.getLogger(__name__)


def write_run_figures(out: Path, explain_model, spec: InputSpec, ds: FaceDataset, scores: np.ndarray,
                      labels: list[str], cfg: "TrainConfig", title: str, is_probability: bool,
                      explained_part: str | None = None) -> dict[str, str]:
    """Write ``curves.png``, ``probabilities.png`` and ``gradcam.png``; returns the files written, by kind.

    No dataset face is drawn in any of them (see :mod:`.public_faces`): the probability bars show
    the model's outputs only, Grad-CAM shows class-mean heat maps and public-domain faces.
    """
    from .figures import sample_faces, save_probability_bars, save_training_curves
    from .gradcam import GradCamUnavailable, class_mean_maps, gradcam, save_gradcam
    from .public_faces import public_domain_faces

    written: dict[str, str] = {}
    if save_training_curves(out / "history.csv", out / "curves.png", f"training curves: {title}"):
        written["training_curves"] = "curves.png"
    picks = sample_faces(ds.labels, 1, cfg.seed)[: cfg.report_faces]
    if len(picks) == 0:
        return written
    save_probability_bars(scores[picks], labels, ds.labels[picks], out / "probabilities.png",
                          f"per-face {'probabilities' if is_probability else 'SVM scores'}: {title}",
                          "probability" if is_probability else "SVM score")
    written["probability_bars"] = "probabilities.png"
    # Mean maps over up to GRADCAM_PER_CLASS faces of each class (the faces are model input, never drawn).
    explained = sample_faces(ds.labels, GRADCAM_PER_CLASS, cfg.seed)
    public = public_domain_faces()
    try:
        heat, predicted = gradcam(explain_model, ds.images[explained], spec)
        public_maps = (gradcam(explain_model, np.stack([_fit(f.image, spec) for f in public]), spec)
                       if public else (np.zeros((0,)), np.zeros((0,), np.int64)))
    except (GradCamUnavailable, ValueError, ImportError) as exc:
        # A figure must never cost a finished run its meta.json: say why and go on without it.
        log.warning("gradcam.png skipped: %s", exc)
        return written
    means, counts = class_mean_maps(heat, predicted, len(labels))
    caption = f"Grad-CAM ({explained_part}): {title}" if explained_part else f"Grad-CAM: {title}"
    save_gradcam(means, counts, labels, out / "gradcam.png", caption,
                 [(f, public_maps[0][i], int(public_maps[1][i])) for i, f in enumerate(public)])
    written["gradcam"] = "gradcam.png"
    return written


GRADCAM_PER_CLASS = 20


def _fit(face: np.ndarray, spec: InputSpec) -> np.ndarray:
    import cv2

    return cv2.resize(face, (spec.width, spec.height), interpolation=cv2.INTER_AREA)
