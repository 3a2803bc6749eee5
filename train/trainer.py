"""``edgefer train``: CNN with softmax head -> linear SVM on its features -> folded model.

Writes into the output folder:

- ``cnn.keras``: the softmax model (best epoch on validation accuracy)
- ``model.keras``: the deployable model, the SVM folded in as the final Dense layer
- ``svm.joblib``: the scikit-learn scaler + LinearSVC
- ``meta.json``: input spec, labels, architecture, data, metrics (softmax vs SVM)
- ``report.txt``, ``confusion_softmax.png``, ``confusion_svm.png``, ``history.csv``
- ``checkpoint/last.keras`` + ``checkpoint/state.json`` so ``--resume`` continues a stopped run
"""

from __future__ import annotations

import json
import logging
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgefer import __version__
from edgefer.runtime.datasets import FaceDataset, load_dataset
from edgefer.runtime.labels import EMOTIONS
from edgefer.runtime.metrics import classification_summary, format_summary
from edgefer.runtime.preprocess import InputSpec

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    """Everything ``edgefer train`` can be told; stored in ``meta.json``."""

    data: str
    out: str
    val: str | None = None
    input_size: int = 48
    alpha: float = 1.0
    weights: str | None = None
    epochs: int = 40
    batch_size: int = 64
    lr: float = 2e-3
    label_smoothing: float = 0.1
    dropout: float = 0.25
    bn_momentum: float | None = None  # None keeps Keras' 0.99; small sets need faster-moving statistics
    svm_c: list[float] = field(default_factory=lambda: [0.001, 0.01, 0.1])
    svm_cv: int = 3
    augment: bool = True
    limit_per_class: int | None = None
    seed: int = 0
    resume: bool = False


def _split_off_val(ds: FaceDataset, fraction: float, seed: int) -> tuple[FaceDataset, FaceDataset]:
    rng = np.random.default_rng(seed)
    val_idx = []
    for c in np.unique(ds.labels):
        idx = np.flatnonzero(ds.labels == c)
        rng.shuffle(idx)
        val_idx.extend(idx[: max(1, int(len(idx) * fraction))])
    mask = np.zeros(len(ds), bool)
    mask[val_idx] = True
    return ds.subset(np.flatnonzero(~mask)), ds.subset(np.flatnonzero(mask))


def load_splits(cfg: TrainConfig, spec: InputSpec) -> tuple[FaceDataset, FaceDataset, str]:
    """Training and validation faces; validation is ``--val``, ``<data>/val`` or a 10 % split."""
    size = (spec.height, spec.width)
    train = load_dataset(cfg.data, "train", size, cfg.limit_per_class)
    if cfg.val:
        return train, load_dataset(cfg.val, "val", size, cfg.limit_per_class), str(cfg.val)
    if Path(cfg.data).suffix.lower() == ".csv" or (Path(cfg.data) / "val").is_dir():
        return train, load_dataset(cfg.data, "val", size, cfg.limit_per_class), f"{cfg.data} (val)"
    log.warning("no validation set given; holding out 10 %% of %s", cfg.data)
    train, val = _split_off_val(train, 0.1, cfg.seed)
    return train, val, f"10 % of {cfg.data}"


def _fit_cnn(cfg: TrainConfig, spec: InputSpec, train: FaceDataset, val: FaceDataset, out: Path):
    import keras

    from .augment import AugmentConfig
    from .data import make_sequence
    from .model import build_mobilenet

    ckpt_dir = out / "checkpoint"
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    state_path = ckpt_dir / "state.json"
    last_path = ckpt_dir / "last.keras"
    best_path = out / "cnn.keras"
    k = len(EMOTIONS)
    steps = int(np.ceil(len(train) / cfg.batch_size))

    start_epoch, best_acc = 0, -1.0
    if cfg.resume and last_path.exists() and state_path.exists():
        state = json.loads(state_path.read_text())
        start_epoch, best_acc = int(state["epoch"]), float(state["best_val_accuracy"])
        model = keras.models.load_model(last_path)
        log.info("resuming from %s at epoch %d (best val accuracy %.4f)", last_path, start_epoch, best_acc)
    else:
        keras.utils.set_random_seed(cfg.seed)
        model = build_mobilenet(spec, k, cfg.alpha, cfg.weights, cfg.dropout, cfg.bn_momentum)
        warmup = min(steps * 2, steps * cfg.epochs // 10)
        schedule = keras.optimizers.schedules.CosineDecay(
            cfg.lr * 0.1, max(1, steps * cfg.epochs - warmup), alpha=0.01,
            warmup_target=cfg.lr, warmup_steps=max(1, warmup),
        )
        model.compile(
            optimizer=keras.optimizers.AdamW(schedule, weight_decay=1e-4),
            loss=keras.losses.CategoricalCrossentropy(label_smoothing=cfg.label_smoothing),
            metrics=["accuracy"],
        )
    if start_epoch >= cfg.epochs:
        return keras.models.load_model(best_path)

    class Checkpoint(keras.callbacks.Callback):
        """Keep the best epoch (validation accuracy) and a resumable last state."""

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            nonlocal best_acc
            acc = float((logs or {}).get("val_accuracy", 0.0))
            if acc > best_acc:
                best_acc = acc
                self.model.save(best_path)
            self.model.save(last_path)
            state_path.write_text(json.dumps({"epoch": epoch + 1, "best_val_accuracy": best_acc}))

    augment = AugmentConfig() if cfg.augment else None
    train_seq = make_sequence(train.images, train.labels, spec, k, cfg.batch_size, augment, cfg.seed + start_epoch)
    val_seq = make_sequence(val.images, val.labels, spec, k, 256, None)
    model.fit(
        train_seq,
        validation_data=val_seq,
        epochs=cfg.epochs,
        initial_epoch=start_epoch,
        callbacks=[Checkpoint(), keras.callbacks.CSVLogger(str(out / "history.csv"), append=start_epoch > 0)],
        verbose=1 if sys.stdout.isatty() else 2,
    )
    return keras.models.load_model(best_path)


def run_training(cfg: TrainConfig) -> dict[str, Any]:
    """Train, fit and fold the SVM, evaluate both heads on validation, write the output folder."""
    import joblib

    from .data import predict_batches
    from .model import feature_model
    from .reports import classification_report_text, save_confusion_png
    from .svm import fit_linear_svm, fold_svm

    t0 = time.time()
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    spec = InputSpec(height=cfg.input_size, width=cfg.input_size, channels=3)
    train, val, val_name = load_splits(cfg, spec)
    log.info("train %d faces %s; val %d faces", len(train), train.class_counts(), len(val))

    cnn = _fit_cnn(cfg, spec, train, val, out)

    labels = list(EMOTIONS)
    softmax_pred = predict_batches(cnn, val.images, spec).argmax(1)
    softmax_summary = classification_summary(val.labels, softmax_pred, labels)

    extractor = feature_model(cnn)
    from tqdm import tqdm

    feats = {}
    for name, ds in tqdm([("train", train), ("val", val)], desc="extracting features", unit="split"):
        feats[name] = predict_batches(extractor, ds.images, spec)
    log.info("fitting LinearSVC on %s features, C grid %s", feats["train"].shape, cfg.svm_c)
    head = fit_linear_svm(feats["train"], train.labels, cfg.svm_c, cfg.svm_cv, cfg.seed)
    svm_pred = head.predict(feats["val"])
    svm_summary = classification_summary(val.labels, svm_pred, labels)

    folded = fold_svm(cnn, head)
    folded_pred = predict_batches(folded, val.images, spec).argmax(1)
    agreement = float((folded_pred == svm_pred).mean())

    folded.save(out / "model.keras")
    joblib.dump(head.pipeline, out / "svm.joblib")
    save_confusion_png(softmax_summary, out / "confusion_softmax.png", "MobileNet v1 + softmax (val)")
    save_confusion_png(svm_summary, out / "confusion_svm.png", "MobileNet v1 + linear SVM (val)")
    report = [
        f"validation: {val_name}",
        "== softmax head ==", classification_report_text(val.labels, softmax_pred, labels), format_summary(softmax_summary),
        f"== linear SVM head (C={head.C:g}) ==", classification_report_text(val.labels, svm_pred, labels),
        format_summary(svm_summary),
        f"folded Keras model agrees with scikit-learn on {agreement * 100:.2f} % of validation faces",
    ]
    (out / "report.txt").write_text("\n".join(report) + "\n")

    meta = {
        "edgefer_version": __version__,
        "labels": labels,
        "input": spec.to_dict(),
        "architecture": {"name": "mobilenet_v1", "alpha": cfg.alpha, "feature_dim": int(feats["train"].shape[1]),
                         "params": int(folded.count_params())},
        "head": "svm",
        "svm": {"kind": "linear", "C": head.C, "cv_accuracy": head.cv_accuracy, "fold_agreement": agreement},
        "training": {
            "dataset": str(cfg.data), "train_faces": len(train), "class_counts": train.class_counts(),
            "validation": val_name, "val_faces": len(val), "config": asdict(cfg),
            "seconds": round(time.time() - t0, 1),
        },
        "metrics": {
            "val_softmax": {k: softmax_summary[k] for k in ("accuracy", "macro_f1", "samples")},
            "val_svm": {k: svm_summary[k] for k in ("accuracy", "macro_f1", "samples")},
            "svm_minus_softmax_points": round((svm_summary["accuracy"] - softmax_summary["accuracy"]) * 100, 2),
        },
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta
