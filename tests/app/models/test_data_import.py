"""The Data panel's background work, without Qt: the examples an import picks out, and the
augmentation preview drawn over them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cnn_lab.app.models.data_import import (
    EXAMPLES_PER_CLASS,
    augment_examples,
    import_dataset,
    pick_examples,
)
from cnn_lab.engine.specs import DatasetSpec


def test_examples_are_the_first_of_each_class_in_class_order() -> None:
    labels = np.array([1, 0, 1, 2, 0, 1, 1, 0])
    assert pick_examples(labels, 3, 2).tolist() == [1, 4, 0, 2, 3]
    assert pick_examples(labels, 4, 2).tolist() == [1, 4, 0, 2, 3]  # a class with none
    assert pick_examples(np.zeros(0, dtype=np.int64), 0, 2).tolist() == []


def test_an_import_hands_over_a_few_images_of_each_class(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CNN_LAB_CACHE", str(tmp_path / "cache"))
    spec = DatasetSpec(source="sample:shapes", limit=200)
    stages: list[str] = []
    imported = import_dataset(spec, lambda stage, *_: stages.append(stage), lambda: False)
    classes = len(imported.classes)
    assert classes >= 2 and stages
    assert sum(imported.counts) == len(imported.prepared) == 200
    assert len(imported.examples) == len(imported.example_labels)
    assert len(imported.examples) == sum(min(n, EXAMPLES_PER_CLASS) for n in imported.counts)
    assert list(imported.example_labels) == sorted(imported.example_labels)
    assert imported.examples.flags["C_CONTIGUOUS"] and imported.examples.dtype == np.uint8


def test_the_preview_changes_the_images_only_when_asked() -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(4, 16, 16, 3), dtype=np.uint8)
    plain = DatasetSpec(source="sample:shapes")
    same = augment_examples(images, plain, 0, None, None)
    assert np.array_equal(same, images) and same is not images
    flipped = DatasetSpec(source="sample:shapes", augment=[{"name": "hflip", "strength": 1.0}])
    drawn = augment_examples(images, flipped, 0, None, None)
    assert drawn.shape == images.shape and drawn.dtype == np.uint8
    assert not np.array_equal(drawn, images)
