"""Stratified, seeded, duplicate-aware splits: train/validation/test and k folds.

Images that are copies of each other (same bytes or near-identical pixels) form a group, and a
group always lands in one split; otherwise a copy in validation would be "recognised" rather
than classified and the validation accuracy would flatter the model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Splits:
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def singleton_groups(n: int) -> np.ndarray:
    return np.arange(n, dtype=np.int64)


def _class_groups(
    labels: np.ndarray, groups: np.ndarray, rng: np.random.Generator
) -> list[list[np.ndarray]]:
    """Per class, its groups' member indices in a seeded random order.

    A group whose members carry different labels is stratified under its first member's class.
    """
    order = np.argsort(groups, kind="stable")
    bounds = np.flatnonzero(np.diff(groups[order])) + 1
    members = np.split(order, bounds)
    per_class: dict[int, list[np.ndarray]] = {}
    for m in members:
        per_class.setdefault(int(labels[m[0]]), []).append(m)
    out = []
    for cls in sorted(per_class):
        items = per_class[cls]
        out.append([items[i] for i in rng.permutation(len(items))])
    return out


def stratified_split(
    labels: np.ndarray,
    groups: np.ndarray | None,
    val_fraction: float,
    test_fraction: float,
    seed: int,
) -> Splits:
    """Sorted index arrays; each class keeps its proportions as closely as whole groups allow.

    Every class with at least two groups gets at least one validation image, and one training
    image always, so per-class metrics exist on both sides.
    """
    if not 0.0 < val_fraction < 1.0 or not 0.0 <= test_fraction < 1.0:
        raise ValueError("fractions must lie in [0, 1)")
    if val_fraction + test_fraction >= 1.0:
        raise ValueError("val_fraction + test_fraction must leave images for training")
    labels = np.asarray(labels, dtype=np.int64)
    groups = singleton_groups(len(labels)) if groups is None else np.asarray(groups)
    rng = np.random.default_rng(seed)
    train, val, test = [], [], []
    for class_groups in _class_groups(labels, groups, rng):
        n = sum(len(g) for g in class_groups)
        want_test = round(n * test_fraction)
        want_val = round(n * val_fraction)
        if len(class_groups) >= 2:
            want_val = max(want_val, 1)
        taken_test = taken_val = 0
        *others, last = class_groups
        train.append(last)  # every class trains on at least one group
        for g in others:
            if taken_test < want_test:
                test.append(g)
                taken_test += len(g)
            elif taken_val < want_val:
                val.append(g)
                taken_val += len(g)
            else:
                train.append(g)
    return Splits(_join(train), _join(val), _join(test))


def k_folds(
    labels: np.ndarray, groups: np.ndarray | None, k: int, seed: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``k`` (train, validation) pairs; every image validates exactly once.

    Groups are dealt class by class to the fold with the fewest images of that class so far,
    which keeps the folds stratified and about equal in size.
    """
    if k < 2:
        raise ValueError("k must be at least 2")
    labels = np.asarray(labels, dtype=np.int64)
    groups = singleton_groups(len(labels)) if groups is None else np.asarray(groups)
    rng = np.random.default_rng(seed)
    folds: list[list[np.ndarray]] = [[] for _ in range(k)]
    sizes = np.zeros(k, dtype=np.int64)
    for class_groups in _class_groups(labels, groups, rng):
        in_class = np.zeros(k, dtype=np.int64)
        for g in sorted(class_groups, key=len, reverse=True):
            target = int(np.lexsort((sizes, in_class))[0])
            folds[target].append(g)
            in_class[target] += len(g)
            sizes[target] += len(g)
    everything = np.arange(len(labels), dtype=np.int64)
    pairs = []
    for fold in folds:
        val = _join(fold)
        pairs.append((np.setdiff1d(everything, val, assume_unique=True), val))
    return pairs


def limit_indices(labels: np.ndarray, limit: int, seed: int) -> np.ndarray:
    """Sorted indices of at most ``limit`` images, each class keeping its share.

    A quick look at a big dataset should still show every class, so when ``limit`` allows it
    each non-empty class keeps at least one image, taken from the largest quotas.
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    labels = np.asarray(labels, dtype=np.int64)
    if limit >= len(labels):
        return np.arange(len(labels), dtype=np.int64)
    counts = np.bincount(labels)
    quotas = _proportional_quotas(counts, limit)
    rng = np.random.default_rng(seed)
    chosen = [rng.permutation(np.flatnonzero(labels == c))[:q] for c, q in enumerate(quotas)]
    return np.sort(np.concatenate(chosen)).astype(np.int64)


def _proportional_quotas(counts: np.ndarray, limit: int) -> np.ndarray:
    """Split ``limit`` over classes in proportion to ``counts`` (Hamilton's method)."""
    exact = counts * (limit / counts.sum())
    quotas = np.floor(exact).astype(np.int64)
    order = np.argsort(-(exact - quotas), kind="stable")
    quotas[order[: limit - int(quotas.sum())]] += 1
    present = counts > 0
    if limit >= int(present.sum()):
        for c in np.flatnonzero(present & (quotas == 0)):
            quotas[int(np.argmax(quotas))] -= 1
            quotas[c] = 1
    return np.minimum(quotas, counts)


def _join(parts: list[np.ndarray]) -> np.ndarray:
    if not parts:
        return np.zeros(0, dtype=np.int64)
    return np.sort(np.concatenate(parts)).astype(np.int64)
