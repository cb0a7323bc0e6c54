"""How fast the training loader delivers batches: the number behind "is data the bottleneck?".

Runs the same loader the training loop uses (cache, split, augmentation, normalisation, layout)
with no model, so the images per second here are the ceiling the data path puts on training.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from cnn_lab.engine.specs import DatasetSpec


def bench_loader(
    spec: DatasetSpec,
    *,
    batch_size: int = 256,
    device: str = "auto",
    seconds: float = 3.0,
    progress: Callable[[str, int, int], None] = lambda *_: None,
) -> dict[str, Any]:
    import torch

    from cnn_lab.engine.data.augment import BatchAugmenter
    from cnn_lab.engine.data.loader import BatchLoader, channel_stats
    from cnn_lab.engine.data.prepare import prepare_dataset
    from cnn_lab.engine.train.devices import describe_device, resolve_device

    started = time.perf_counter()
    prepared = prepare_dataset(spec, progress=progress)
    prepare_s = time.perf_counter() - started
    prepared.raise_blockers()
    splits = prepared.split(spec)
    target = resolve_device(device)
    mean, std = channel_stats(prepared.images, splits.train)
    steps = [(s.name, s.strength) for s in spec.augment]
    augmenter = BatchAugmenter(
        steps, mixup_alpha=spec.mixup_alpha, cutmix_alpha=spec.cutmix_alpha, seed=0
    )
    loader = BatchLoader(
        prepared.images,
        prepared.labels,
        splits.train,
        device=target,
        mean=mean,
        std=std,
        batch_size=batch_size,
        shuffle=True,
        num_classes=len(prepared.classes),
        augmenter=augmenter if augmenter else None,
    )
    for batch in loader:  # warm-up pass: first-touch page faults, allocator, kernels
        del batch
        break
    images = 0
    epochs = 0
    timer = time.perf_counter()
    while True:
        for batch in loader:
            images += batch.x.shape[0]
        epochs += 1
        if target.type == "cuda":
            torch.cuda.synchronize(target)
        if time.perf_counter() - timer >= seconds:
            break
    elapsed = time.perf_counter() - timer
    return {
        "images_per_s": images / elapsed,
        "images": images,
        "epochs": epochs,
        "seconds": elapsed,
        "batch_size": batch_size,
        "train_images": loader.images_count,
        "image_size": prepared.report.image_size,
        "channels": prepared.report.channels,
        "device": describe_device(target),
        "resident": loader.resident,
        "augment": ",".join(f"{name}={strength:g}" for name, strength in steps),
        "prepare_s": prepare_s,
        "cache_decoded": prepared.report.cache.decoded,
        "cache_reused": prepared.report.cache.reused,
    }
