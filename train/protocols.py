"""Turn ``--dataset``/``--protocol`` into train / validation / test faces.

Validation (epoch choice, SVM grid) always comes out of the training side, so
nothing is tuned on a test split. FER2013-style class-folder roots keep their
own ``val/`` (PublicTest) and have no test split here.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgefer.runtime.datasets import FaceDataset, load_dataset
from edgefer.runtime.preprocess import InputSpec

from .provenance import dataset_name, source
from .splits import published_kdef_split, random_split, stratified_holdout, subject_kfold, subject_split

if TYPE_CHECKING:
    from .config import TrainConfig

log = logging.getLogger(__name__)

PROTOCOLS = ("auto", "given", "published", "subject", "kfold", "official")
_AUTO = {"folders": "given", "kdef": "published", "rafdb": "official"}


@dataclass
class RunData:
    """The faces of one run and where they came from."""

    train: FaceDataset
    val: FaceDataset
    test: FaceDataset | None
    protocol: str
    val_name: str
    test_name: str | None
    report: dict[str, Any]
    #: ``training.sources`` (see :mod:`.provenance`): which faces, and which people, each part holds.
    sources: list[dict[str, Any]] = field(default_factory=list)
    train_subjects: np.ndarray | None = None  # who each training face is (inner CV groups), where known


def resolve_protocol(dataset: str, protocol: str) -> str:
    """``auto`` becomes the dataset's usual protocol (KDEF: published, RAF-DB: official, subject sets: subject)."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    return _AUTO.get(dataset, "subject") if protocol == "auto" else protocol


def load_splits(cfg: "TrainConfig", spec: InputSpec) -> tuple[FaceDataset, FaceDataset, str]:
    """Training and validation faces; validation is ``--val``, ``<data>/val`` or a 10 % split."""
    size = (spec.height, spec.width)
    train = load_dataset(cfg.data, "train", size, cfg.limit_per_class)
    if cfg.val:
        return train, load_dataset(cfg.val, "val", size, cfg.limit_per_class), str(cfg.val)
    if Path(cfg.data).suffix.lower() == ".csv" or (Path(cfg.data) / "val").is_dir():
        return train, load_dataset(cfg.data, "val", size, cfg.limit_per_class), f"{cfg.data} (val)"
    log.warning("no validation set given; holding out 10 %% of %s", cfg.data)
    fit, val = stratified_holdout(train.labels, 0.1, cfg.seed)
    return train.subset(fit), train.subset(val), f"10 % of {cfg.data}"


def fold_indices(cfg: "TrainConfig", corpus) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) indices of ``cfg.fold`` under subject-wise ``cfg.folds``-fold."""
    folds = subject_kfold(corpus.subjects, cfg.folds, cfg.seed)
    if cfg.fold is None or not 0 <= cfg.fold < len(folds):
        raise ValueError(f"fold {cfg.fold} is outside 0..{len(folds) - 1}")
    return folds[cfg.fold]


def prepare_data(cfg: "TrainConfig", spec: InputSpec, out: Path) -> RunData:
    """Load ``cfg.data`` in layout ``cfg.dataset`` and split it by ``cfg.protocol``; writes ``data_report.json``."""
    from .corpora import load_corpus

    protocol = resolve_protocol(cfg.dataset, cfg.protocol)
    size = (spec.height, spec.width)
    if cfg.dataset == "folders" and protocol == "given":
        train, val, val_name = load_splits(cfg, spec)
        name = dataset_name("folders", cfg.data)
        sources = [source(name, "train", cfg.data, len(train), None),
                   source(dataset_name("folders", cfg.val) if cfg.val else name, "validation", val_name, len(val),
                          None)]
        return RunData(train, val, None, protocol, val_name, None, {}, sources)
    options: dict[str, Any] = {}
    if cfg.dataset == "kdef":
        options = {"angles": tuple(cfg.angles), "no_face": cfg.kdef_no_face}
    elif cfg.dataset == "ckplus48":
        options = {"contempt": cfg.contempt == "keep"}
    corpus = load_corpus(cfg.dataset, cfg.data, size, remember=True, **options)
    if protocol == "published":
        split = (published_kdef_split(len(corpus), cfg.seed) if cfg.dataset == "kdef"
                 else random_split(len(corpus), max(1, round(len(corpus) * cfg.test_fraction)), cfg.seed))
    elif protocol == "subject":
        split = subject_split(corpus.subjects, cfg.test_fraction, cfg.seed)
    elif protocol == "kfold":
        split = fold_indices(cfg, corpus)
    elif protocol == "official":
        if corpus.partition is None:
            raise ValueError(f"{cfg.dataset} has no official partition; use --protocol published, subject or kfold")
        split = (np.flatnonzero(corpus.partition != "test"), np.flatnonzero(corpus.partition == "test"))
    else:
        raise ValueError(f"protocol {protocol!r} needs --dataset folders with a val/ folder or --val")
    train_side, test = corpus.subset(split[0]), corpus.subset(split[1])
    # A subject-independent protocol keeps validation people apart from fitting people too.
    people = train_side.subjects if protocol in ("subject", "kfold") else None
    fit, val = stratified_holdout(train_side.faces.labels, cfg.val_fraction, cfg.seed, people)
    report = {
        "dataset": cfg.dataset, "root": str(cfg.data), "protocol": protocol, "fold": cfg.fold, "seed": cfg.seed,
        "faces": len(corpus), "train": int(len(fit)), "val": int(len(val)), "test": int(len(test)),
        "subjects": None if corpus.subjects is None else int(len(np.unique(corpus.subjects))),
        "test_subjects": sorted(np.unique(test.subjects).tolist()) if people is not None else None,
        "loader": corpus.report,
    }
    if people is not None and test.subjects is not None:
        overlap = set(train_side.subjects.tolist()) & set(test.subjects.tolist())
        if overlap:
            raise AssertionError(f"subject-independent split leaked subjects {sorted(overlap)}")
    (out / "data_report.json").write_text(json.dumps(report, indent=2) + "\n")
    name = f"{cfg.dataset} {protocol}" + (f" fold {cfg.fold}" if cfg.fold is not None else "")
    ds_name = dataset_name(cfg.dataset, cfg.data)

    def ids(part) -> list[str] | None:
        return None if part is None else part.tolist()

    subjects = train_side.subjects
    sources = [
        source(ds_name, "train", cfg.data, len(fit), ids(None if subjects is None else subjects[fit])),
        source(ds_name, "validation", cfg.data, len(val), ids(None if subjects is None else subjects[val])),
        source(ds_name, "test", cfg.data, len(test), ids(test.subjects)),
    ]
    return RunData(train_side.faces.subset(fit), train_side.faces.subset(val), test.faces, protocol,
                   f"{name}: validation held out of train", f"{name}: test", report, sources,
                   None if people is None else people[fit])
