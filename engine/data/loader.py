"""Batches for the training loop, straight from the uint8 cache, augmented on the device.

Why not torch's DataLoader: the images are already decoded and resized, so a batch is one
fancy index into a uint8 array. When the split fits (half the free device memory, or half
the free RAM on a CPU) it is copied to the device once as uint8 (4x smaller than float) and a
step costs an index, a cast and the augmentation kernels, all on the device. When it does
not fit, a background thread reads each batch from the memory map (rows sorted for locality),
pins it and hands it over while the previous batch trains.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

RESIDENT_SHARE = 0.5
"""Share of the free memory the resident copy of a split may take."""
PREFETCH = 3


@dataclass(frozen=True)
class Batch:
    x: torch.Tensor
    """float32 N×C×H×W, normalised (channels-last strides when asked)."""
    targets: torch.Tensor
    """What the loss takes: int64 labels, or float soft labels after mixup/cutmix."""
    labels: torch.Tensor
    """The images' own int64 labels (for accuracy)."""


def channel_stats(
    images: np.ndarray, indices: np.ndarray, max_images: int = 20_000, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std (0..1 scale) of the training images.

    Computed on the training split only, so nothing about validation leaks into the model; a
    seeded sample of at most ``max_images`` bounds the cost on a large memory-mapped cache.
    """
    if len(indices) > max_images:
        indices = np.sort(np.random.default_rng(seed).choice(indices, max_images, replace=False))
    total = np.zeros(images.shape[-1])
    total_sq = np.zeros(images.shape[-1])
    count = 0
    for start in range(0, len(indices), 2048):
        chunk = images[indices[start : start + 2048]].reshape(-1, images.shape[-1])
        chunk = chunk.astype(np.float64) / 255.0
        total += chunk.sum(axis=0)
        total_sq += np.square(chunk).sum(axis=0)
        count += chunk.shape[0]
    mean = total / max(count, 1)
    std = np.sqrt(np.maximum(total_sq / max(count, 1) - mean**2, 0.0))
    return mean, np.maximum(std, 1e-3)


def free_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    import psutil

    return int(psutil.virtual_memory().available)


class BatchLoader:
    """Iterate over ``indices`` of ``images`` in batches on ``device``; one pass per ``iter``."""

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        indices: np.ndarray,
        *,
        device: torch.device,
        mean: np.ndarray,
        std: np.ndarray,
        batch_size: int,
        shuffle: bool,
        num_classes: int,
        augmenter: Callable[..., tuple[torch.Tensor, torch.Tensor]] | None = None,
        channels_last: bool = True,
        seed: int = 0,
        sample_weights: np.ndarray | None = None,
        resident: bool | None = None,
        shard: tuple[int, int] = (0, 1),
    ) -> None:
        self.device = device
        self.seed = seed
        self.epoch = 0
        self.start_batch = 0
        self.rank, self.world = shard
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.num_classes = num_classes
        self.augmenter = augmenter
        self.channels_last = channels_last
        self.indices = np.asarray(indices, dtype=np.int64)
        self.generator = torch.Generator().manual_seed(seed)
        self.sample_weights = (
            None if sample_weights is None else torch.as_tensor(sample_weights, dtype=torch.float64)
        )
        shape = (1, -1, 1, 1)
        mean_t = torch.as_tensor(mean, dtype=torch.float32, device=device).view(shape)
        std_t = torch.as_tensor(std, dtype=torch.float32, device=device).view(shape)
        # (x - mean) / std as one fused x * scale + shift: one pass over the batch, not two.
        self.scale, self.shift = 1.0 / std_t, -mean_t / std_t
        self._norm_rows: tuple[torch.Tensor, torch.Tensor] | None = None
        self._scale_255: tuple[torch.Tensor, torch.Tensor] | None = None
        self.labels_all = torch.from_numpy(np.asarray(labels, dtype=np.int64)[self.indices])
        needed = len(self.indices) * int(np.prod(images.shape[1:]))
        if resident is None:
            resident = needed <= RESIDENT_SHARE * free_bytes(device)
        self.resident = resident
        self.images = images
        if resident:
            host = torch.from_numpy(np.ascontiguousarray(images[self.indices]))
            self.data: torch.Tensor | None = host.to(device)
            self.labels_dev = self.labels_all.to(device)
        else:
            self.data = None

    def __len__(self) -> int:
        return -(-len(self.indices) // self.batch_size)

    @property
    def images_count(self) -> int:
        return len(self.indices)

    def _rows(self, h: int, w: int, c: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Scale and shift repeated over one image's NHWC positions (built once per size)."""
        if self._norm_rows is None or self._norm_rows[0].numel() != h * w * c:
            self._norm_rows = (self.scale.view(c).repeat(h * w), self.shift.view(c).repeat(h * w))
        return self._norm_rows

    def _rows_255(self, h: int, w: int, c: int) -> torch.Tensor:
        """The scale row divided by 255 (for batches still in 0..255), built once per size."""
        scale_row, _ = self._rows(h, w, c)
        if self._scale_255 is None or self._scale_255[0] is not scale_row:
            self._scale_255 = (scale_row, scale_row / 255.0)
        return self._scale_255[1]

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        """Make the next pass epoch ``epoch``'s order, starting at batch ``start_batch``.

        The order and each batch's augmentation are drawn from seeds derived from (run seed,
        epoch, batch) rather than from one running RNG, so a run resumed mid-epoch, or a
        data-parallel rank that sees only its share of each batch, gets exactly the batches an
        uninterrupted single-process run would have had. (As DistributedSampler.set_epoch.)
        """
        self.epoch, self.start_batch = epoch, start_batch
        self.generator.manual_seed(_mix(self.seed, epoch))

    def _batch_seed(self, batch: int) -> int:
        return _mix(self.seed, self.epoch, batch + 1)

    def _my_share(self, index: torch.Tensor) -> torch.Tensor:
        # Rank r of a data-parallel run takes every world-th image of each global batch.
        return index[self.rank :: self.world] if self.world > 1 else index

    def _order(self) -> torch.Tensor:
        n = len(self.indices)
        if self.sample_weights is not None:
            return torch.multinomial(self.sample_weights, n, True, generator=self.generator)
        if self.shuffle:
            return torch.randperm(n, generator=self.generator)
        return torch.arange(n)

    def __iter__(self) -> Iterator[Batch]:
        order = self._order()
        if self.resident:
            yield from self._resident_batches(order)
        else:
            yield from self._streamed_batches(order)

    def _finish(self, u8: torch.Tensor, labels: torch.Tensor, batch: int) -> Batch:
        """uint8 NHWC rows to a normalised float batch (channels-last NCHW view).

        The normalisation runs on the flat NHWC memory against per-position rows of scale
        and shift: broadcasting a (1, C, 1, 1) tensor over channels-last memory makes an inner
        loop of length C (3), which cost more than the rest of the loader together.
        """
        n, h, w, c = u8.shape
        scale_row, shift_row = self._rows(h, w, c)
        targets = labels
        if self.augmenter is not None:
            reseed = getattr(self.augmenter, "reseed", None)
            if reseed is not None:
                reseed(self._batch_seed(batch))
            x = u8.permute(0, 3, 1, 2).float().div_(255.0)
            x, targets = self.augmenter(x, labels, self.num_classes)
            flat = x.permute(0, 2, 3, 1).reshape(n, -1)  # a view when x is channels-last
            x = torch.addcmul(shift_row, flat, scale_row)
        else:  # fold the cast and the /255 into the normalisation: one pass over the batch
            # addcmul promotes the uint8 rows itself, element by element: 14x faster on a
            # 2-core CPU than casting the batch to float first (a pass of its own), and equal.
            x = torch.addcmul(shift_row, u8.reshape(n, -1), self._rows_255(h, w, c))
        x = x.view(n, h, w, c).permute(0, 3, 1, 2)
        memory_format = torch.channels_last if self.channels_last else torch.contiguous_format
        return Batch(x.contiguous(memory_format=memory_format), targets, labels)

    def _resident_batches(self, order: torch.Tensor) -> Iterator[Batch]:
        assert self.data is not None
        order = order.to(self.device)
        for batch, start in self._starts(len(order)):
            index = self._my_share(order[start : start + self.batch_size])
            # index_select, not [index]: the same gather without an OpenMP region, which
            # stalls when another process holds a core.
            yield self._finish(
                self.data.index_select(0, index), self.labels_dev.index_select(0, index), batch
            )

    def _starts(self, n: int) -> list[tuple[int, int]]:
        """(batch number, first position) of each batch this pass yields."""
        starts = list(enumerate(range(0, n, self.batch_size)))
        return starts[self.start_batch :]

    def _streamed_batches(self, order: torch.Tensor) -> Iterator[Batch]:
        batches: queue.Queue[Any] = queue.Queue(maxsize=PREFETCH)
        stop = threading.Event()
        pin = self.device.type == "cuda"
        positions = order.numpy()

        def produce() -> None:
            try:
                for batch, start in self._starts(len(positions)):
                    if stop.is_set():
                        return
                    share = self._my_share(
                        torch.from_numpy(positions[start : start + self.batch_size])
                    )
                    chosen = np.sort(share.numpy())
                    rows = self.images[self.indices[chosen]]  # sorted rows: sequential reads
                    u8 = torch.from_numpy(np.ascontiguousarray(rows))
                    labels = self.labels_all[torch.from_numpy(chosen)]
                    if pin:
                        u8, labels = u8.pin_memory(), labels.pin_memory()
                    batches.put((u8, labels, batch))
                batches.put(None)
            except BaseException as exc:  # handed to the consumer, raised there
                batches.put(exc)

        worker = threading.Thread(target=produce, name="cnn-lab-prefetch", daemon=True)
        worker.start()
        try:
            while True:
                item = batches.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                u8, labels, batch = item
                u8 = u8.to(self.device, non_blocking=True)
                labels = labels.to(self.device, non_blocking=True)
                yield self._finish(u8, labels, batch)
        finally:
            stop.set()
            while worker.is_alive():  # unblock a producer waiting on a full queue
                try:
                    batches.get_nowait()
                except queue.Empty:
                    worker.join(timeout=0.05)


def _mix(*values: int) -> int:
    """A 63-bit seed from a few integers (SplitMix64 steps), stable across runs and machines."""
    h = 0x9E3779B97F4A7C15
    for v in values:
        h = (h ^ (int(v) & 0xFFFFFFFFFFFFFFFF)) * 0xBF58476D1CE4E5B9 & 0xFFFFFFFFFFFFFFFF
        h ^= h >> 31
    return h & 0x7FFFFFFFFFFFFFFF


def class_weights(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Inverse-frequency weights, mean 1 over the images: rare classes count more."""
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    weights = np.where(counts > 0, len(labels) / (num_classes * np.maximum(counts, 1)), 0.0)
    return weights


def sampler_weights(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Per-image weights so that every class is drawn equally often."""
    return class_weights(labels, num_classes)[labels]
