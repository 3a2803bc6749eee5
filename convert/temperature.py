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
from typing import Mapping

import numpy as np

from edgefer.runtime.classifier import DEFAULT_ZOOM, views_name
from edgefer.runtime.manifest import Calibration, Manifest, ModelError
# The runtime's ECE: `edgefer eval` reports the same measure on the user's own faces.
from edgefer.runtime.metrics import expected_calibration_error
# The runtime's own softmax: the temperature is fitted under exactly the function that applies it.
from edgefer.runtime.probabilities import softmax

log = logging.getLogger(__name__)

#: The runtime's default test-time views (flip and the tighter view): the manifest's headline temperature.
RUNTIME_VIEWS: tuple[bool, float | None] = (True, DEFAULT_ZOOM)

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


def calibration_from_scores(scores: np.ndarray | Mapping[str, np.ndarray], labels: np.ndarray,
                            fitted_on: str) -> Calibration:
    """Fit the temperature and record the ECE of plain softmax and of the scaled one.

    ``scores``: one view a face, or the scores of each view setting by name (``one``, ``flip``,
    ``zoom``, ``flip+zoom``; :func:`artifact_scores`), each getting its own temperature, the
    runtime's default (:data:`RUNTIME_VIEWS`) the headline one.
    """
    if not isinstance(scores, Mapping):
        t = fit_temperature(scores, labels)
        return Calibration(temperature=round(t, 6), fitted_on=fitted_on,
                           ece_before=round(expected_calibration_error(softmax(scores), labels), 6),
                           ece_after=round(expected_calibration_error(softmax(scores, t), labels), 6))
    default = views_name(*RUNTIME_VIEWS)
    if default not in scores:
        raise ValueError(f"the view settings {sorted(scores)} lack the runtime's default, {default!r}")
    fitted = {name: round(fit_temperature(s, labels), 6) for name, s in scores.items()}
    errors = {name: round(expected_calibration_error(softmax(s, fitted[name]), labels), 6)
              for name, s in scores.items()}
    return Calibration(temperature=fitted[default], fitted_on=fitted_on,
                       ece_before=round(expected_calibration_error(softmax(scores[default]), labels), 6),
                       ece_after=errors[default], views=RUNTIME_VIEWS, temperatures=fitted,
                       ece_after_by_views=errors)


def artifact_scores(artifact: str | Path, images: np.ndarray, backend: str | None = None) -> dict[str, np.ndarray]:
    """The artifact's raw scores on (N, H, W) uint8 faces through the runtime backend, for every view
    setting the runtime offers (one, flip, zoom, flip+zoom; the tighter view at :data:`DEFAULT_ZOOM`) by name:
    averaged views are softer than one view, so each setting gets its own temperature
    (docs/training.md, "Calibrated probabilities").
    """
    from edgefer.runtime.classifier import EmotionClassifier

    clf = EmotionClassifier(artifact, backend)
    try:
        return clf.predict_dataset_views(images, zoom=DEFAULT_ZOOM)
    finally:
        clf.close()


def calibrate_artifact(artifact: str | Path, images: np.ndarray, labels: np.ndarray, fitted_on: str,
                       backend: str | None = None, write: bool = True) -> Calibration:
    """Fit ``artifact``'s temperature on labelled validation faces and (with ``write``) store it in its manifest.

    ``labels`` index the artifact's own label order. Only the sidecar JSON changes; the model
    file and so its sha256 stay as they are.
    """
    manifest = Manifest.load(artifact)  # verifies the sha256 before anything is fitted to this file
    calibration = calibration_from_scores(artifact_scores(artifact, images, backend), labels, fitted_on)
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
    views = "" if calibration.views is None else f" for the runtime's views ({views_name(*calibration.views)})"
    others = "; ".join(f"{name} T {calibration.temperature_for(name):.4g}, ECE {ece * 100:.2f} %"
                       for name, ece in (calibration.ece_after_by_views or {}).items()
                       if calibration.views is None or name != views_name(*calibration.views))
    return (f"{Path(artifact).name}: temperature {calibration.temperature:.4g} fitted on {calibration.fitted_on}"
            f"{views}; ECE {calibration.ece_before * 100:.2f} % -> {calibration.ece_after * 100:.2f} %"
            + (f" ({others})" if others else ""))
