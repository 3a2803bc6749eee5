"""Splits (published, subject-independent, subject-wise k-fold), class balance and augmentation settings."""

from __future__ import annotations

import numpy as np
import pytest

from edgefer.train.augment import AugmentConfig, augment_batch
from edgefer.train.balance import balanced_class_weights, balanced_order
from edgefer.train.splits import (
    published_kdef_split,
    random_split,
    stratified_holdout,
    subject_kfold,
    subject_split,
)


def test_published_kdef_split_is_2644_294_and_reproducible():
    train, test = published_kdef_split(2938, seed=0)
    assert (len(train), len(test)) == (2644, 294)
    assert not set(train) & set(test)
    assert np.array_equal(test, published_kdef_split(2938, seed=0)[1])
    assert not np.array_equal(test, published_kdef_split(2938, seed=1)[1])
    with pytest.raises(ValueError, match="cannot take 10 test items out of 10"):
        random_split(10, 10)


def _people(n_people: int = 20, per_person: int = 7) -> np.ndarray:
    return np.repeat([f"P{i:02d}" for i in range(n_people)], per_person)


def test_subject_split_keeps_people_on_one_side():
    subjects = _people()
    train, test = subject_split(subjects, 0.1, seed=3)
    assert len(train) + len(test) == len(subjects)
    assert not set(subjects[train]) & set(subjects[test])
    assert len(set(subjects[test])) == 2
    with pytest.raises(ValueError, match="does not record subjects"):
        subject_split(None)


def test_subject_kfold_tests_every_person_once():
    subjects = _people(23)
    folds = subject_kfold(subjects, 10, seed=0)
    assert len(folds) == 10
    tested = np.concatenate([test for _, test in folds])
    assert sorted(tested) == list(range(len(subjects)))
    for train, test in folds:
        assert not set(subjects[train]) & set(subjects[test])
    with pytest.raises(ValueError, match="2 <= k <= number of subjects \\(23\\)"):
        subject_kfold(subjects, 30)


def test_validation_holdout_is_stratified_or_subject_disjoint():
    labels = np.tile(np.arange(7), 20)
    fit, val = stratified_holdout(labels, 0.1, seed=0)
    assert np.bincount(labels[val], minlength=7).tolist() == [2] * 7
    subjects = _people(20)
    fit, val = stratified_holdout(labels, 0.1, seed=0, subjects=subjects)
    assert not set(subjects[fit]) & set(subjects[val])


def test_class_weights_and_balanced_sampling():
    labels = np.array([0] * 90 + [1] * 10 + [3] * 50)
    w = balanced_class_weights(labels, 7)
    assert w[2] == 0 and w[1] == pytest.approx(150 / (3 * 10))
    assert (np.bincount(labels, minlength=7) * w).sum() == pytest.approx(150)
    order = balanced_order(labels, np.random.default_rng(0))
    counts = np.bincount(labels[order], minlength=7)
    assert len(order) == 150 and counts[[0, 1, 3]].tolist() == [50, 50, 50]


def test_sequence_yields_class_weights_and_balanced_batches():
    from edgefer.runtime.preprocess import InputSpec
    from edgefer.train.data import make_sequence

    labels = np.array([0] * 30 + [1] * 6)
    images = np.zeros((36, 32, 32), np.uint8)
    weights = balanced_class_weights(labels, 7)
    seq = make_sequence(images, labels, InputSpec(32, 32, 3), 7, 36, None, class_weights=weights)
    x, y, sw = seq[0]
    assert x.shape == (36, 32, 32, 3) and y.shape == (36, 7)
    np.testing.assert_allclose(sw, weights[y.argmax(1)].astype(np.float32))  # each face's own class weight
    assert sorted(y.argmax(1).tolist()) == sorted(labels.tolist())  # shuffled, none lost
    balanced = make_sequence(images, labels, InputSpec(32, 32, 3), 7, 36, None, balanced=True)
    _, y = balanced[0]
    assert y.sum(axis=0)[:2].tolist() == [18, 18]


def test_augment_config_parses_and_rejects_bad_settings():
    cfg = AugmentConfig.parse("rotation_deg=15, flip=false, brightness=0.7:1.3")
    assert cfg.rotation_deg == 15 and cfg.flip is False and cfg.brightness == (0.7, 1.3) and cfg.zoom == 0.1
    with pytest.raises(ValueError, match="name=value with name in"):
        AugmentConfig.parse("spin=3")
    with pytest.raises(ValueError, match="brightness=LOW:HIGH"):
        AugmentConfig.parse("brightness=bright")
    still = augment_batch(np.full((4, 32, 32), 100, np.uint8), np.random.default_rng(0),
                          AugmentConfig.parse("rotation_deg=0,zoom=0,shift=0,flip=false,brightness=1:1"))
    assert (still == 100).all()
