"""Kernel SVM heads (linear, RBF, polynomial) on CNN features, each chosen by an inner grid search.

The thesis compares SVM heads of several kernels on one CNN's features. Each kernel
here is a standardise-then-``SVC`` pipeline whose hyper-parameters are chosen by a
cross-validated grid search on the training features only; where subjects are known
the inner folds are grouped by subject, so near-identical frames of one person (CK+
keeps three frames per sequence) never sit on both sides of an inner split and the
search does not reward memorising people. They are evaluated exactly and not folded
into the deployable model (only the linear head folds exactly; see ``svm.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

#: Kernels ``--svm-kernels`` accepts.
KERNELS = ("linear", "rbf", "poly")


def kernel_grid(kernel: str, dim: int) -> dict[str, list[Any]]:
    """The searched values of one kernel; gammas are multiples of 1/d (scikit-learn's ``scale`` on standardised data)."""
    gammas = [0.25 / dim, 1.0 / dim, 4.0 / dim]
    if kernel == "linear":
        return {"C": [0.001, 0.01, 0.1, 1.0]}
    if kernel == "rbf":
        return {"C": [1.0, 10.0, 100.0], "gamma": gammas}
    if kernel == "poly":
        return {"C": [0.1, 1.0, 10.0], "degree": [2, 3], "gamma": [1.0 / dim], "coef0": [1.0]}
    raise ValueError(f"unknown SVM kernel {kernel!r}; choose from {', '.join(KERNELS)}")


@dataclass
class KernelSvm:
    """One fitted kernel SVM and the grid search that chose it."""

    kernel: str
    pipeline: Any  # sklearn Pipeline(StandardScaler, SVC)
    params: dict[str, float]
    cv_accuracy: float
    grid: dict[str, float] = field(default_factory=dict)  # every searched setting -> mean inner-CV accuracy

    def decision_function(self, features: np.ndarray) -> np.ndarray:
        return np.asarray(self.pipeline.decision_function(features))

    def info(self) -> dict[str, Any]:
        return {"params": self.params, "cv_accuracy": self.cv_accuracy, "grid": self.grid}


def inner_cv(labels: np.ndarray, groups: np.ndarray | None, folds: int, seed: int):
    """The inner splitter: stratified and grouped by subject where ``groups`` is given."""
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    if groups is not None and len(np.unique(groups)) >= folds:
        return StratifiedGroupKFold(folds, shuffle=True, random_state=seed)
    return StratifiedKFold(folds, shuffle=True, random_state=seed)


def fit_kernel_svm(features: np.ndarray, labels: np.ndarray, kernel: str, groups: np.ndarray | None = None,
                   folds: int = 5, seed: int = 0) -> KernelSvm:
    """Grid-search one kernel's SVC by inner CV on these (training) features, then refit on all of them."""
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    grid = {f"svm__{k}": v for k, v in kernel_grid(kernel, features.shape[1]).items()}
    pipe = Pipeline([("scale", StandardScaler()),
                     ("svm", SVC(kernel=kernel, decision_function_shape="ovr", cache_size=500))])
    search = GridSearchCV(pipe, grid, cv=inner_cv(labels, groups, folds, seed), scoring="accuracy", n_jobs=1,
                          refit=True)
    search.fit(features, labels, groups=groups)
    tried = {
        ",".join(f"{k.removeprefix('svm__')}={v:g}" for k, v in p.items()): round(float(s), 4)
        for p, s in zip(search.cv_results_["params"], search.cv_results_["mean_test_score"])
    }
    params = {k.removeprefix("svm__"): float(v) for k, v in search.best_params_.items()}
    return KernelSvm(kernel, search.best_estimator_, params, float(search.best_score_), tried)


def expand_scores(scores: np.ndarray, classes: np.ndarray, num_classes: int) -> np.ndarray:
    """Scores of the classes an SVM saw, placed in a ``num_classes``-wide array.

    A class missing from the training features gets a score below every other one,
    so it is never predicted (finite, so ROC curves still compute).
    """
    if scores.ndim == 1:  # binary: one margin for classes[1]
        scores = np.stack([-scores, scores], axis=1)
    floor = float(scores.min()) - 1.0 if scores.size else -1.0
    full = np.full((scores.shape[0], num_classes), floor, np.float64)
    full[:, np.asarray(classes, np.int64)] = scores
    return full


def fit_kernel_svms(features: np.ndarray, labels: np.ndarray, kernels: Sequence[str],
                    groups: np.ndarray | None = None, folds: int = 5, seed: int = 0) -> dict[str, KernelSvm]:
    """:func:`fit_kernel_svm` for each of ``kernels``."""
    return {k: fit_kernel_svm(features, labels, k, groups, folds, seed) for k in kernels}
