"""How fast the training loader delivers batches: the number behind "is data the bottleneck?".

Runs the same loader the training loop uses (cache, split, augmentation, normalisation, layout)
with no model, so the images per second here are the ceiling the data path puts on training.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from cnn_lab.engine.specs import DatasetSpec

if TYPE_CHECKING:
    from cnn_lab.engine.data.loader import BatchLoader


def bench_loader(
    spec: DatasetSpec,
    *,
    batch_size: int = 256,
    device: str = "auto",
    seconds: float = 3.0,
    progress: Callable[[str, int, int], None] = lambda *_: None,
) -> dict[str, Any]:
    from cnn_lab.engine.data.training_data import build_training_data
    from cnn_lab.engine.train.devices import describe_device, resolve_device

    target = resolve_device(device)
    started = time.perf_counter()
    data = build_training_data(
        spec, device=target, batch_size=batch_size, seed=0, progress=progress
    )
    prepare_s = time.perf_counter() - started
    loader, prepared = data.train, data.prepared
    warm_up(loader)
    rate = loader_rate(loader, seconds)
    return {
        **rate,
        "batch_size": batch_size,
        "train_images": loader.images_count,
        "image_size": prepared.report.image_size,
        "channels": prepared.report.channels,
        "device": describe_device(target),
        "resident": loader.resident,
        "augment": data.augment,
        "prepare_s": prepare_s,
        "cache_decoded": prepared.report.cache.decoded,
        "cache_reused": prepared.report.cache.reused,
    }


def warm_up(loader: BatchLoader) -> None:
    """One batch before timing: first-touch page faults, allocator, kernels."""
    for batch in loader:
        del batch
        break


def loader_rate(loader: BatchLoader, seconds: float) -> dict[str, Any]:
    """Whole passes over ``loader`` until ``seconds`` have gone by: images per second."""
    import torch

    images = 0
    epochs = 0
    timer = time.perf_counter()
    while True:
        for batch in loader:
            images += batch.x.shape[0]
        epochs += 1
        if loader.device.type == "cuda":
            torch.cuda.synchronize(loader.device)
        if time.perf_counter() - timer >= seconds:
            break
    elapsed = time.perf_counter() - timer
    return {
        "images_per_s": images / elapsed,
        "images": images,
        "epochs": epochs,
        "seconds": elapsed,
    }
