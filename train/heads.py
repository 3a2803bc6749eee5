"""Post-hoc heads on extracted CNN features: linear SVM (exact fold) or RBF SVM (RFF fold)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .config import TrainConfig

log = logging.getLogger(__name__)

#: Every head ``--head`` accepts: in-network (softmax, svm-top) and fitted on features (linear-svm, rbf-svm).
HEADS = ("softmax", "linear-svm", "rbf-svm", "svm-top")


@dataclass
class FittedHead:
    """A scikit-learn head, its folded Keras model and what to record about it."""

    kind: str  # "linear" or "rbf"
    estimator: Any  # LinearSvmHead or RbfSvmHead
    folded: Any  # Keras model with the head as its last layer(s)
    info: dict[str, Any] = field(default_factory=dict)

    def decision_function(self, features: np.ndarray) -> np.ndarray:
        return self.estimator.decision_function(features)


def fit_feature_head(cfg: "TrainConfig", cnn, train_feats: np.ndarray, train_labels: np.ndarray,
                     groups: np.ndarray | None = None) -> FittedHead:
    """Fit the ``cfg.head`` SVM on training features (grid by CV on them only) and fold it into ``cnn``.

    ``groups`` (the subject of each training face) makes the grid's CV folds subject-disjoint.
    """
    outputs = int(cnn.output.shape[-1])
    missing = sorted(set(range(outputs)) - set(np.unique(train_labels).tolist()))
    if missing:
        # The SVM would have fewer score columns than the model has classes, and every later column would shift.
        raise ValueError(f"the training faces have no example of class index(es) {missing} of {outputs}; an SVM head "
                         "needs every class (with k-fold: fewer folds, or a class with faces of more people)")
    if cfg.head == "linear-svm":
        from .svm import fit_linear_svm, fold_svm

        log.info("fitting LinearSVC on %s features, C grid %s", train_feats.shape, cfg.svm_c)
        head = fit_linear_svm(train_feats, train_labels, cfg.svm_c, cfg.svm_cv, cfg.seed, groups=groups)
        return FittedHead("linear", head, fold_svm(cnn, head), {"kind": "linear", "C": head.C,
                                                                  "cv_accuracy": head.cv_accuracy})
    if cfg.head == "rbf-svm":
        from .rbf import fit_rbf_svm, fold_rbf_svm

        log.info("fitting RBF SVC on %s features, C grid %s, gamma grid %s", train_feats.shape, cfg.rbf_c,
                 cfg.rbf_gamma or "around 1/d")
        head = fit_rbf_svm(train_feats, train_labels, cfg.rbf_c, cfg.rbf_gamma, cfg.svm_cv, cfg.seed, groups)
        folded = fold_rbf_svm(cnn, head, cfg.rff_components, cfg.seed)
        return FittedHead("rbf", head, folded, {
            "kind": "rbf", "C": head.C, "gamma": head.gamma, "cv_accuracy": head.cv_accuracy,
            "approximation": f"random Fourier features, D={cfg.rff_components}",
        })
    raise ValueError(f"{cfg.head!r} is not a feature head; feature heads are linear-svm and rbf-svm")
