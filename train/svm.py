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
        """(kernel (d, k), bias (k,)) of the Dense layer equal to this head's decision function."""
        scaler = self.pipeline.named_steps["scale"]
        svc = self.pipeline.named_steps["svm"]
        coef = np.asarray(svc.coef_, np.float64)
        if coef.shape[0] == 1:  # binary LinearSVC keeps one row; expand to two scores
            coef = np.vstack([-coef, coef])
            intercept = np.array([-svc.intercept_[0], svc.intercept_[0]])
        else:
            intercept = np.asarray(svc.intercept_, np.float64)
        kernel = (coef / scaler.scale_[None, :]).T
        bias = intercept - coef @ (scaler.mean_ / scaler.scale_)
        return kernel.astype(np.float32), bias.astype(np.float32)


def fit_linear_svm(
    features: np.ndarray,
    labels: np.ndarray,
    Cs: Sequence[float] = (0.001, 0.01, 0.1),
    cv: int = 3,
    seed: int = 0,
) -> LinearSvmHead:
    """Fit StandardScaler + LinearSVC, choosing C by stratified CV on the training features only."""
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    pipe = Pipeline(
        [("scale", StandardScaler()), ("svm", LinearSVC(C=1.0, dual=False, max_iter=3000, tol=1e-3, random_state=seed))]
    )
    if len(Cs) == 1:
        pipe.set_params(svm__C=float(Cs[0]))
        pipe.fit(features, labels)
        return LinearSvmHead(pipe, float(Cs[0]), {})
    search = GridSearchCV(
        pipe,
        {"svm__C": list(Cs)},
        cv=StratifiedKFold(cv, shuffle=True, random_state=seed),
        scoring="accuracy",
        n_jobs=1,
        refit=True,
    )
    search.fit(features, labels)
    scores = {f"{c:g}": float(s) for c, s in zip(Cs, search.cv_results_["mean_test_score"])}
    return LinearSvmHead(search.best_estimator_, float(search.best_params_["svm__C"]), scores)


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
