"""Seeded, stratified index splits and training subsets.

All shuffling goes through ``sklearn.model_selection.train_test_split(random_state=seed)``. With no
test split, ``split_indices`` draws exactly the split that
``train_test_split(X, y, test_size=n_val, stratify=y, random_state=seed)`` would, so protocols
written against scikit-learn (claims.md: digits 1257/540 at seed 0) see the same samples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.seeding import derive_seed

__all__ = ["SplitIndices", "can_stratify", "split_indices", "take_subset"]


@dataclass(frozen=True, eq=False)
class SplitIndices:
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray | None
    stratified: bool


def can_stratify(y: np.ndarray | None, n_a: int, n_b: int) -> bool:
    """Whether a stratified split of labels ``y`` into parts of ``n_a`` and ``n_b`` is possible.

    scikit-learn needs every class twice and each part at least as large as the number of classes.
    """
    if y is None or y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        return False
    counts = np.bincount(y)
    counts = counts[counts > 0]
    return bool(counts.min() >= 2 and min(n_a, n_b) >= counts.size)


def _split(
    idx: np.ndarray, y: np.ndarray | None, n_b: int, seed: int, stratify: bool
) -> tuple[np.ndarray, np.ndarray, bool]:
    from sklearn.model_selection import train_test_split  # lazy: ~1 s to import

    labels = None if y is None else y[idx]
    use = stratify and can_stratify(labels, idx.size - n_b, n_b)
    a, b = train_test_split(idx, test_size=n_b, random_state=seed, stratify=labels if use else None)
    return np.asarray(a), np.asarray(b), use


def split_indices(
    n: int, y: np.ndarray | None, *, n_val: int, n_test: int, seed: int, stratify: bool
) -> SplitIndices:
    """Shuffle ``range(n)`` into train/val/test index arrays of the given sizes.

    The test part is split off first (with a seed derived from ``seed``), then the validation part
    from the rest with ``random_state=seed``. ``stratified`` in the result says whether
    stratification was possible at every stage (it is skipped, not faked, when a class is too rare).
    """
    idx = np.arange(n)
    test = None
    stratified = stratify
    if n_test > 0:
        idx, test, ok = _split(idx, y, n_test, derive_seed(seed, "test"), stratify)
        stratified = stratified and ok
    train, val, ok = _split(idx, y, n_val, seed, stratify)
    return SplitIndices(train, val, test, stratified and ok)


def take_subset(
    train: np.ndarray, y: np.ndarray | None, subset: int, *, seed: int, stratify: bool
) -> tuple[np.ndarray, bool]:
    """``subset`` training indices: a stratified draw when possible, else the first ``subset``.

    ``train`` is already shuffled, so "the first ``subset``" is a random subset too.
    """
    from sklearn.model_selection import train_test_split

    if subset >= train.size:
        return train, False
    labels = None if y is None else y[train]
    if stratify and can_stratify(labels, subset, train.size - subset):
        chosen, _ = train_test_split(train, train_size=subset, random_state=seed, stratify=labels)
        return np.asarray(chosen), True
    return train[:subset], False
