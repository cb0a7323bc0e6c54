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

    def stratified_split(self, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Sorted (train, val) index arrays that keep each class's proportion (no test split)."""
        from cnn_lab.engine.data.splits import stratified_split

        splits = stratified_split(self.labels, None, val_fraction, 0.0, seed)
        return splits.train, splits.val

    def stratified_limit(self, limit: int, seed: int) -> ImageSet:
        """At most ``limit`` images, each class keeping its share (see ``limit_indices``)."""
        from cnn_lab.engine.data.splits import limit_indices

        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        if limit >= len(self):
            return self
        return self.subset(limit_indices(self.labels, limit, seed))
