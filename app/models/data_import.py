"""The Data panel's background work: the engine's import with the example images picked out,
and the augmentation preview of those examples.

Both run on a worker thread (the panel wraps them in a Task) and import the engine lazily:
``prepare_dataset`` reads files and the preview imports torch, neither of which the window
should wait for while it opens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from cnn_lab.engine.specs import DatasetSpec

EXAMPLES_PER_CLASS = 4
"""Images per class in the example grid, and the same images in the augmented grid."""


@dataclass(frozen=True)
class Imported:
    """What an import hands the panel: the prepared data and the few images it shows."""

    prepared: Any  # PreparedDataset
    examples: np.ndarray
    """Up to EXAMPLES_PER_CLASS images of each class, in class order (a copy, not a memmap)."""
    example_labels: np.ndarray
    counts: list[int]

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(self.prepared.classes)


def pick_examples(labels: np.ndarray, classes: int, per_class: int) -> np.ndarray:
    """The indices of the first ``per_class`` images of each class, in class order."""
    picks = [np.flatnonzero(labels == c)[:per_class] for c in range(classes)]
    return np.concatenate(picks) if picks else np.zeros(0, dtype=np.int64)


def import_dataset(spec: DatasetSpec, progress: Any, should_stop: Any) -> Imported:
    """Runs on a worker thread: the engine's import, then the example images picked out."""
    from cnn_lab.engine.data.prepare import prepare_dataset

    prepared = prepare_dataset(spec, progress=progress, should_stop=should_stop)
    labels = np.asarray(prepared.labels)
    index = pick_examples(labels, len(prepared.classes), EXAMPLES_PER_CLASS)
    counts = np.bincount(labels, minlength=len(prepared.classes)).tolist()
    examples = np.ascontiguousarray(prepared.images[index])
    return Imported(prepared, examples, labels[index], counts)


def augment_examples(
    images: np.ndarray, spec: DatasetSpec, seed: int, progress: Any, should_stop: Any
) -> np.ndarray:
    """Runs on a worker thread: ``spec``'s augmentation drawn once over ``images`` (one
    quick draw: it neither reports progress nor stops part-way)."""
    from cnn_lab.engine.data.augment import preview

    steps = [(step.name, step.strength) for step in spec.augment]
    return preview(
        images, steps, seed, mixup_alpha=spec.mixup_alpha, cutmix_alpha=spec.cutmix_alpha
    )
