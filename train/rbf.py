"""RBF-kernel SVM head and its foldable random-Fourier-feature approximation.

An RBF SVM's decision function ``sum_s a_s exp(-gamma |x - s|^2) + b`` needs the
support vectors at run time, so it cannot be folded into a Dense layer exactly.
Random Fourier features (Rahimi & Recht 2007) give ``k(x, s) ~ z(x) . z(s)`` with
``z(x) = sqrt(2/D) cos(W x + phi)``, ``W ~ N(0, 2 gamma I)``, so each one-vs-rest
decision function becomes linear in ``z(x)``:

    Dense(D) [scaler and W folded in] -> cos -> Dense(k) [sum_s a_s z(s) per class]

which every INT8/ONNX converter handles. :func:`rff_agreement` measures how
often the approximation picks the same class as the exact SVM.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

RFF_LAYER = "rff_projection"


@dataclass
class RbfSvmHead:
    """Standardise -> one-vs-rest RBF SVC, with the grid that chose C and gamma."""

    pipeline: Any  # sklearn Pipeline(StandardScaler, OneVsRestClassifier(SVC(kernel="rbf")))
    C: float
    gamma: float
    cv_accuracy: dict[str, float] = field(default_factory=dict)

    def decision_function(self, features: np.ndarray) -> np.ndarray:
        return self.pipeline.decision_function(features)

    def predict(self, features: np.ndarray) -> np.ndarray:
        return self.pipeline.predict(features)


def default_gammas(dim: int) -> list[float]:
    """Gammas around scikit-learn's ``"scale"`` (1/d on standardised features)."""
    return [0.25 / dim, 1.0 / dim, 4.0 / dim]


def fit_rbf_svm(
    features: np.ndarray,
    labels: np.ndarray,
    Cs: Sequence[float] = (1.0, 10.0),
    gammas: Sequence[float] | None = None,
    cv: int = 3,
    seed: int = 0,
    groups: np.ndarray | None = None,
) -> RbfSvmHead:
    """Fit StandardScaler + one-vs-rest RBF SVC; C and gamma by stratified CV on the training features only.

    With ``groups`` (subjects) the CV folds keep each person on one side.
    """
    from sklearn.model_selection import GridSearchCV

    from .kernels import inner_cv
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    missing = sorted(set(range(int(labels.max()) + 1)) - set(np.unique(labels).tolist()))
    if missing:
        raise ValueError(f"RBF SVM training features lack class(es) {missing}; every class needs examples")
    gammas = list(gammas) if gammas else default_gammas(features.shape[1])
    pipe = Pipeline([("scale", StandardScaler()),
                     ("svm", OneVsRestClassifier(SVC(kernel="rbf", C=1.0, gamma=1.0, cache_size=500)))])
    grid = {"svm__estimator__C": [float(c) for c in Cs], "svm__estimator__gamma": [float(g) for g in gammas]}
    if len(Cs) == 1 and len(gammas) == 1:
        pipe.set_params(svm__estimator__C=float(Cs[0]), svm__estimator__gamma=float(gammas[0]))
        pipe.fit(features, labels)
        return RbfSvmHead(pipe, float(Cs[0]), float(gammas[0]))
    search = GridSearchCV(pipe, grid, cv=inner_cv(labels, groups, cv, seed), scoring="accuracy",
                          n_jobs=1, refit=True)
    search.fit(features, labels, groups=groups)
    scores = {
        f"C={p['svm__estimator__C']:g},gamma={p['svm__estimator__gamma']:.4g}": float(s)
        for p, s in zip(search.cv_results_["params"], search.cv_results_["mean_test_score"])
    }
    best = search.best_params_
    return RbfSvmHead(search.best_estimator_, float(best["svm__estimator__C"]),
                      float(best["svm__estimator__gamma"]), scores)


def rff_weights(head: RbfSvmHead, n_components: int = 4096, seed: int = 0
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(W1 (d, D), b1 (D,), W2 (D, k), b2 (k,))`` of Dense -> cos -> Dense approximating the SVM."""
    scaler = head.pipeline.named_steps["scale"]
    estimators = head.pipeline.named_steps["svm"].estimators_
    dim = scaler.mean_.shape[0]
    rng = np.random.default_rng(seed)
    omega = rng.normal(0.0, np.sqrt(2.0 * head.gamma), (dim, n_components))
    phase = rng.uniform(0.0, 2.0 * np.pi, n_components)
    # The scaler is folded into the first Dense: omega . (x - mean) / std = (omega / std) . x - omega . mean / std.
    w1 = omega / scaler.scale_[:, None]
    b1 = phase - (scaler.mean_ / scaler.scale_) @ omega
    w2 = np.zeros((n_components, len(estimators)))
    b2 = np.zeros(len(estimators))
    for c, svc in enumerate(estimators):
        if not hasattr(svc, "support_vectors_"):
            raise ValueError(f"class {c} has a constant one-vs-rest model; the RBF head needs every class in training")
        z_sv = np.cos(svc.support_vectors_ @ omega + phase)  # support vectors are already standardised
        w2[:, c] = (2.0 / n_components) * (svc.dual_coef_[0] @ z_sv)
        b2[c] = svc.intercept_[0]
    return w1.astype(np.float32), b1.astype(np.float32), w2.astype(np.float32), b2.astype(np.float32)


def rff_decision_function(weights: tuple[np.ndarray, ...], features: np.ndarray) -> np.ndarray:
    """The approximation's scores in numpy (what the folded graph computes)."""
    w1, b1, w2, b2 = (np.asarray(w, np.float64) for w in weights)
    return np.cos(features @ w1 + b1) @ w2 + b2


def rff_agreement(head: RbfSvmHead, features: np.ndarray, n_components: int = 4096, seed: int = 0
                  ) -> dict[str, float]:
    """Top-1 agreement and score error of the approximation against the exact RBF SVM on ``features``."""
    exact = head.decision_function(features)
    approx = rff_decision_function(rff_weights(head, n_components, seed), features)
    return {
        "n_components": int(n_components),
        "top1_agreement": float((exact.argmax(1) == approx.argmax(1)).mean()),
        "mean_abs_score_error": float(np.abs(exact - approx).mean()),
        "samples": int(len(features)),
    }


def fold_rbf_svm(model, head: RbfSvmHead, n_components: int = 4096, seed: int = 0):
    """A new Keras model: the CNN up to its features, then Dense -> cos -> Dense approximating the RBF SVM."""
    import keras

    from .model import FEATURES_LAYER, SVM_LAYER

    w1, b1, w2, b2 = rff_weights(head, n_components, seed)
    feats = model.get_layer(FEATURES_LAYER).output
    project = keras.layers.Dense(n_components, name=RFF_LAYER)
    # keras.ops.cos in a functional graph serialises without custom objects and converts to TFLite/ONNX Cos.
    z = keras.ops.cos(project(feats))
    dense = keras.layers.Dense(w2.shape[1], name=SVM_LAYER)
    scores = dense(z)
    project.set_weights([w1, b1])
    dense.set_weights([w2, b2])
    return keras.Model(model.input, scores, name=f"{model.name}_rbf_svm")
