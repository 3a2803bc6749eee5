"""Linear SVM head on CNN features, and its exact fold into a final Dense layer.

The deployed graph computes ``scaler -> LinearSVC.decision_function`` as one
Dense layer: ``W = coef.T / scale``, ``b = intercept - coef @ (mean / scale)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np


class FlooredStandardScaler:
    """Standardise each feature, but never divide by less than ``floor`` x the median feature std.

    A quarter of a CNN's pooled ReLU features barely vary on real faces (std below
    0.01 where the median is near 0.1). Plain standardisation blows them up by 10-100x,
    the SVM gives them ordinary weights, and the folded Dense weights become 10-100x the
    rest: they set the INT8 weight scale (rounding every other weight of the layer
    away) and make the decision hinge on tiny feature changes the int8 activations
    cannot represent. With the floor they keep their natural small influence; accuracy
    is unchanged (both measured on FER2013 PublicTest). scikit-learn compatible
    (``fit``/``transform``, ``mean_``/``scale_``) so it sits in the pipeline and pickles.
    """

    def __init__(self, floor: float = 0.3):
        self.floor = floor

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {"floor": self.floor}

    def set_params(self, **params: Any) -> "FlooredStandardScaler":
        for key, value in params.items():
            setattr(self, key, value)
        return self

    def fit(self, X: np.ndarray, y: Any = None) -> "FlooredStandardScaler":
        X = np.asarray(X, np.float64)
        std = X.std(axis=0)
        median = float(np.median(std[std > 0])) if (std > 0).any() else 1.0
        self.mean_ = X.mean(axis=0)
        self.scale_ = np.maximum(std, self.floor * median)
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        return (np.asarray(X, np.float64) - self.mean_) / self.scale_

    def fit_transform(self, X: np.ndarray, y: Any = None) -> np.ndarray:
        return self.fit(X, y).transform(X)


@dataclass
class LinearSvmHead:
    """A fitted standardise-then-LinearSVC head and how it was chosen."""

    pipeline: Any  # sklearn Pipeline(VarianceThreshold, FlooredStandardScaler, LinearSVC)
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
    scale_floor: float = 0.3,
    groups: np.ndarray | None = None,
) -> LinearSvmHead:
    """Fit a floored standardisation + LinearSVC, choosing C by stratified CV on the training features only.

    The C search runs on a stratified subsample of at most ``cv_max_samples``
    faces, then the chosen C is refitted on all of them: on FER2013's 28,709
    faces a full 3-fold grid costs tens of CPU-minutes for the same choice.

    Features whose std is below ``min_feature_std`` (dead ReLU channels) are
    dropped first, and no feature is scaled up by more than ``1 / (scale_floor x
    median std)`` (:class:`FlooredStandardScaler`), so no folded weight dwarfs the rest.
    With ``groups`` (subjects) the C search's folds keep each person on one side.
    """
    from sklearn.feature_selection import VarianceThreshold
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import Pipeline
    from sklearn.svm import LinearSVC

    from .kernels import inner_cv

    if not (features.std(axis=0) >= min_feature_std).any():
        raise ValueError(
            f"every CNN feature is constant (std < {min_feature_std:g}) on the training faces: the network has not "
            "learned anything an SVM could use; train longer or check the data"
        )
    # The primal solver: on 6,000 FER2013 faces it fit the VGG16's 4,047 live features in 90-160 s (11-20 Newton
    # steps, C 0.0003-0.003) where the dual one took 1,111 s at C 0.0003; on the MobileNet's 512 it takes 5 s
    # against the dual's 3 s (both timed beside a training run).
    pipe = Pipeline([
        ("drop", VarianceThreshold(min_feature_std**2)),
        ("scale", FlooredStandardScaler(scale_floor)),
        ("svm", LinearSVC(C=1.0, dual=False, max_iter=5000, tol=1e-3, random_state=seed)),
    ])
    scores: dict[str, float] = {}
    best_c = float(Cs[0])
    if len(Cs) > 1:
        sub = _stratified_subsample(labels, cv_max_samples, seed)
        search = GridSearchCV(
            pipe,
            {"svm__C": list(Cs)},
            cv=inner_cv(labels[sub], None if groups is None else groups[sub], cv, seed),
            scoring="accuracy",
            n_jobs=1,
            refit=False,
        )
        search.fit(features[sub], labels[sub], groups=None if groups is None else groups[sub])
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
