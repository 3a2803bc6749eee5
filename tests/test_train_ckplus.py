"""CK+ 48x48: the loader's label mapping and contempt handling, subject-wise folds, kernel SVM heads, resumable k-fold.

The real-data checks read ``../shared/datasets/ckplus48`` and skip without it; the
end-to-end k-fold on generated faces is marked slow.
"""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pytest

from edgefer.train.corpora import load_corpus
from edgefer.train.splits import subject_kfold

from .conftest import SHARED, need
from .train_fixtures import write_ckplus48

CKPLUS48 = SHARED / "datasets" / "ckplus48"


def _without_neutral(root: Path) -> Path:
    """The real variant has no neutral folder; the generic fixture writes one."""
    for f in (root / "neutral").iterdir():
        f.unlink()
    (root / "neutral").rmdir()
    return root


def test_ckplus48_maps_folder_names_and_drops_or_keeps_contempt(tmp_path):
    root = _without_neutral(write_ckplus48(tmp_path / "ck48", subjects=2, per_subject=1))
    dropped = load_corpus("ckplus48", root, (48, 48))
    assert dropped.faces.label_names == ("angry", "disgust", "fear", "happy", "sad", "surprise")
    assert len(dropped) == 12 and dropped.report["contempt"] == "dropped (1)"
    assert dropped.report["neutral"] == "absent from this variant"
    # anger/ -> angry, sadness/ -> sad, by index into the run's own label set
    names = [dropped.faces.label_names[i] for i in dropped.faces.labels]
    assert all(Path(src).parent.name in (name, {"angry": "anger", "sad": "sadness"}.get(name)) for src, name
               in zip(dropped.faces.sources, names))
    kept = load_corpus("ckplus48", root, (48, 48), contempt=True)
    assert kept.faces.label_names[-1] == "contempt" and len(kept.faces.label_names) == 7
    assert len(kept) == 13 and kept.report["contempt"] == "kept"
    assert kept.subjects[kept.faces.labels == 6].tolist() == ["S100"]


def test_ckplus48_rejects_a_folder_that_is_no_ck_class(tmp_path):
    root = write_ckplus48(tmp_path / "ck48", subjects=1, per_subject=1)
    (root / "bored").mkdir()
    with pytest.raises(ValueError, match="'bored' is not a CK\\+ class"):
        load_corpus("ckplus48", root)


def _ck_subjects(n_people: int = 40, seed: int = 0) -> np.ndarray:
    """Subjects as the loader takes them from CK+ names: S010_004_00000017.png -> S010, 3 frames per sequence."""
    rng = np.random.default_rng(seed)
    names = [f"S{100 + p:03d}_{seq:03d}_{f:08d}.png" for p in range(n_people)
             for seq in range(1, int(rng.integers(1, 5)) + 1) for f in (15, 16, 17)]
    return np.asarray([n.split("_", 1)[0] for n in names])


def test_subject_wise_10_fold_keeps_every_person_in_one_fold_and_is_deterministic():
    subjects = _ck_subjects()
    folds = subject_kfold(subjects, 10, seed=0)
    tested_people = [set(subjects[test]) for _, test in folds]
    assert sum(len(p) for p in tested_people) == len(set(subjects))  # each person tested exactly once
    for i, (train, test) in enumerate(folds):
        assert not set(subjects[train]) & set(subjects[test])
        assert all(not tested_people[i] & tested_people[j] for j in range(len(folds)) if j != i)
    again = subject_kfold(subjects, 10, seed=0)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(folds, again))
    other = subject_kfold(subjects, 10, seed=1)
    assert not all(np.array_equal(a[1], b[1]) for a, b in zip(folds, other))


def test_real_ckplus48_loads_and_splits_by_subject():
    root = need(CKPLUS48, "the CK+ 48x48 dataset")
    corpus = load_corpus("ckplus48", root, (48, 48))
    assert corpus.faces.label_names == ("angry", "disgust", "fear", "happy", "sad", "surprise")
    assert corpus.faces.images.shape[1:] == (48, 48) and corpus.report["contempt"].startswith("dropped")
    with_contempt = load_corpus("ckplus48", root, (48, 48), contempt=True)
    assert len(with_contempt) - len(corpus) == int(corpus.report["contempt"].split("(")[1].rstrip(")"))
    folds = subject_kfold(corpus.subjects, 10, seed=0)
    assert sum(len(test) for _, test in folds) == len(corpus)
    for train, test in folds:
        assert not set(corpus.subjects[train]) & set(corpus.subjects[test])


def test_kernel_heads_search_by_subject_and_score_every_class():
    from edgefer.train.kernels import KERNELS, expand_scores, fit_kernel_svms, inner_cv

    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 30)
    groups = np.tile(np.repeat([f"S{i}" for i in range(10)], 3), 3)
    feats = rng.normal(0, 1, (90, 8)) + 3 * np.eye(8)[labels]
    for train, val in inner_cv(labels, groups, 5, 0).split(feats, labels, groups):
        assert not set(groups[train]) & set(groups[val])
    heads = fit_kernel_svms(feats, labels, KERNELS, groups, folds=5, seed=0)
    for kernel, head in heads.items():
        assert head.cv_accuracy > 0.9, kernel
        assert len(head.grid) >= 3 and set(head.params) >= {"C"}
        assert (head.decision_function(feats).argmax(1) == labels).mean() > 0.9
    # a class the SVM never saw is placed below every other score, never predicted
    scores = expand_scores(heads["rbf"].decision_function(feats), np.array([0, 2, 3]), 5)
    assert scores.shape == (90, 5) and (scores[:, 1] < scores[:, [0, 2, 3]].min(1)).all()


def test_a_finished_fold_is_reused_only_under_the_same_settings(tmp_path):
    from edgefer.train.trainer import TrainConfig, finished_fold

    cfg = TrainConfig(data="ck", out=str(tmp_path / "fold_03"), dataset="ckplus48", protocol="kfold", fold=3)
    folder = Path(cfg.out)
    assert finished_fold(cfg, folder) is None
    folder.mkdir()
    (folder / "meta.json").write_text(json.dumps({"training": {"config": asdict(cfg)}, "metrics": {}}))
    assert finished_fold(replace(cfg, resume=True), folder) is not None
    with pytest.raises(ValueError, match="other settings \\(epochs\\).*delete"):
        finished_fold(replace(cfg, epochs=3), folder)


@pytest.mark.slow
def test_ckplus48_kfold_with_kernel_heads_end_to_end_and_resumes(tmp_path):
    from edgefer.train.experiments import publish
    from edgefer.train.results_table import collect, render
    from edgefer.train.trainer import TrainConfig, run_training

    root = _without_neutral(write_ckplus48(tmp_path / "ck48", subjects=6, per_subject=2))
    contempt = (root / "contempt" / "S100_009_00000001.png").read_bytes()
    for s in range(101, 106):  # contempt faces of every person, so each fold trains on all 7 classes
        (root / "contempt" / f"S{s}_009_00000001.png").write_bytes(contempt)
    cfg = TrainConfig(data=str(root), out=str(tmp_path / "run"), dataset="ckplus48", protocol="kfold", folds=2,
                      model="cnn2", epochs=2, svm_c=[0.1], svm_cv=2, svm_kernels=["linear", "rbf", "poly"],
                      contempt="keep", input_size=32, alpha=0.5, batch_size=16, augment=False, bn_momentum=0.8)
    meta = run_training(cfg)
    assert meta["labels"][-1] == "contempt" and len(meta["labels"]) == 7
    for key in ("test_svm", "test_svc_linear", "test_svc_rbf", "test_svc_poly"):
        m = meta["metrics"][key]
        assert len(m["accuracy_per_fold"]) == 2 and m["accuracy_min"] <= m["accuracy"] <= m["accuracy_max"]
        assert m["samples"] == 6 * 6 * 2 + 6
        assert len(meta["metrics"][f"{key}_flip"]["accuracy_per_fold"]) == 2  # also scored with test-time flip
        pooled = json.loads((tmp_path / "run" / f"confusion_{key}.json").read_text())
        assert np.asarray(pooled["confusion_matrix"]).sum() == m["samples"]
    fold_meta = tmp_path / "run" / "fold_01" / "meta.json"
    stamp = fold_meta.stat().st_mtime_ns
    assert run_training(cfg)["metrics"] == meta["metrics"] and fold_meta.stat().st_mtime_ns == stamp
    published = publish(tmp_path / "run", tmp_path / "results" / "ck")
    assert not [p for p in published if p.name.endswith("faces.png")]  # dataset faces: never
    assert not [p for p in published if p.suffix == ".png" and p.parent.name.startswith("fold_")]
    assert (tmp_path / "results" / "ck" / "gradcam_fold_00.png") in published  # heat maps, no dataset face
    table = render(*collect(tmp_path / "results"))
    assert "8-class (contempt kept; 7 present, no neutral)" in table and "RBF SVC (grid search)" in table


def test_results_table_row_says_the_ck_class_protocol_and_fold_range(tmp_path):
    from edgefer.train.results_table import collect, render

    run = tmp_path / "ckplus_cnn5_kernels_48"
    run.mkdir()
    metric = {"accuracy": 0.85, "accuracy_std": 0.05, "accuracy_min": 0.775, "accuracy_max": 0.948,
              "accuracy_per_fold": [0.775, 0.948], "macro_f1": 0.8, "samples": 927}
    (run / "meta.json").write_text(json.dumps({
        "labels": ["angry", "disgust", "fear", "happy", "sad", "surprise"], "input": {"height": 48},
        "architecture": {"name": "cnn5", "params": 246902}, "head": "svm", "svm": {"kind": "linear"},
        "dataset": {"layout": "ckplus48", "protocol": "kfold"}, "kfold": {"folds": 10},
        "metrics": {"test_svm": metric, "test_svc_rbf": metric, "test_svc_rbf_flip": metric}}))
    table = render(*collect(tmp_path))
    row = "| CK+ (48x48) | subject-wise 10-fold, 7-class (contempt dropped; 6 present, no neutral) | cnn5 48px |"
    assert f"{row} RBF SVC (grid search) | 85.00 ± 5.00 (folds 77.5–94.8) |" in table
    assert f"{row} RBF SVC (grid search), test-time flip | 85.00 ± 5.00 (folds 77.5–94.8) |" in table
    assert f"{row} linear SVM | 85.00 ± 5.00 (folds 77.5–94.8) |" in table
    meta = json.loads((run / "meta.json").read_text())
    (run / "meta.json").write_text(json.dumps({**meta, "architecture": {**meta["architecture"], "alpha": 0.5}}))
    assert "| cnn5 width 0.5 48px | linear SVM |" in render(*collect(tmp_path))  # a half-width run says so
