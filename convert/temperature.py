"""Temperature scaling (Guo et al. 2017): one scalar that turns an artifact's raw scores into calibrated probabilities.

The runtime reports ``softmax(scores / T)``. ``T`` is fitted here by minimising the negative
log-likelihood of the validation labels under that softmax, on the scores the *artifact* produces
through the runtime backend (an INT8 model's dequantised outputs, an SVM head's margins), so the
temperature fits what the device sees. Dividing every score by one positive number never changes
the top-1 class: accuracy is untouched, only the confidence moves. Expected calibration error
(ECE, 15 equal-width confidence bins) is reported before and after. Needs numpy and one runtime
backend only (no TensorFlow).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from edgefer.runtime.manifest import Calibration, Manifest, ModelError
# The runtime's ECE: `edgefer eval` reports the same measure on the user's own faces.
from edgefer.runtime.metrics import expected_calibration_error
# The runtime's own softmax: the temperature is fitted under exactly the function that applies it.
from edgefer.runtime.probabilities import softmax

log = logging.getLogger(__name__)

def nll(scores: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    """Mean negative log-likelihood of ``labels`` under ``softmax(scores / temperature)``."""
    z = np.asarray(scores, np.float64) / float(temperature)
    z -= z.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(z).sum(axis=1))
    return float(np.mean(log_norm - z[np.arange(len(labels)), labels]))


def fit_temperature(scores: np.ndarray, labels: np.ndarray, low: float = 1e-3, high: float = 1e3,
                    tolerance: float = 1e-6) -> float:
    """The temperature minimising the validation NLL, by golden-section search over log T in [low, high].

    The NLL is convex in 1/T, so it has one minimum along log T and the search finds it.
    """
    scores, labels = np.asarray(scores, np.float64), np.asarray(labels, np.int64)
    if scores.ndim != 2 or len(scores) != len(labels) or len(scores) == 0:
        raise ValueError(f"need (N, classes) scores and N labels, got {scores.shape} and {labels.shape}")
    if labels.min() < 0 or labels.max() >= scores.shape[1]:
        raise ValueError(f"labels must lie in 0..{scores.shape[1] - 1}")
    if not np.isfinite(scores).all():
        raise ValueError("scores contain NaN or infinity; the artifact's output is broken")
    a, b = np.log(low), np.log(high)
    ratio = (np.sqrt(5.0) - 1) / 2
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc, fd = nll(scores, labels, np.exp(c)), nll(scores, labels, np.exp(d))
    while b - a > tolerance:
        if fc <= fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = nll(scores, labels, np.exp(c))
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = nll(scores, labels, np.exp(d))
    t = float(np.exp((a + b) / 2))
    if t <= low * 1.01 or t >= high / 1.01:
        log.warning("fitted temperature %.4g lies at the edge of the search range [%g, %g]", t, low, high)
    return t


def calibration_from_scores(scores: np.ndarray, labels: np.ndarray, fitted_on: str,
                            flip_scores: np.ndarray | None = None) -> Calibration:
    """Fit the temperature on (scores, labels) and record the ECE of plain softmax and of the scaled one.

    ``flip_scores``: the same faces' scores with test-time flip; the fitted temperature's ECE on them
    is recorded too (the temperature itself comes from the single-pass scores).
    """
    t = fit_temperature(scores, labels)
    before = expected_calibration_error(softmax(scores), labels)
    after = expected_calibration_error(softmax(scores, t), labels)
    after_flip = None if flip_scores is None else round(expected_calibration_error(softmax(flip_scores, t), labels), 6)
    return Calibration(temperature=round(t, 6), fitted_on=fitted_on, ece_before=round(before, 6),
                       ece_after=round(after, 6), ece_after_flip=after_flip)


def artifact_scores(artifact: str | Path, images: np.ndarray,
                    backend: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The artifact's raw scores on (N, H, W) uint8 faces through the runtime backend: without and with
    test-time flip (the runtime's default mode), from one pass over the faces and their mirror images.
    """
    from edgefer.runtime.classifier import EmotionClassifier

    clf = EmotionClassifier(artifact, backend)
    try:
        return clf.predict_dataset_both(images)
    finally:
        clf.close()


def calibrate_artifact(artifact: str | Path, images: np.ndarray, labels: np.ndarray, fitted_on: str,
                       backend: str | None = None, write: bool = True) -> Calibration:
    """Fit ``artifact``'s temperature on labelled validation faces and (with ``write``) store it in its manifest.

    ``labels`` index the artifact's own label order. Only the sidecar JSON changes; the model
    file and so its sha256 stay as they are.
    """
    manifest = Manifest.load(artifact)  # verifies the sha256 before anything is fitted to this file
    scores, flipped = artifact_scores(artifact, images, backend)
    calibration = calibration_from_scores(scores, labels, fitted_on, flipped)
    if write:
        manifest.calibration = calibration
        manifest.write(artifact)
    return calibration


def calibrate_on_folders(artifact: str | Path, data: str | Path, backend: str | None = None,
                         limit_per_class: int | None = None, write: bool = True) -> Calibration:
    """:func:`calibrate_artifact` on a class-folder validation set (``<data>/<class>/*``, or ``<data>/val/...``)."""
    from edgefer.runtime.datasets import load_dataset

    manifest = Manifest.load(artifact, verify=False)
    spec = manifest.input
    ds = load_dataset(data, "val", (spec.height, spec.width), limit_per_class)
    order = {name: i for i, name in enumerate(manifest.labels)}
    missing = sorted({ds.label_names[y] for y in np.unique(ds.labels)} - set(order))
    if missing:
        raise ModelError(f"model {artifact} has no class for {', '.join(missing)} found in {data}")
    labels = np.asarray([order[ds.label_names[y]] for y in ds.labels], np.int64)
    where = Path(data) / "val" if (Path(data) / "val").is_dir() else Path(data)
    return calibrate_artifact(artifact, ds.images, labels, f"{where} ({len(labels)} faces)", backend, write)


def describe(artifact: str | Path, calibration: Calibration) -> str:
    """One line for the console: the temperature and what it did to the ECE."""
    flip = ("" if calibration.ece_after_flip is None else
            f" ({calibration.ece_after_flip * 100:.2f} % with test-time flip)")
    return (f"{Path(artifact).name}: temperature {calibration.temperature:.4g} fitted on {calibration.fitted_on}; "
            f"ECE {calibration.ece_before * 100:.2f} % -> {calibration.ece_after * 100:.2f} %{flip}")
