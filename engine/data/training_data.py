"""The loaders a run trains and evaluates with, built one way for training and benchmarking.

``cnn-lab data bench`` measures exactly what the training loop iterates, so the images per
second it prints are the ceiling the data path really puts on training.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from cnn_lab.engine.data.augment import BatchAugmenter
from cnn_lab.engine.data.loader import (
    BatchLoader,
    class_weights,
    sampler_weights,
)
from cnn_lab.engine.data.normalization import Normalization, choose_normalization
from cnn_lab.engine.data.prepare import PreparedDataset, prepare_dataset
from cnn_lab.engine.specs import ArchitectureSpec, DatasetSpec

if TYPE_CHECKING:
    from cnn_lab.engine.models.published_weights import Expected

EVAL_BATCH = 256
"""Evaluation needs no gradients, so it takes bigger batches than training (at least this)."""


@dataclass
class TrainingData:
    prepared: PreparedDataset
    train: BatchLoader
    val: BatchLoader
    test: BatchLoader | None
    loss_weights: torch.Tensor | None
    """Per-class weights for the loss when the spec asks for a class-weighted loss."""
    augment: str
    """The augmentation as ``name=strength,…`` for reports (empty for none)."""
    normalize: Normalization | None = None
    """The mean and std the loaders normalise with, and where they come from."""


def build_training_data(
    spec: DatasetSpec,
    *,
    device: torch.device,
    batch_size: int,
    seed: int = 0,
    channels_last: bool = True,
    shard: tuple[int, int] = (0, 1),
    placement: str = "auto",
    should_stop: Callable[[], bool] = lambda: False,
    progress: Callable[[str, int, int], None] = lambda *_: None,
    prepared: PreparedDataset | None = None,
    evaluation: bool = True,
    architecture: ArchitectureSpec | None = None,
) -> TrainingData:
    """Prepare the cache, split it, and build the loaders with augmentation and balancing.

    Refuses (DataError) data the checks say cannot be trained on. ``prepared`` reuses a
    dataset prepared before (the tuners probe one spec many times); ``evaluation=False``
    leaves the validation and test loaders empty, so a probe copies only what it trains on.
    ``architecture``: the network trained, whose published weights (if any) decide the auto
    size and the auto mean and std (engine/data/normalization.py).
    """
    expected = _expected(architecture)
    if prepared is None:
        prepared = prepare_dataset(
            spec, progress=progress, should_stop=should_stop, weights=expected
        )
    prepared.raise_blockers()
    splits = prepared.split(spec)
    if not evaluation:
        splits = type(splits)(splits.train, splits.val[:0], splits.test[:0])
    normalize = choose_normalization(spec, expected, prepared.images, splits.train)
    mean, std = normalize.mean, normalize.std
    classes = len(prepared.classes)
    steps = [(step.name, step.strength) for step in spec.augment]
    augmenter = BatchAugmenter(
        steps, mixup_alpha=spec.mixup_alpha, cutmix_alpha=spec.cutmix_alpha, seed=seed
    )
    train_labels = prepared.labels[splits.train]

    def loader(indices, **kw) -> BatchLoader:  # type: ignore[no-untyped-def]
        return BatchLoader(
            prepared.images,
            prepared.labels,
            indices,
            device=device,
            mean=mean,
            std=std,
            num_classes=classes,
            channels_last=channels_last,
            **kw,
        )

    train = loader(
        splits.train,
        batch_size=batch_size,
        shuffle=True,
        augmenter=augmenter if augmenter else None,
        seed=seed,
        shard=shard,
        resident={"auto": None, "device": True, "host": False}[placement],
        sample_weights=(
            sampler_weights(train_labels, classes)
            if spec.class_balance == "weighted_sampler"
            else None
        ),
    )
    eval_batch = max(batch_size, EVAL_BATCH)
    val = loader(splits.val, batch_size=eval_batch, shuffle=False)
    test = loader(splits.test, batch_size=eval_batch, shuffle=False) if len(splits.test) else None
    loss_weights = None
    if spec.class_balance == "weighted_loss":
        loss_weights = torch.as_tensor(
            class_weights(train_labels, classes), dtype=torch.float32, device=device
        )
    augment = ",".join(f"{name}={strength:g}" for name, strength in steps)
    return TrainingData(prepared, train, val, test, loss_weights, augment, normalize)


def _expected(architecture: ArchitectureSpec | None) -> Expected | None:
    """What the network's published weights expect (None without any): metadata only."""
    if architecture is None or not architecture.weights:
        return None
    from cnn_lab.engine.models.published_weights import expected_preprocessing

    return expected_preprocessing(architecture)
