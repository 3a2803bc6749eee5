"""Parity of an artifact with the Keras model it came from, measured through the runtime itself."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgefer.runtime.classifier import EmotionClassifier
from edgefer.runtime.metrics import classification_summary


@dataclass
class Parity:
    """Artifact vs Keras on one labelled set, and the gate it must pass.

    The gate: accuracy at most ``max_drop_points`` below Keras *and* the same top-1 class
    as Keras on at least ``min_agreement`` of the faces.
    """

    artifact: str
    samples: int
    keras_accuracy: float
    artifact_accuracy: float
    artifact_macro_f1: float
    agreement: float
    max_drop_points: float
    min_agreement: float = 0.0
    reference: str = "Keras"  # what the reference scores came from: the Keras model, or on a device the source ONNX
    # The reference's top-1 minus top-2 score, median over all faces and over the faces the artifact
    # disagrees on: disagreements far below the typical margin are near-ties that rounding tips over.
    margin_median: float | None = None
    disagreement_margin_median: float | None = None
    # Root-mean-square difference of the artifact's scores from the reference's, over all faces and
    # classes: how much quantisation moves the scores, which agreement alone shows only through ties.
    score_rms_error: float | None = None

    @property
    def drop_points(self) -> float:
        return (self.keras_accuracy - self.artifact_accuracy) * 100

    @property
    def failures(self) -> list[str]:
        """What failed and by how much (empty when the gate passes)."""
        out = []
        if self.drop_points > self.max_drop_points:
            out.append(f"accuracy drop {self.drop_points:.2f} points vs {self.reference} exceeds the allowed "
                       f"{self.max_drop_points:g} by {self.drop_points - self.max_drop_points:.2f} points")
        if self.agreement < self.min_agreement:
            out.append(f"agreement {self.agreement * 100:.2f} % is {(self.min_agreement - self.agreement) * 100:.2f} "
                       f"points below the required {self.min_agreement * 100:g} %")
        return out

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(drop_points=round(self.drop_points, 3), passed=self.passed, failures=self.failures)
        return d

    def describe(self) -> str:
        verdict = "ok" if self.passed else "FAILED: " + "; ".join(self.failures)
        ties = ""
        if self.disagreement_margin_median is not None and self.margin_median is not None:
            ties = (f" (where they differ, {self.reference}'s top-2 score margin has a median of "
                    f"{self.disagreement_margin_median:.3g}; over all faces {self.margin_median:.3g})")
        return (
            f"{Path(self.artifact).name}: accuracy {self.artifact_accuracy * 100:.2f} % vs {self.reference} "
            f"{self.keras_accuracy * 100:.2f} % ({-self.drop_points + 0.0:+.2f} points), top-1 agreement "
            f"{self.agreement * 100:.2f} % on {self.samples} faces{ties}: {verdict}"
        )


def top2_margins(scores: np.ndarray) -> np.ndarray:
    """Top-1 minus top-2 score per row of (N, classes) ``scores``."""
    top = np.sort(scores, axis=1)
    return top[:, -1] - top[:, -2]


def check_parity(
    artifact: Path, images: np.ndarray, labels: np.ndarray, ref_scores: np.ndarray, max_drop_points: float,
    label_names: list[str], min_agreement: float = 0.0, reference: str = "Keras",
) -> Parity:
    """Run ``artifact`` with the runtime backend on ``images`` and compare with the reference's (N, classes) scores."""
    clf = EmotionClassifier(artifact)
    try:
        scores = clf.predict_dataset(images)
    finally:
        clf.close()
    return parity_of_scores(artifact, scores, labels, ref_scores, max_drop_points, label_names, min_agreement,
                            reference)


def parity_of_scores(
    artifact: Path, scores: np.ndarray, labels: np.ndarray, ref_scores: np.ndarray, max_drop_points: float,
    label_names: list[str], min_agreement: float = 0.0, reference: str = "Keras",
) -> Parity:
    """:func:`check_parity` on scores the artifact already produced through the runtime."""
    pred = scores.argmax(1)
    ref_pred = ref_scores.argmax(1)
    margins = top2_margins(ref_scores)
    differ = pred != ref_pred
    summary = classification_summary(labels, pred, label_names)
    return Parity(
        str(artifact), int(len(labels)), float((ref_pred == labels).mean()), summary["accuracy"],
        summary["macro_f1"], float((~differ).mean()), max_drop_points, min_agreement, reference,
        margin_median=float(np.median(margins)) if len(margins) else None,
        disagreement_margin_median=float(np.median(margins[differ])) if differ.any() else None,
        score_rms_error=float(np.sqrt(np.mean(np.square(scores - ref_scores)))) if len(scores) else None,
    )
