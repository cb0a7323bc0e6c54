"""Batches for the training loop, straight from the uint8 cache, augmented on the device.

Why not torch's DataLoader: the images are already decoded and resized, so a batch is one
fancy index into a uint8 array. When the split fits (half the free device memory, or half
the free RAM on a CPU) it is copied to the device once as uint8 (4x smaller than float) and a
step costs an index, a cast and the augmentation kernels, all on the device. When it does
not fit, a background thread reads each batch from the memory map (rows sorted for locality),
pins it and hands it over while the previous batch trains.

On a CPU a batch is made in three passes over memory, on one thread (see _one_thread): one
gather that copies each image row, already flipped and shifted, from uint8 images kept padded
by a few reflected columns (and mirrored, when the augmentation flips), so the flips and
pad-crops cost nothing of their own; one cast to float; one fused multiply-add that
normalises. The float batches come from a small ring of buffers, and a buffer is written
again only when nothing outside the loader still holds the batch in it.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:
    from cnn_lab.engine.data.augment import PixelMap

RESIDENT_SHARE = 0.5
"""Share of the free memory the resident copy of a split may take."""
PREFETCH = 3
RING = 3
"""Float batch buffers a CPU loader reuses: the one being filled, the one the training step
holds, and one spare for a caller that keeps one more."""


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


class _Pixels:
    """uint8 images laid out so that a flipped and shifted image row is one run of bytes.

    ``store`` is M x H x K x (W + 2 pad) x C: every image row padded by ``pad`` columns each
    side, filled by reflection about the edge pixels (the translate kernel's fill), and with
    K = 2 followed by the same row mirrored. An output row of a flipped, shifted image is
    then W contiguous pixels of one stored row, and a whole batch one ``index_select`` of
    such runs (a view whose rows overlap), on uint8: 0.1-0.7 ms for 256 images of 64 x 64 on
    a 2-core AMD EPYC (idle to shared), where the float kernels took 3-16 ms to flip and
    9-16 ms to shift. The price is memory: 2.25x the uint8 images at 64 px with pad 4 and
    mirroring, so the loader takes this layout only where that fits (see
    BatchLoader._pixel_layout). With pad 0 and K 1 it is the plain images, at no extra memory.
    """

    def __init__(self, store: torch.Tensor, pad: int, mirror: bool) -> None:
        self.store = store
        self.pad, self.mirror = pad, mirror
        self.count, self.h, self.copies, padded_w, self.c = store.shape
        self.w = padded_w - 2 * pad
        self._runs: torch.Tensor | None = None

    @classmethod
    def plain(cls, images: torch.Tensor) -> _Pixels:
        n, h, w, c = images.shape
        return cls(images.view(n, h, 1, w, c), 0, False)

    @classmethod
    def padded(cls, images: torch.Tensor, pad: int, mirror: bool) -> _Pixels:
        n, h, w, c = images.shape
        store = torch.empty((n, h, 2 if mirror else 1, w + 2 * pad, c), dtype=torch.uint8)
        _pad_into(store, images, pad, mirror)
        return cls(store, pad, mirror)

    def gather(
        self, image: torch.Tensor, pixel_map: PixelMap | None, out: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The images ``image`` (on the store's device) through ``pixel_map``: uint8 NHWC."""
        n, h, w, c = image.shape[0], self.h, self.w, self.c
        if pixel_map is None and self.pad == 0 and self.copies == 1:
            flat = self.store.view(self.count, -1)
            if out is None:
                return flat.index_select(0, image).view(n, h, w, c)
            return torch.index_select(flat, 0, image, out=out.view(n, -1)).view(n, h, w, c)
        if pixel_map is None:
            rows = torch.arange(h).expand(n, h)
            copy, start = torch.zeros(n, dtype=torch.long), torch.full((n,), self.pad)
        else:
            rows = pixel_map.rows
            found = self._windows(pixel_map.cols) if self.store.device.type == "cpu" else None
            if found is None:  # not a window of the store (or on a GPU): index every pixel
                rows = _send_long(rows, image).view(n, h, 1)
                cols = (_send_long(pixel_map.cols, image) + self.pad).view(n, 1, w)
                return self.store[image.view(n, 1, 1), rows, 0, cols]
            copy, start = found
        # The first pixel of each output row, counted in stored pixels.
        line = (image.view(n, 1) * h + rows) * self.copies + copy.view(n, 1)
        starts = (line * (w + 2 * self.pad) + start.view(n, 1)).view(-1)
        runs = self._run_view()
        if out is None:
            return runs.index_select(0, starts).view(n, h, w, c)
        return torch.index_select(runs, 0, starts, out=out.view(n * h, w * c)).view(n, h, w, c)

    def _run_view(self) -> torch.Tensor:
        """Every run of W pixels in the store, as rows of bytes (overlapping: a view)."""
        if self._runs is None:
            flat = self.store.reshape(-1)
            pixels = flat.numel() // self.c
            self._runs = flat.as_strided((pixels - self.w + 1, self.w * self.c), (self.c, 1))
        return self._runs

    def _windows(self, cols: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Per image, the stored copy (0 plain, 1 mirrored) and the first stored column of
        the W consecutive ones its column map reads; None if some image's map is not such a
        run (two shifts in a row can reflect twice), and the caller indexes every pixel."""
        n, w, pad = cols.shape[0], self.w, self.pad
        mid = (w - 1) // 2
        # Stored column q of the plain copy holds image column reflect(q - pad); of the
        # mirrored copy, w - 1 - reflect(q - pad). A map that runs backwards reads the
        # mirrored copy, and is read as w - 1 - cols from the plain one, at the same start.
        backwards = cols[:, min(mid + 1, w - 1)] < cols[:, mid]
        if backwards.any():
            if not self.mirror:
                return None
            cols = torch.where(backwards.view(n, 1), w - 1 - cols, cols)
        start = cols[:, mid] + (pad - mid)
        run = _reflect(start.view(n, 1) + (torch.arange(w) - pad), w)
        if not ((start >= 0) & (start <= 2 * pad) & (run == cols).all(1)).all():
            return None
        return backwards.long(), start


def _reflect(index: torch.Tensor, size: int) -> torch.Tensor:
    """As augment._reflect: fold indices within one image size back in, about the edges."""
    last = size - 1
    return last - (last - index.abs()).abs()


def _send_long(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    if like.device.type == "cuda":  # queued from pinned memory: the CPU does not wait
        return t.contiguous().pin_memory().to(like.device, non_blocking=True)
    return t


def _pad_into(store: torch.Tensor, images: torch.Tensor, pad: int, mirror: bool) -> None:
    """Fill ``store`` (N x H x K x W+2pad x C) from uint8 NHWC ``images`` (see _Pixels).

    In NumPy, which copies through negative strides in one pass (torch.flip would copy twice)
    and on one thread, like the loader's other passes.
    """
    out, src = store.numpy(), images.numpy()
    w = src.shape[2]
    out[:, :, 0, pad : pad + w] = src
    if pad:  # reflection about the edge pixels, as augment._reflect
        out[:, :, 0, :pad] = src[:, :, list(range(pad, 0, -1))]
        out[:, :, 0, pad + w :] = src[:, :, [w - 1 - t for t in range(1, pad + 1)]]
    if mirror:
        out[:, :, 1] = out[:, :, 0, ::-1]


@contextmanager
def _one_thread(on: bool) -> Iterator[None]:
    """Run the loader's own passes over memory on one intra-op thread (CPU).

    They are memory-bound and take about a millisecond a batch on one core. Split across
    OpenMP threads they gain little on a quiet machine and lose much on a busy one: when
    another process holds a core, every parallel region waits for a thread that is not
    running (256 images of 64 x 64 on 2 shared cores: 31,000-36,000 images/s on one thread
    against 5,100-5,400 on two). The model's own step keeps every thread.
    """
    threads = torch.get_num_threads() if on else 1
    if threads == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _storage_refs(t: torch.Tensor) -> int:
    """How many tensors share ``t``'s memory, plus a constant (-1 where torch cannot say)."""
    count = getattr(torch._C, "_storage_Use_Count", None)
    if count is None:
        return -1
    storage = t.untyped_storage()
    return int(count(storage._cdata))


class _Ring:
    """Float buffers reused batch after batch, each only once nothing else holds it.

    A buffer counts as free when its memory is shared by no tensor but the ring's own, so a
    batch the training step, the out-of-memory probe or a caller's list still holds is never
    written over; a fresh buffer is made instead. Reuse saves the page faults of a new
    12 MB tensor per batch of 256 images of 64 x 64: the cast and normalisation took 1.3 ms
    into a reused buffer against 1.7-1.9 ms into a fresh one on one thread of an idle
    2-core AMD EPYC (0.6 against 3-4.3 ms on two threads).
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.buffers: list[tuple[torch.Tensor, int]] = []

    def take(self, numel: int) -> torch.Tensor:
        too_small = None
        for slot, (buffer, idle) in enumerate(self.buffers):
            if idle < 0 or _storage_refs(buffer) != idle:
                continue  # held outside the ring (or torch cannot tell): never written
            if buffer.numel() >= numel:
                return buffer[:numel]
            too_small = slot
        buffer = torch.empty(numel)
        entry = (buffer, _storage_refs(buffer))
        if too_small is not None:
            self.buffers[too_small] = entry
        elif len(self.buffers) < self.size:
            self.buffers.append(entry)
        return buffer


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
        self._layout = self._pixel_layout(images.shape[1:], needed)
        self._ring = _Ring(RING)
        self._scratch: torch.Tensor | None = None
        self.pixels: _Pixels | None = None
        if resident:
            self.pixels = self._resident_pixels()
            self.labels_dev = self.labels_all.to(device)

    def _pixel_layout(self, image_shape: tuple[int, ...], needed: int) -> tuple[int, bool]:
        """Padding and mirroring of the uint8 images that make this augmentation's flips and
        shifts one gather (see _Pixels): on a CPU, and only where the copy fits in memory."""
        layout = getattr(self.augmenter, "map_layout", None)
        if self.device.type != "cpu" or layout is None or len(image_shape) != 3:
            return 0, False  # a GPU indexes every pixel in one kernel, without the copy
        h, w, _ = image_shape
        pad, mirror = layout(h, w)
        if pad >= w:  # a reflection of a reflection: not one run of a stored row
            return 0, False
        if not (pad or mirror):
            return 0, False
        grown = (2 if mirror else 1) * (w + 2 * pad) / w  # 2.25x the images at 64 px, pad 4
        if self.resident and needed * grown > RESIDENT_SHARE * free_bytes(self.device):
            return 0, False  # flips and shifts by indexing every pixel: slower, no copy
        return pad, mirror

    def _resident_pixels(self) -> _Pixels:
        pad, mirror = self._layout
        if not (pad or mirror):
            host = torch.from_numpy(np.ascontiguousarray(self.images[self.indices]))
            return _Pixels.plain(host.to(self.device))
        n, h, w, c = len(self.indices), *self.images.shape[1:]
        store = torch.empty((n, h, 2 if mirror else 1, w + 2 * pad, c), dtype=torch.uint8)
        for start in range(0, n, 1024):  # chunks: no second full copy of the images at once
            rows = np.ascontiguousarray(self.images[self.indices[start : start + 1024]])
            _pad_into(store[start : start + 1024], torch.from_numpy(rows), pad, mirror)
        return _Pixels(store, pad, mirror)

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

    def _finish(
        self, pixels: _Pixels, image: torch.Tensor, labels: torch.Tensor, batch: int
    ) -> Batch:
        """Images ``image`` of ``pixels`` to a normalised, augmented float batch (NCHW view of
        channels-last memory unless asked otherwise).

        The leading flips and shifts of a BatchAugmenter happen in the uint8 gather; the rest
        of it (if any) runs on the float 0..1 batch. The normalisation runs on the flat NHWC
        memory against per-position rows of scale and shift: broadcasting a (1, C, 1, 1)
        tensor over channels-last memory makes an inner loop of length C (3), which cost more
        than the rest of the loader together.
        """
        n, h, w, c = image.shape[0], pixels.h, pixels.w, pixels.c
        scale_row, shift_row = self._rows(h, w, c)
        augmenter, targets = self.augmenter, labels
        pixel_map, rest = None, augmenter is not None
        if augmenter is not None:
            reseed = getattr(augmenter, "reseed", None)
            if reseed is not None:
                reseed(self._batch_seed(batch))
            if hasattr(augmenter, "pixel_map"):
                pixel_map, rest = augmenter.pixel_map(n, h, w), augmenter.has_rest
        cpu = self.device.type == "cpu"
        with _one_thread(cpu):
            u8 = pixels.gather(image, pixel_map, self._scratch_for(n * h * w * c))
            if rest:
                x = u8.permute(0, 3, 1, 2).float().div_(255.0)
        if rest:
            assert augmenter is not None
            # A BatchAugmenter's remaining steps, or any other callable augmenter whole.
            run = getattr(augmenter, "rest", augmenter)
            x, targets = run(x, labels, self.num_classes)
            flat = x.permute(0, 2, 3, 1).reshape(n, -1)  # a view when x is channels-last
            with _one_thread(cpu):
                out = self._float_for(n * h * w * c).view(n, -1)
                x = torch.addcmul(shift_row, flat, scale_row, out=out)
        elif cpu:
            # Cast into a reused buffer, then normalise it in place: two vectorised passes
            # over memory already mapped, faster than one mixed uint8-float addcmul into a
            # fresh tensor (see _Ring).
            with _one_thread(cpu):
                x = self._float_for(n * h * w * c).view(n, -1)
                x.copy_(u8.view(n, -1))
                torch.addcmul(shift_row, x, self._rows_255(h, w, c), out=x)
        else:  # one mixed-dtype kernel on a GPU; its caching allocator reuses the memory
            x = torch.addcmul(shift_row, u8.reshape(n, -1), self._rows_255(h, w, c))
        x = x.view(n, h, w, c).permute(0, 3, 1, 2)
        memory_format = torch.channels_last if self.channels_last else torch.contiguous_format
        return Batch(x.contiguous(memory_format=memory_format), targets, labels)

    def _float_for(self, numel: int) -> torch.Tensor:
        if self.device.type == "cpu":
            return self._ring.take(numel)
        return torch.empty(numel, device=self.device)

    def _scratch_for(self, numel: int) -> torch.Tensor | None:
        """The uint8 gather's buffer (CPU): used up within _finish, so one is enough."""
        if self.device.type != "cpu":
            return None
        if self._scratch is None or self._scratch.numel() < numel:
            self._scratch = torch.empty(numel, dtype=torch.uint8)
        return self._scratch[:numel]

    def _resident_batches(self, order: torch.Tensor) -> Iterator[Batch]:
        assert self.pixels is not None
        order = order.to(self.device)
        for batch, start in self._starts(len(order)):
            index = self._my_share(order[start : start + self.batch_size])
            # index_select, not [index]: the same gather without an OpenMP region, which
            # stalls when another process holds a core.
            yield self._finish(self.pixels, index, self.labels_dev.index_select(0, index), batch)

    def _starts(self, n: int) -> list[tuple[int, int]]:
        """(batch number, first position) of each batch this pass yields."""
        starts = list(enumerate(range(0, n, self.batch_size)))
        return starts[self.start_batch :]

    def _streamed_batches(self, order: torch.Tensor) -> Iterator[Batch]:
        batches: queue.Queue[Any] = queue.Queue(maxsize=PREFETCH)
        stop = threading.Event()
        pin = self.device.type == "cuda"
        pad, mirror = self._layout
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
                    elif pad or mirror:  # laid out for the one-gather flips and shifts
                        u8 = _Pixels.padded(u8, pad, mirror).store
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
                pixels = _Pixels(u8, pad, mirror) if u8.dim() == 5 else _Pixels.plain(u8)
                image = torch.arange(len(u8), device=self.device)
                yield self._finish(pixels, image, labels, batch)
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
