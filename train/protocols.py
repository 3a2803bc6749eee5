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


def parse_added(spec_text: str) -> tuple[str, str]:
    """``"kdef=../shared/datasets/kdef/KDEF"`` -> ``("kdef", root)``; a layout with subject ids is required."""
    from .corpora import CORPORA

    layout, sep, root = spec_text.partition("=")
    layout = layout.strip().lower()
    if not sep or not root:
        raise ValueError(f"--add-faces {spec_text!r}: write LAYOUT=ROOT, e.g. kdef=../shared/datasets/kdef/KDEF")
    if layout not in CORPORA or layout == "folders":
        raise ValueError(f"--add-faces {spec_text!r}: layout {layout!r} is not one whose people are known; choose "
                         f"one of {', '.join(c for c in CORPORA if c != 'folders')}")
    return layout, root


def add_faces(train: FaceDataset, spec_text: str, cfg: "TrainConfig",
              size: tuple[int, int]) -> tuple[FaceDataset, dict[str, Any]]:
    """``train`` plus the faces of ``cfg.add_fraction`` of one collection's people (split by person, seeded).

    The other people are recorded as ``test`` in ``training.sources``, so ``edgefer eval-cross``
    scores the model on them only. Validation and test stay the training data's own: nothing is
    chosen on the added collection. Faces of a class the training data lacks (KDEF's neutral beside
    CK+48's six classes) are left out and counted in the report. The report's ``subjects`` holds
    who each added face is (``layout:id``), for person-grouped inner cross-validation.
    """
    from .corpora import load_corpus

    layout, root = parse_added(spec_text)
    options: dict[str, Any] = {}
    if layout == "kdef":
        options = {"angles": tuple(cfg.angles), "no_face": cfg.kdef_no_face}
    corpus = load_corpus(layout, root, size, remember=True, **options)
    if corpus.subjects is None:
        raise ValueError(f"--add-faces {spec_text!r}: {layout} gave no subject ids, so its people cannot be kept "
                         "apart from the ones held out")
    fit, held = subject_split(corpus.subjects, 1.0 - cfg.add_fraction, cfg.seed)
    names, fit_labels = corpus.faces.label_names, corpus.faces.labels[fit]
    known = np.asarray([n in train.label_names for n in names])[fit_labels]
    left_out = {n: int((fit_labels == i).sum()) for i, n in enumerate(names) if n not in train.label_names}
    fit = fit[known]
    if not len(fit):
        raise ValueError(f"--add-faces {spec_text!r}: none of its classes {list(names)} is among the training "
                         f"data's {list(train.label_names)}")
    part = corpus.faces.subset(fit)
    # A collection may lack a class (CK+48 has no neutral): its labels are re-indexed by name.
    labels = np.asarray([train.label_names.index(n) if n in train.label_names else -1 for n in part.label_names],
                        np.int64)[part.labels]
    merged = FaceDataset(np.concatenate([train.images, part.images]), np.concatenate([train.labels, labels]),
                         list(train.sources) + list(part.sources), [], train.label_names)
    name = dataset_name(layout, root)
    log.info("--add-faces %s: %d faces of %d people added to training; %d people (%d faces) held out", layout,
             len(fit), len(np.unique(corpus.subjects[fit])), len(np.unique(corpus.subjects[held])), len(held))
    return merged, {
        "layout": layout, "root": str(root), "fraction": cfg.add_fraction, "faces": int(len(fit)),
        "held_out_faces": int(len(held)),
        "class_counts": {n: int((labels == i).sum()) for i, n in enumerate(train.label_names) if (labels == i).any()},
        "left_out_classes": left_out,
        "subjects": [f"{layout}:{x}" for x in corpus.subjects[fit]],
        "loader": corpus.report,
        "sources": [source(name, "train", root, len(fit), corpus.subjects[fit].tolist()),
                    source(name, "test", root, len(held), corpus.subjects[held].tolist())],
    }


def add_all_faces(train: FaceDataset, subjects: np.ndarray | None, cfg: "TrainConfig", size: tuple[int, int],
                  sources: list[dict[str, Any]], report: dict[str, Any]) -> tuple[FaceDataset, np.ndarray | None]:
    """``train`` (and who each face is, where known) plus every ``cfg.add_faces`` collection's people;
    their sources go to ``sources`` and their counts to ``report["added"]``."""
    for spec_text in cfg.add_faces:  # other collections' people join the fitting side only
        train, added = add_faces(train, spec_text, cfg, size)
        sources += added["sources"]
        if subjects is not None:
            subjects = np.concatenate([subjects, np.asarray(added["subjects"])])
        report.setdefault("added", []).append({k: v for k, v in added.items() if k not in ("sources", "subjects")})
    return train, subjects


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
        report: dict[str, Any] = {}
        train, _ = add_all_faces(train, None, cfg, size, sources, report)
        if report:
            (out / "data_report.json").write_text(json.dumps(report, indent=2) + "\n")
        return RunData(train, val, None, protocol, val_name, None, report, sources)
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
    train, train_subjects = add_all_faces(train_side.faces.subset(fit), None if people is None else people[fit],
                                          cfg, size, sources, report)
    (out / "data_report.json").write_text(json.dumps(report, indent=2) + "\n")
    return RunData(train, train_side.faces.subset(val), test.faces, protocol,
                   f"{name}: validation held out of train", f"{name}: test", report, sources, train_subjects)
