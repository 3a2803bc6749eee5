"""Parity of an artifact with the Keras model it came from, measured through the runtime itself."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from edgefer.runtime.classifier import EmotionClassifier
from edgefer.runtime.metrics import classification_summary


@dataclass
class Parity:
    """Artifact vs Keras on one labelled set."""

    artifact: str
    samples: int
    keras_accuracy: float
    artifact_accuracy: float
    artifact_macro_f1: float
    agreement: float
    max_drop_points: float

    @property
    def drop_points(self) -> float:
        return (self.keras_accuracy - self.artifact_accuracy) * 100

    @property
    def passed(self) -> bool:
        return self.drop_points <= self.max_drop_points

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(drop_points=round(self.drop_points, 3), passed=self.passed)
        return d

    def describe(self) -> str:
        verdict = "ok" if self.passed else f"FAILED (more than {self.max_drop_points:g} point(s) below Keras)"
        return (
            f"{Path(self.artifact).name}: accuracy {self.artifact_accuracy * 100:.2f} % vs Keras "
            f"{self.keras_accuracy * 100:.2f} % ({-self.drop_points:+.2f} points), top-1 agreement "
            f"{self.agreement * 100:.2f} % on {self.samples} faces: {verdict}"
        )


def check_parity(
    artifact: Path, images: np.ndarray, labels: np.ndarray, keras_pred: np.ndarray, max_drop_points: float,
    label_names: list[str],
) -> Parity:
    """Run ``artifact`` with the runtime backend on ``images`` and compare with Keras' predictions."""
    clf = EmotionClassifier(artifact)
    try:
        pred = clf.predict_dataset(images).argmax(1)
    finally:
        clf.close()
    keras_acc = float((keras_pred == labels).mean())
    summary = classification_summary(labels, pred, label_names)
    return Parity(
        str(artifact), int(len(labels)), keras_acc, summary["accuracy"], summary["macro_f1"],
        float((pred == keras_pred).mean()), max_drop_points,
    )
