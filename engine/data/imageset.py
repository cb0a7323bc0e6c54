"""An in-memory labelled image set: the one shape every importer and sample produces.

Images are kept as uint8 N×H×W×C (C = 3) because that is what files decode to, what the
cache stores and what the GUI previews; conversion to float tensors happens later, on the
device, in batches. The class is numpy-only so the GUI can hold one before torch loads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

IndexLike = Sequence[int] | np.ndarray


@dataclass(frozen=True, eq=False)
class ImageSet:
    """Images with integer labels into ``classes``.

    ``eq=False`` because element-wise array comparison has no single truth value; two sets
    are compared by content explicitly where that matters (tests), never implicitly.
    """

    images: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]
    name: str

    def __post_init__(self) -> None:
        images, labels = self.images, self.labels
        if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 4:
            raise ValueError("images must be a uint8 array shaped N×H×W×C")
        if images.shape[3] != 3:
            raise ValueError(f"images must have 3 channels (RGB), got {images.shape[3]}")
        if not isinstance(labels, np.ndarray) or labels.dtype != np.int64 or labels.ndim != 1:
            raise ValueError("labels must be a one-dimensional int64 array")
        if len(labels) != len(images):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        if not isinstance(self.classes, tuple) or not self.classes:
            raise ValueError("classes must be a non-empty tuple of names")
        if len(set(self.classes)) != len(self.classes):
            raise ValueError("class names must be unique")
        if len(labels) and (labels.min() < 0 or labels.max() >= len(self.classes)):
            raise ValueError(f"labels must lie in [0, {len(self.classes) - 1}]")

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def class_counts(self) -> dict[str, int]:
        """Images per class name, including classes with none (so gaps are visible)."""
        counts = np.bincount(self.labels, minlength=len(self.classes))
        return {name: int(n) for name, n in zip(self.classes, counts, strict=True)}

    def subset(self, indices: IndexLike) -> ImageSet:
        """The images at ``indices`` (integers or a boolean mask), as a new set with copies."""
        index = np.asarray(indices)
        if index.dtype != np.bool_:
            index = index.astype(np.int64, copy=False)
        return ImageSet(self.images[index], self.labels[index], self.classes, self.name)

    def _class_indices(self, rng: np.random.Generator) -> list[np.ndarray]:
        """Each class's image indices in a seeded random order, classes in label order."""
        return [rng.permutation(np.flatnonzero(self.labels == c)) for c in range(len(self.classes))]

    def stratified_split(self, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Sorted (train, val) index arrays that keep each class's proportion.

        Every class with at least two images gets at least one validation and one training
        image, so per-class metrics exist on both sides; a class's validation count differs
        from ``val_fraction × count`` by less than one image.
        """
        if not 0.0 < val_fraction < 1.0:
            raise ValueError(f"val_fraction must lie strictly between 0 and 1, got {val_fraction}")
        rng = np.random.default_rng(seed)
        train_parts, val_parts = [], []
        for idx in self._class_indices(rng):
            n = len(idx)
            n_val = min(max(round(n * val_fraction), 1), n - 1) if n >= 2 else 0
            val_parts.append(idx[:n_val])
            train_parts.append(idx[n_val:])
        train = np.sort(np.concatenate(train_parts)).astype(np.int64)
        val = np.sort(np.concatenate(val_parts)).astype(np.int64)
        return train, val

    def stratified_limit(self, limit: int, seed: int) -> ImageSet:
        """At most ``limit`` images, each class keeping its share (largest-remainder rounding).

        A quick look at a big dataset should still show every class, so when ``limit`` allows
        it each non-empty class keeps at least one image, taken from the largest quotas.
        """
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        if limit >= len(self):
            return self
        counts = np.bincount(self.labels, minlength=len(self.classes))
        quotas = _proportional_quotas(counts, limit)
        rng = np.random.default_rng(seed)
        chosen = [idx[:q] for idx, q in zip(self._class_indices(rng), quotas, strict=True)]
        return self.subset(np.sort(np.concatenate(chosen)))


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
