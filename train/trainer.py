"""``edgefer train``: CNN with an in-network head -> optional SVM on its features -> deployable model.

The default (MobileNet v1, ``--head linear-svm``) writes into the output folder:

- ``cnn.keras``: the softmax model (best epoch on validation accuracy)
- ``model.keras``: the deployable model, the SVM folded in as the final Dense layer
- ``svm.joblib``: the scikit-learn scaler + LinearSVC
- ``meta.json``: input spec, labels, architecture, data, metrics (softmax vs SVM; each head also with
  test-time flip, ``<split>_<head>_flip``, as the runtime classifies by default)
- ``report.txt``, ``confusion_softmax.png``, ``confusion_svm.png``, ``history.csv``
- ``checkpoint/last.keras`` + ``checkpoint/state.json`` so ``--resume`` continues a stopped run

and, for every run, ``confusion_<head>.json``, ``roc_<head>.{png,json}`` (one-vs-rest ROC + AUC),
``curves.png`` (training curves), ``probabilities.png`` (per-face output bars), ``gradcam.png``; test-split
files are prefixed ``test_``. Dataset layouts with a protocol also write ``data_report.json`` (splits,
crop report); ``--protocol kfold`` writes one such folder per fold (``fold_00`` ...) and the mean in
``meta.json``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from edgefer import __version__
from edgefer.runtime.manifest import sha256_of, sidecar_path
from edgefer.runtime.metrics import classification_summary, format_summary
from edgefer.runtime.preprocess import InputSpec

from .config import DEFAULT_INPUT_SIZE, TrainConfig

__all__ = ["TrainConfig", "run_kfold", "run_training", "validate_config"]

log = logging.getLogger(__name__)


def validate_config(cfg: TrainConfig) -> None:
    """Reject unknown choices before any data is loaded, naming the valid ones."""
    from .augment import AugmentConfig
    from .balance import BALANCE_MODES
    from .corpora import CORPORA
    from .heads import HEADS
    from .kernels import KERNELS
    from .model import MODELS
    from .precision import PRECISIONS
    from .protocols import parse_added, resolve_protocol

    checks = [("--dataset", cfg.dataset, CORPORA), ("--model", cfg.model, (*MODELS, "hybrid")),
              ("--head", cfg.head, HEADS), ("--balance", cfg.balance, BALANCE_MODES),
              ("--precision", cfg.precision, PRECISIONS)]
    for flag, value, valid in checks:
        if value not in valid:
            raise ValueError(f"{flag} {value!r} is not one of {', '.join(valid)}")
    for kernel in cfg.svm_kernels:
        if kernel not in KERNELS:
            raise ValueError(f"--svm-kernels {kernel!r} is not one of {', '.join(KERNELS)}")
    if cfg.contempt not in ("drop", "keep"):
        raise ValueError(f"--contempt {cfg.contempt!r} is not one of drop, keep")
    if cfg.contempt == "keep" and cfg.dataset != "ckplus48":
        raise ValueError("--contempt keep is for --dataset ckplus48 (the class-folder CK+ with a contempt/ folder)")
    resolve_protocol(cfg.dataset, cfg.protocol)
    if cfg.augment_config:
        AugmentConfig.parse(cfg.augment_config)
    for flag, value, ok in (("--label-smoothing", cfg.label_smoothing, 0 <= cfg.label_smoothing < 1),
                            ("--mixup", cfg.mixup, cfg.mixup >= 0), ("--workers", cfg.workers, cfg.workers >= 0),
                            ("--precise-bn", cfg.precise_bn, cfg.precise_bn >= 0)):
        if not ok:
            raise ValueError(f"{flag} {value} is out of range (label smoothing in [0, 1), mixup, workers and "
                             "precise-bn >= 0)")
    if cfg.teacher is not None:
        if cfg.model == "hybrid" or cfg.head == "svm-top":
            raise ValueError("--teacher trains a softmax network on soft targets; it does not apply to the hybrid "
                             "(its parts) or to --head svm-top (a hinge loss on one-hot targets)")
        if cfg.epochs == 0:
            raise ValueError("--teacher needs training epochs: --epochs 0 trains nothing for it to teach")
        if not 0 < cfg.distill_weight <= 1 or cfg.distill_temperature <= 0:
            raise ValueError(f"--distill-weight {cfg.distill_weight} must be in (0, 1] and --distill-temperature "
                             f"{cfg.distill_temperature} above 0")
    if cfg.model == "hybrid" and cfg.init_from:
        raise ValueError("--init-from fine-tunes one extractor; for the hybrid pass --hybrid-parts MOBILENET VGG16")
    if not 0 < cfg.add_fraction < 1:
        raise ValueError(f"--add-fraction {cfg.add_fraction} must be between 0 and 1 (some people must stay unseen)")
    for text in cfg.add_faces:
        layout, _ = parse_added(text)
        if _people_of(layout) == _people_of(cfg.dataset):
            raise ValueError(f"--add-faces {text!r} adds the people of --dataset {cfg.dataset} itself, whose "
                             "validation and test people it would train on; add another collection")
    if cfg.val and cfg.dataset != "folders":
        raise ValueError("--val is for class-folder data; other layouts take validation from their protocol")


def _people_of(layout: str) -> str:
    """The collection whose people a layout holds (the 48x48 CK+ variant holds CK+'s)."""
    return {"ckplus48": "ckplus"}.get(layout, layout)


def _tag(split: str, head: str) -> str:
    # Validation files keep their historical names (confusion_softmax.png, confusion_svm.png).
    return head if split == "val" else f"{split}_{head}"


def _init_record_path(init_from: str | Path) -> Path:
    """Where an ``--init-from`` model's record lies: its run's ``meta.json``, or an ONNX file's manifest."""
    path = Path(init_from)
    return sidecar_path(path) if path.suffix.lower() == ".onnx" else path.parent / "meta.json"


def _init_record(init_from: str | Path) -> dict[str, Any] | None:
    """What an ``--init-from`` model says of itself (None when it has no record)."""
    record = _init_record_path(init_from)
    return json.loads(record.read_text()) if record.is_file() else None


def _architecture(cfg: TrainConfig) -> tuple[str, float]:
    """The network's name and width: the start model's (``--init-from``, whose weights and shape the run keeps),
    else what ``--model`` and ``--alpha`` build."""
    record = _init_record(cfg.init_from) if cfg.init_from else None
    if record is not None:
        return record["architecture"]["name"], float(record["architecture"].get("alpha", 1.0))
    return {"mobilenet": "mobilenet_v1", "hybrid": "hybrid_mobilenet_vgg16"}.get(cfg.model, cfg.model), cfg.alpha


def init_sources(init_from: str | Path) -> list[dict[str, Any]] | None:
    """``training.sources`` of an ``--init-from`` model (None when it records none)."""
    record = _init_record(init_from)
    return None if record is None else record.get("training", {}).get("sources")


def inherited_sources(cfg: TrainConfig) -> list[dict[str, Any]]:
    """The faces the start model (``--init-from``) and the teacher (``--teacher``) saw, marked ``via`` which.

    A fine-tuned or distilled model carries what those models learnt from their faces, so their
    people count as seen: ``edgefer eval-cross`` must not score them as held out.
    """
    from .provenance import SEEN_ROLES

    from .distill import teacher_paths

    inherited = []
    teachers = [("teacher", str(path)) for path in teacher_paths(cfg.teacher)] if cfg.teacher else []
    for flag, path in [("init-from", cfg.init_from), *teachers]:
        for entry in (init_sources(path) or []) if path else []:
            if entry.get("role") in SEEN_ROLES:
                inherited.append({**entry, "via": f"{flag} {path}"})
    return inherited


def check_init_unseen(init_from: str | Path, sources: list[dict[str, Any]], flag: str = "--init-from") -> None:
    """Refuse a start model (or teacher) that trained on people this run tests on: they would not be held out."""
    from .provenance import seen_subjects

    record = _init_record(init_from)
    if record is None:
        # Without it the run could neither name the network it fine-tunes nor keep its test people held out
        # (a run's meta.json is written when it ends: a model still training has none yet).
        raise ValueError(
            f"{flag} {init_from} has no record of its training ({_init_record_path(init_from)} is missing), so "
            "edgefer cannot tell which network it is or which people it saw. Use a finished run's cnn.keras "
            "(its meta.json is written when the run ends) or an ONNX model from `edgefer convert` with its manifest")
    seen_before = record.get("training", {}).get("sources") or []
    for part in sources:
        if part["role"] != "test" or not part.get("subjects"):
            continue
        seen = seen_subjects(seen_before, part["dataset"]) or set()
        leaked = sorted(seen & set(part["subjects"]))
        if leaked:
            raise ValueError(
                f"{flag} {init_from} trained on {len(leaked)} {part['dataset']} people this run tests on "
                f"({', '.join(leaked[:5])}{', ...' if len(leaked) > 5 else ''}): their test figures would not be "
                "held out. Start from a model that never saw them (its training.sources says which people it saw)")


def run_training(cfg: TrainConfig) -> dict[str, Any]:
    """Train, fit and fold the chosen head, evaluate every head on validation (and test), write the run folder."""
    from .protocols import resolve_protocol

    validate_config(cfg)
    if cfg.input_size is None:  # a fine-tune keeps its start model's input unless told otherwise
        from .fit import init_input_size

        side = init_input_size(cfg.init_from) if cfg.init_from else DEFAULT_INPUT_SIZE
        cfg = dataclasses.replace(cfg, input_size=side)
    if resolve_protocol(cfg.dataset, cfg.protocol) == "kfold" and cfg.fold is None:
        return run_kfold(cfg)
    import joblib

    from .data import mirrored, predict_batches
    from .distill import record as distill_record
    from .distill import require_teacher_file, teacher_paths
    from .fit import fit_cnn, fit_hybrid, model_builder, network_head, require_init_file
    from .heads import fit_feature_head
    from .model import feature_model
    from .protocols import prepare_data
    from .reports import classification_report_text, evaluate_head, headline
    from .run_figures import write_run_figures

    t0 = time.time()
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    spec = InputSpec(height=cfg.input_size, width=cfg.input_size, channels=3)
    # A mistyped start model or teacher is reported before the data is loaded (minutes on FER2013).
    if cfg.init_from:
        require_init_file(cfg.init_from)
    teachers = teacher_paths(cfg.teacher) if cfg.teacher else []
    for teacher in teachers:
        require_teacher_file(teacher)
    data = prepare_data(cfg, spec, out)
    # Which model was fine-tuned, by content: a path such as runtime/models/default_fp32.onnx names a new
    # file whenever a model is shipped. Hashed before training, while it is still the file that was read.
    init_sha256 = sha256_of(cfg.init_from) if cfg.init_from else None
    if cfg.init_from:
        check_init_unseen(cfg.init_from, data.sources)
    for teacher in teachers:
        check_init_unseen(teacher, data.sources, "--teacher")
    log.info("train %d faces %s; val %d faces; test %s", len(data.train), data.train.class_counts(), len(data.val),
             len(data.test) if data.test is not None else "none")

    if cfg.model == "hybrid":
        cnn, parts = fit_hybrid(cfg, spec, data.train, data.val, out)
        explain = parts[0]
    else:
        build = model_builder(cfg, spec, cfg.model, len(data.train.label_names))
        cnn = fit_cnn(cfg, spec, data.train, data.val, out, build)
        explain = cnn

    labels = list(data.train.label_names)  # the dataset's classes (CK+ 48x48: no neutral)
    arch, alpha = _architecture(cfg)
    splits = {"val": data.val} if data.test is None else {"val": data.val, "test": data.test}
    net = "softmax" if network_head(cfg.head) == "softmax" else "svm_top"
    summaries: dict[str, dict[str, Any]] = {}
    outputs: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # (true labels, scores) per head and split
    net_scores = {}
    # Test-time flip, as the runtime classifies by default: each face and its mirror image, scores averaged
    # (for a linear SVM the same as averaging the two faces' features). Reported beside every exact head.
    mirror_faces = {name: mirrored(ds.images) for name, ds in splits.items()}
    flipped: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name, ds in splits.items():
        net_scores[name] = predict_batches(cnn, ds.images, spec)
        outputs[f"{name}_{net}"] = (ds.labels, net_scores[name])
        summaries[f"{name}_{net}"] = evaluate_head(out, _tag(name, net), f"{arch} + {net} ({name})", ds.labels,
                                                   net_scores[name], labels)
        flipped[f"{name}_{net}"] = (ds.labels, (net_scores[name] + predict_batches(cnn, mirror_faces[name], spec)) / 2)

    deploy, head_name, svm_info, kernel_info = cnn, ("softmax" if net == "softmax" else "svm"), None, None
    feature_heads = cfg.head in ("linear-svm", "rbf-svm")
    if feature_heads or cfg.svm_kernels:
        from tqdm import tqdm

        extractor = feature_model(cnn)
        feats = {name: predict_batches(extractor, ds.images, spec)
                 for name, ds in tqdm([("train", data.train), *splits.items()], desc="extracting features",
                                      unit="split")}
        mirror_feats = {name: predict_batches(extractor, images, spec) for name, images in mirror_faces.items()}
    if feature_heads:
        fitted = fit_feature_head(cfg, cnn, feats["train"], data.train.labels, data.train_subjects)
        agreement = {}
        for name, ds in splits.items():
            exact = fitted.decision_function(feats[name])
            outputs[f"{name}_svm"] = (ds.labels, exact)
            flipped[f"{name}_svm"] = (ds.labels, (exact + fitted.decision_function(mirror_feats[name])) / 2)
            summaries[f"{name}_svm"] = evaluate_head(out, _tag(name, "svm"), f"{arch} + {fitted.kind} SVM ({name})",
                                                     ds.labels, exact, labels)
            folded = predict_batches(fitted.folded, ds.images, spec)
            agreement[name] = float((folded.argmax(1) == exact.argmax(1)).mean())
            if fitted.kind == "rbf":
                outputs[f"{name}_svm_folded"] = (ds.labels, folded)
                summaries[f"{name}_svm_folded"] = evaluate_head(
                    out, _tag(name, "svm_folded"), f"{arch} + RBF SVM, RFF fold ({name})", ds.labels, folded, labels)
        deploy, head_name = fitted.folded, "svm"
        svm_info = {**fitted.info, "fold_agreement": agreement["val"], "fold_agreement_by_split": agreement}
        joblib.dump(fitted.estimator.pipeline, out / "svm.joblib")
    if cfg.svm_kernels:
        from .kernels import expand_scores, fit_kernel_svms

        log.info("grid-searching SVC heads %s on %s features (%d-fold inner CV%s)", cfg.svm_kernels,
                 feats["train"].shape, cfg.svm_cv, ", by subject" if data.train_subjects is not None else "")
        kernels = fit_kernel_svms(feats["train"], data.train.labels, cfg.svm_kernels, data.train_subjects,
                                  cfg.svm_cv, cfg.seed)
        kernel_info = {k: ks.info() for k, ks in kernels.items()}
        for kernel, ks in kernels.items():
            classes = ks.pipeline.classes_
            for name, ds in splits.items():
                scores = expand_scores(ks.decision_function(feats[name]), classes, len(labels))
                key = f"svc_{kernel}"
                mirror_scores = expand_scores(ks.decision_function(mirror_feats[name]), classes, len(labels))
                flipped[f"{name}_{key}"] = (ds.labels, (scores + mirror_scores) / 2)
                outputs[f"{name}_{key}"] = (ds.labels, scores)
                summaries[f"{name}_{key}"] = evaluate_head(out, _tag(name, key), f"{arch} + {kernel} SVC ({name})",
                                                           ds.labels, scores, labels)
    for key, (y_true, scores) in flipped.items():
        outputs[f"{key}_flip"] = (y_true, scores)
        summaries[f"{key}_flip"] = classification_summary(y_true, scores.argmax(1), labels)
    deploy.save(out / "model.keras")

    shown = "test" if data.test is not None else "val"
    figures = write_run_figures(out, explain, spec, splits[shown], net_scores[shown], labels, cfg,
                                f"{arch} ({shown})", is_probability=net == "softmax",
                                explained_part="mobilenet part" if cfg.model == "hybrid" else None)
    report = [f"validation: {data.val_name}"] + ([f"test: {data.test_name}"] if data.test_name else [])
    for key, summary in summaries.items():
        y_true, scores = outputs[key]
        report += [f"== {key} ==", classification_report_text(y_true, scores.argmax(1), labels),
                   format_summary(summary)]
    if svm_info is not None:
        report.append(f"folded Keras model agrees with scikit-learn on {svm_info['fold_agreement'] * 100:.2f} % "
                      "of validation faces")
    (out / "report.txt").write_text("\n".join(report) + "\n")

    metrics: dict[str, Any] = {key: headline(s) for key, s in summaries.items()}
    for split in splits:
        if f"{split}_svm" in summaries and f"{split}_softmax" in summaries:
            diff = (summaries[f"{split}_svm"]["accuracy"] - summaries[f"{split}_softmax"]["accuracy"]) * 100
            key = "svm_minus_softmax_points" if split == "val" else f"{split}_svm_minus_softmax_points"
            metrics[key] = round(diff, 2)
    meta = {
        "edgefer_version": __version__,
        "labels": labels,
        "input": spec.to_dict(),
        "architecture": {"name": arch, "alpha": alpha, "feature_dim": int(feature_model(cnn).output.shape[-1]),
                         "params": int(deploy.count_params()), "init_from": cfg.init_from,
                         "init_from_sha256": init_sha256},
        "head": head_name,
        "head_kind": cfg.head,
        "svm": svm_info,
        "svm_kernels": kernel_info,
        "dataset": {"layout": cfg.dataset, "protocol": data.protocol, "fold": cfg.fold,
                    "test": data.test_name, "test_faces": None if data.test is None else len(data.test)},
        "training": {
            "dataset": str(cfg.data), "train_faces": len(data.train), "class_counts": data.train.class_counts(),
            "validation": data.val_name, "val_faces": len(data.val),
            "sources": data.sources + inherited_sources(cfg), "config": asdict(cfg),
            "distillation": None if not cfg.teacher else distill_record(cfg.teacher, cfg.distill_weight,
                                                                         cfg.distill_temperature),
            "seconds": round(time.time() - t0, 1),
        },
        "metrics": metrics,
        "figures": figures,
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta


def finished_fold(cfg: TrainConfig, folder: Path) -> dict[str, Any] | None:
    """The ``meta.json`` of a fold already run with this very configuration, else ``None``.

    A fold folder finished under another configuration is an error rather than silently
    mixed into the mean or overwritten: the message says how to keep or redo it.
    """
    meta_path = folder / "meta.json"
    if not meta_path.is_file():
        return None
    meta = json.loads(meta_path.read_text())
    # A setting added since the fold ran counts as its default (what the fold ran with).
    defaults = json.loads(json.dumps(asdict(TrainConfig(data="", out=""))))
    done = {k: v for k, v in {**defaults, **meta.get("training", {}).get("config", {})}.items() if k != "resume"}
    wanted = {k: v for k, v in json.loads(json.dumps(asdict(cfg))).items() if k != "resume"}
    if done != wanted:
        differ = sorted(k for k in set(done) | set(wanted) if done.get(k) != wanted.get(k))
        raise ValueError(f"{meta_path} was finished with other settings ({', '.join(differ)}); "
                         f"pass another --out, or delete {folder} to run that fold again")
    return meta


def run_kfold(cfg: TrainConfig) -> dict[str, Any]:
    """Subject-wise k-fold: one full run per fold in ``<out>/fold_NN``, mean and spread in ``<out>/meta.json``.

    Resumable: a fold whose ``meta.json`` exists with the same configuration is read back, not run again,
    so a stopped cross-validation continues with the next unfinished fold.
    """
    from .kfold import run_folds

    def one(fold: int, folder: Path) -> dict[str, Any]:
        fold_cfg = dataclasses.replace(cfg, fold=fold, out=str(folder))
        done = finished_fold(fold_cfg, folder)
        if done is not None:
            log.info("subject-wise %d-fold: fold %d already finished in %s", cfg.folds, fold, folder)
            return done
        log.info("subject-wise %d-fold: fold %d", cfg.folds, fold)
        return run_training(fold_cfg)

    return run_folds(one, cfg.folds, Path(cfg.out), asdict(cfg), f"{cfg.dataset} subject-wise {cfg.folds}-fold")
