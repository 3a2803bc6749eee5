"""Linear SVM head on CNN features, and its exact fold into a final Dense layer.

The deployed graph computes ``scaler -> LinearSVC.decision_function`` as one
Dense layer: ``W = coef.T / std``, ``b = intercept - coef @ (mean / std)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np


@dataclass
class LinearSvmHead:
    """A fitted standardise-then-LinearSVC head and how it was chosen."""

    pipeline: Any  # sklearn Pipeline(StandardScaler, LinearSVC)
    C: float
    cv_accuracy: dict[str, float]

    def decision_function(self, features: np.ndarray) -> np.ndarray:
        return self.pipeline.decision_function(features)

    def predict(self, features: np.ndarray) -> np.ndarray:
        return self.pipeline.predict(features)

    def dense_weights(self) -> tuple[np.ndarray, np.ndarray]:
        """(kernel (d, k), bias (k,)) of the Dense layer equal to this head's decision function.

        Features the pipeline dropped as constant get all-zero kernel rows.
        """
        steps = self.pipeline.named_steps
        scaler = steps["scale"]
        svc = steps["svm"]
        coef = np.asarray(svc.coef_, np.float64)
        if coef.shape[0] == 1:  # binary LinearSVC keeps one row; expand to two scores
            coef = np.vstack([-coef, coef])
            intercept = np.array([-svc.intercept_[0], svc.intercept_[0]])
        else:
            intercept = np.asarray(svc.intercept_, np.float64)
        kept = (coef / scaler.scale_[None, :]).T
        bias = intercept - coef @ (scaler.mean_ / scaler.scale_)
        if "drop" in steps:
            keep = steps["drop"].get_support()
            kernel = np.zeros((keep.size, kept.shape[1]))
            kernel[keep] = kept
        else:
            kernel = kept
        return kernel.astype(np.float32), bias.astype(np.float32)


def _stratified_subsample(labels: np.ndarray, limit: int, seed: int) -> np.ndarray:
    """At most ``limit`` indices, every class keeping its share."""
    if len(labels) <= limit:
        return np.arange(len(labels))
    from sklearn.model_selection import train_test_split

    idx, _ = train_test_split(np.arange(len(labels)), train_size=limit, stratify=labels, random_state=seed)
    return np.sort(idx)


def fit_linear_svm(
    features: np.ndarray,
    labels: np.ndarray,
    Cs: Sequence[float] = (0.0003, 0.001, 0.003),
    cv: int = 3,
    seed: int = 0,
    cv_max_samples: int = 6000,
    min_feature_std: float = 1e-3,
) -> LinearSvmHead:
    """Fit StandardScaler + LinearSVC, choosing C by stratified CV on the training features only.

    The C search runs on a stratified subsample of at most ``cv_max_samples``
    faces, then the chosen C is refitted on all of them: on FER2013's 28,709
    faces a full 3-fold grid costs tens of CPU-minutes for the same choice.

    Features whose std is below ``min_feature_std`` (dead ReLU channels) are
    dropped first: standardising them would give them huge folded weights that
    set the INT8 kernel's scale and round every other weight of the class away.
    """
    from sklearn.feature_selection import VarianceThreshold
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    if not (features.std(axis=0) >= min_feature_std).any():
        raise ValueError(
            f"every CNN feature is constant (std < {min_feature_std:g}) on the training faces: the network has not "
            "learned anything an SVM could use; train longer or check the data"
        )
    # The dual solver is about twice as fast as the primal one on these dense features at small C.
    pipe = Pipeline([
        ("drop", VarianceThreshold(min_feature_std**2)),
        ("scale", StandardScaler()),
        ("svm", LinearSVC(C=1.0, dual=True, max_iter=5000, tol=1e-3, random_state=seed)),
    ])
    scores: dict[str, float] = {}
    best_c = float(Cs[0])
    if len(Cs) > 1:
        sub = _stratified_subsample(labels, cv_max_samples, seed)
        search = GridSearchCV(
            pipe,
            {"svm__C": list(Cs)},
            cv=StratifiedKFold(cv, shuffle=True, random_state=seed),
            scoring="accuracy",
            n_jobs=1,
            refit=False,
        )
        search.fit(features[sub], labels[sub])
        scores = {f"{c:g}": float(s) for c, s in zip(Cs, search.cv_results_["mean_test_score"])}
        best_c = float(search.best_params_["svm__C"])
    pipe.set_params(svm__C=best_c)
    pipe.fit(features, labels)
    return LinearSvmHead(pipe, best_c, scores)


def fold_svm(model, head: LinearSvmHead):
    """A new Keras model: the CNN up to its pooled features, then the SVM as a Dense layer."""
    import keras

    from .model import FEATURES_LAYER, SVM_LAYER

    kernel, bias = head.dense_weights()
    feats = model.get_layer(FEATURES_LAYER).output
    dense = keras.layers.Dense(kernel.shape[1], activation=None, name=SVM_LAYER)
    scores = dense(feats)
    dense.set_weights([kernel, bias])
    return keras.Model(model.input, scores, name=f"{model.name}_svm")
