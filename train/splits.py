"""Evaluation protocols: the published random split, a subject-independent split, subject-wise k-fold.

All return index arrays into a :class:`~edgefer.train.corpus.Corpus` and are
deterministic for a seed, so a protocol is reproducible from its recorded seed.
"""

from __future__ import annotations

import numpy as np

#: KDEF's published protocol: 2,938 images (angles S, HL, HR) split at random into 2,644 / 294.
KDEF_PUBLISHED_TEST = 294


def random_split(n: int, n_test: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A random ``(train, test)`` split with exactly ``n_test`` test items (faces of one person may be in both)."""
    if not 0 < n_test < n:
        raise ValueError(f"cannot take {n_test} test items out of {n}")
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[n_test:]), np.sort(order[:n_test])


def published_kdef_split(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The published KDEF protocol: 294 random test faces, scaled by ``n / 2938`` if fewer faces are usable."""
    n_test = int(round(KDEF_PUBLISHED_TEST * n / 2938))
    return random_split(n, max(1, n_test), seed)


def _check_subjects(subjects: np.ndarray | None, what: str) -> np.ndarray:
    if subjects is None:
        raise ValueError(f"{what} needs the subject of every face; this dataset does not record subjects")
    return np.asarray(subjects)


def subject_split(subjects: np.ndarray | None, test_fraction: float = 0.1, seed: int = 0
                  ) -> tuple[np.ndarray, np.ndarray]:
    """A ``(train, test)`` split in which no subject is on both sides (about ``test_fraction`` of the people)."""
    subjects = _check_subjects(subjects, "a subject-independent split")
    people = np.unique(subjects)
    if len(people) < 2:
        raise ValueError(f"a subject-independent split needs at least 2 subjects, found {len(people)}")
    rng = np.random.default_rng(seed)
    n_test = min(len(people) - 1, max(1, int(round(len(people) * test_fraction))))
    test_people = rng.permutation(people)[:n_test]
    test = np.isin(subjects, test_people)
    return np.flatnonzero(~test), np.flatnonzero(test)


def subject_kfold(subjects: np.ndarray | None, k: int = 10, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """``k`` ``(train, test)`` folds over subjects: each person is tested in exactly one fold."""
    subjects = _check_subjects(subjects, "subject-wise k-fold")
    people = np.random.default_rng(seed).permutation(np.unique(subjects))
    if not 2 <= k <= len(people):
        raise ValueError(f"subject-wise {k}-fold needs 2 <= k <= number of subjects ({len(people)})")
    folds = []
    for group in np.array_split(people, k):
        test = np.isin(subjects, group)
        folds.append((np.flatnonzero(~test), np.flatnonzero(test)))
    return folds


def stratified_holdout(labels: np.ndarray, fraction: float, seed: int = 0,
                       subjects: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Split training data into ``(fit, validation)`` for model selection, never touching the test side.

    With ``subjects`` the validation people are disjoint from the fitting people,
    so a subject-independent protocol stays subject-independent during selection.
    """
    if subjects is not None and len(np.unique(subjects)) >= 2:
        return subject_split(subjects, fraction, seed)
    rng = np.random.default_rng(seed)
    val = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        rng.shuffle(idx)
        val.extend(idx[: max(1, int(len(idx) * fraction))])
    mask = np.zeros(len(labels), bool)
    mask[val] = True
    return np.flatnonzero(~mask), np.flatnonzero(mask)
