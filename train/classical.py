"""Classical baselines: an SVM on HOG descriptors or on PCA of the pixels, same data protocols as the CNNs.

``edgefer baseline --dataset kdef --data ../shared/datasets/kdef/KDEF --features hog`` writes a
``meta.json`` in the schema of ``edgefer train`` (so the results table reads both), confusion
matrices, ROC curves and a report.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edgefer import __version__
from edgefer.runtime.metrics import format_summary
from edgefer.runtime.preprocess import InputSpec

from .config import DEFAULT_INPUT_SIZE

log = logging.getLogger(__name__)


@dataclass
class BaselineConfig:
    """What ``edgefer baseline`` can be told; stored in ``meta.json``."""

    data: str
    out: str
    dataset: str = "folders"
    protocol: str = "auto"
    features: str = "hog"  # "hog" or "pca"
    head: str = "linear-svm"  # or "rbf-svm"
    input_size: int = DEFAULT_INPUT_SIZE
    seed: int = 0
    svm_c: list[float] | None = None
    svm_cv: int = 3
    pca_components: int = 100
    folds: int = 10
    fold: int | None = None
    limit_per_class: int | None = None
    kdef_no_face: str = "borrow"
    contempt: str = "drop"  # CK+ 48x48: "drop" (7-class protocol) or "keep" (8-class protocol)


def hog_features(images: np.ndarray, cell: int = 8) -> np.ndarray:
    """OpenCV HOG (16x16 blocks of 2x2 ``cell``-pixel cells, 9 orientation bins) of (N, H, W) uint8 faces."""
    n, h, w = images.shape
    win = (w // cell * cell, h // cell * cell)
    hog = cv2.HOGDescriptor(win, (2 * cell, 2 * cell), (cell, cell), (cell, cell), 9)
    return np.stack([hog.compute(np.ascontiguousarray(img[: win[1], : win[0]])).ravel() for img in images])


class PcaFeatures:
    """Whitened PCA of the pixels, fitted on training faces only."""

    def __init__(self, components: int, seed: int = 0):
        self.components, self.seed, self.pca = components, seed, None

    def fit(self, images: np.ndarray) -> "PcaFeatures":
        from sklearn.decomposition import PCA

        x = images.reshape(len(images), -1).astype(np.float32) / 255.0
        self.pca = PCA(min(self.components, *x.shape), whiten=True, random_state=self.seed).fit(x)
        return self

    def __call__(self, images: np.ndarray) -> np.ndarray:
        return self.pca.transform(images.reshape(len(images), -1).astype(np.float32) / 255.0)


def _data_config(cfg: BaselineConfig):
    from .config import TrainConfig

    return TrainConfig(data=cfg.data, out=cfg.out, dataset=cfg.dataset, protocol=cfg.protocol, seed=cfg.seed,
                       folds=cfg.folds, fold=cfg.fold, input_size=cfg.input_size,
                       limit_per_class=cfg.limit_per_class, kdef_no_face=cfg.kdef_no_face, contempt=cfg.contempt)


def _parameter_count(extract, head) -> int:
    svm = head.pipeline.named_steps["svm"]
    count = int(head.pipeline.named_steps["scale"].mean_.size * 2)
    if hasattr(svm, "coef_"):
        count += int(svm.coef_.size + svm.intercept_.size)
    else:
        count += int(sum(e.support_vectors_.size + e.dual_coef_.size + 1 for e in svm.estimators_))
    if isinstance(extract, PcaFeatures):
        count += int(extract.pca.components_.size + extract.pca.mean_.size)
    return count


def run_baseline(cfg: BaselineConfig) -> dict[str, Any]:
    """Extract features, fit the SVM (grid by CV on training features), evaluate on validation and test."""
    from .protocols import prepare_data, resolve_protocol
    from .reports import classification_report_text, evaluate_head, headline

    if cfg.features not in ("hog", "pca"):
        raise ValueError(f"--features {cfg.features!r} is not one of hog, pca")
    if cfg.head not in ("linear-svm", "rbf-svm"):
        raise ValueError(f"--head {cfg.head!r} is not one of linear-svm, rbf-svm")
    if cfg.contempt == "keep" and cfg.dataset != "ckplus48":
        raise ValueError("--contempt keep is for --dataset ckplus48 (the class-folder CK+ with a contempt/ folder)")
    protocol = resolve_protocol(cfg.dataset, cfg.protocol)
    if protocol == "kfold" and cfg.fold is None:
        from .kfold import run_folds

        return run_folds(lambda i, folder: run_baseline(dataclasses.replace(cfg, fold=i, out=str(folder))),
                         cfg.folds, Path(cfg.out), asdict(cfg), f"{cfg.dataset} subject-wise {cfg.folds}-fold")
    t0 = time.time()
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    spec = InputSpec(height=cfg.input_size, width=cfg.input_size, channels=1)
    data = prepare_data(_data_config(cfg), spec, out)
    extract = PcaFeatures(cfg.pca_components, cfg.seed).fit(data.train.images) if cfg.features == "pca" \
        else hog_features
    train_x = extract(data.train.images)
    if cfg.head == "linear-svm":
        from .svm import fit_linear_svm

        grid = cfg.svm_c or (0.0001, 0.001, 0.01, 0.1)
        head = fit_linear_svm(train_x, data.train.labels, grid, cfg.svm_cv, cfg.seed, groups=data.train_subjects)
        info: dict[str, Any] = {"kind": "linear", "C": head.C, "cv_accuracy": head.cv_accuracy}
    else:
        from .rbf import fit_rbf_svm

        head = fit_rbf_svm(train_x, data.train.labels, cfg.svm_c or (1.0, 10.0), None, cfg.svm_cv, cfg.seed,
                           data.train_subjects)
        info = {"kind": "rbf", "C": head.C, "gamma": head.gamma, "cv_accuracy": head.cv_accuracy}
    labels = list(data.train.label_names)  # the dataset's classes (CK+ 48x48: no neutral)
    splits = {"val": data.val} if data.test is None else {"val": data.val, "test": data.test}
    name = f"{cfg.features} + {info['kind']} SVM"
    metrics: dict[str, Any] = {}
    report = [f"validation: {data.val_name}", f"test: {data.test_name}", f"features: {train_x.shape[1]}"]
    for split, ds in splits.items():
        scores = head.decision_function(extract(ds.images))
        tag = "svm" if split == "val" else f"{split}_svm"
        summary = evaluate_head(out, tag, f"{name} ({split})", ds.labels, scores, labels)
        metrics[f"{split}_svm"] = headline(summary)
        report += [f"== {split} ==", classification_report_text(ds.labels, scores.argmax(1), labels),
                   format_summary(summary)]
    (out / "report.txt").write_text("\n".join(report) + "\n")
    meta = {
        "edgefer_version": __version__,
        "labels": labels,
        "input": spec.to_dict(),
        "architecture": {"name": cfg.features, "feature_dim": int(train_x.shape[1]),
                         "params": _parameter_count(extract, head)},
        "head": "svm",
        "head_kind": cfg.head,
        "svm": info,
        "dataset": {"layout": cfg.dataset, "protocol": data.protocol, "fold": cfg.fold, "test": data.test_name,
                    "test_faces": None if data.test is None else len(data.test)},
        "training": {"dataset": str(cfg.data), "train_faces": len(data.train),
                     "class_counts": data.train.class_counts(), "validation": data.val_name,
                     "val_faces": len(data.val), "config": asdict(cfg), "seconds": round(time.time() - t0, 1)},
        "metrics": metrics,
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta
