"""The loader's fused uint8 path gives exactly the batches of the straightforward recipe.

The recipe: gather the images, flip and shift them (the augmentation kernels, on float),
cast, normalise. The loader instead flips and shifts inside the uint8 gather and reuses its
float buffers; both are only faster ways to the same numbers. Each batch is compared as the
uint8 images it was made from (exactly) and as floats (to a rounding error: the two
normalise on different thread counts, whose vectorised kernels may round the last bit apart).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from cnn_lab.engine.data import loader as loader_module
from cnn_lab.engine.data.augment import BatchAugmenter
from cnn_lab.engine.data.loader import RING, BatchLoader, channel_stats

FLIP_AND_CROP = [("hflip", 1.0), ("translate", 0.5)]
STEP_LISTS = [
    FLIP_AND_CROP,
    [("translate", 1.0), ("vflip", 1.0), ("hflip", 0.6)],
    [("vflip", 1.0)],
    [("translate", 1.0), ("translate", 1.0)],  # reflections of reflections: not one run
]


def _images(n: int = 70, h: int = 24, w: int = 32) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (n, h, w, 3), dtype=np.uint8), np.arange(n) % 4


def _loader(images: np.ndarray, labels: np.ndarray, steps, seed: int, **kw) -> BatchLoader:  # type: ignore[no-untyped-def]
    mean, std = channel_stats(images, np.arange(len(images)))
    augmenter = BatchAugmenter(steps, seed=seed, **kw.pop("mixing", {}))
    args = {
        "device": torch.device("cpu"),
        "mean": mean,
        "std": std,
        "batch_size": 16,
        "shuffle": True,
        "num_classes": 4,
        "augmenter": augmenter,
        "seed": seed,
    }
    return BatchLoader(images, labels, np.arange(len(images)), **{**args, **kw})


def _normalisation(loader: BatchLoader, h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    scale = loader.scale.view(3).repeat(h * w)
    shift = loader.shift.view(3).repeat(h * w)
    return scale, shift


def _reference(
    loader: BatchLoader, images: np.ndarray, steps, seed: int, epoch: int, mixing: dict
) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """(uint8 NHWC images, float batch, targets) of every batch of ``epoch``, the plain way."""
    n_images, h, w, _ = images.shape
    loader.set_epoch(epoch)
    order = loader._order().numpy()
    loader.set_epoch(epoch)  # the loader draws the same order again
    scale, shift = _normalisation(loader, h, w)
    augmenter = BatchAugmenter(steps, seed=seed, **mixing)
    out = []
    for batch, start in enumerate(range(0, n_images, loader.batch_size)):
        rows = order[start : start + loader.batch_size][loader.rank :: loader.world]
        if not loader.resident:
            rows = np.sort(rows)  # the streamed path reads rows in file order
        u8 = torch.from_numpy(images[rows])  # gather
        labels = torch.from_numpy(np.asarray(loader.labels_all)[rows])
        augmenter.reseed(loader._batch_seed(batch))
        # flip, then crop (the float kernels, on 0..255 values: indexing only), as uint8
        x = u8.permute(0, 3, 1, 2).float()
        if augmenter.mixes_targets or any(n == "color_jitter" for n, _ in steps):
            x, targets = augmenter(x / 255.0, labels, 4)  # as the loader did before
            flat = x.permute(0, 2, 3, 1).reshape(len(rows), -1)
            out.append((torch.empty(0), torch.addcmul(shift, flat, scale), targets))
            continue
        x, targets = augmenter(x, labels, 4)
        mapped = x.permute(0, 2, 3, 1).to(torch.uint8)
        # cast, normalise
        flat = mapped.reshape(len(rows), -1).float()
        out.append((mapped, torch.addcmul(shift, flat, scale / 255.0), targets))
    return out


def _as_uint8(loader: BatchLoader, x: torch.Tensor) -> torch.Tensor:
    """The uint8 images a normalised batch was made from (exact: errors are << 0.5)."""
    n, _, h, w = x.shape
    scale, shift = _normalisation(loader, h, w)
    flat = x.permute(0, 2, 3, 1).reshape(n, -1)
    return ((flat - shift) / scale * 255.0).round().to(torch.uint8).view(n, h, w, 3)


def _check(loader: BatchLoader, images: np.ndarray, steps, seed: int, mixing: dict) -> None:  # type: ignore[no-untyped-def]
    for epoch in (0, 3):
        expected = _reference(loader, images, steps, seed, epoch, mixing)
        got = list(loader)  # all held at once: none may be overwritten by a later one
        assert len(got) == len(expected)
        for batch, (u8, x, targets) in zip(got, expected, strict=True):
            assert batch.x.is_contiguous(memory_format=torch.channels_last)
            if u8.numel():  # the images themselves, exactly
                assert torch.equal(_as_uint8(loader, batch.x), u8)
            flat = batch.x.permute(0, 2, 3, 1).reshape(len(batch.x), -1)
            assert torch.allclose(flat, x, atol=1e-5, rtol=0)
            assert torch.equal(batch.targets, targets)


@pytest.mark.parametrize("steps", STEP_LISTS, ids=lambda s: "+".join(n for n, _ in s))
@pytest.mark.parametrize("seed", [0, 5, 11])
def test_resident_batches_equal_gather_flip_crop_cast_normalise(steps, seed: int) -> None:  # type: ignore[no-untyped-def]
    images, labels = _images()
    loader = _loader(images, labels, steps, seed, resident=True)
    _check(loader, images, steps, seed, {})


@pytest.mark.parametrize("rank", [0, 1])
def test_a_data_parallel_share_is_augmented_as_its_own_batch(rank: int) -> None:
    images, labels = _images()
    loader = _loader(images, labels, FLIP_AND_CROP, 4, resident=True, shard=(rank, 2))
    _check(loader, images, FLIP_AND_CROP, 4, {})


@pytest.mark.parametrize("steps", STEP_LISTS[:2], ids=lambda s: "+".join(n for n, _ in s))
@pytest.mark.parametrize("seed", [0, 7])
def test_streamed_batches_equal_gather_flip_crop_cast_normalise(
    steps,  # type: ignore[no-untyped-def]
    seed: int,
    tmp_path: Path,
) -> None:
    images, labels = _images()
    np.save(tmp_path / "images.npy", images)
    mapped = np.load(tmp_path / "images.npy", mmap_mode="r")
    loader = _loader(mapped, labels, steps, seed, resident=False)
    _check(loader, images, steps, seed, {})


def test_the_fast_gather_is_used_and_the_fallback_agrees(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    images, labels = _images()
    found: list[bool] = []
    windows = loader_module._Pixels._windows

    def spy(self, cols):  # type: ignore[no-untyped-def]
        result = windows(self, cols)
        found.append(result is not None)
        return result

    monkeypatch.setattr(loader_module._Pixels, "_windows", spy)
    fast = _loader(images, labels, FLIP_AND_CROP, 3, resident=True)
    assert fast.pixels is not None
    assert (fast.pixels.pad, fast.pixels.mirror) == (2, True)  # 0.5 x 12.5% of 32 px
    np.save(tmp_path / "images.npy", images)
    mapped = np.load(tmp_path / "images.npy", mmap_mode="r")
    streamed = _loader(mapped, labels, FLIP_AND_CROP, 3, resident=False)
    for loader in (fast, streamed):
        found.clear()
        assert len(list(loader)) == 5
        assert found == [True] * 5  # every batch one gather of whole rows
    # Without the memory for the padded, mirrored copy: every pixel indexed, same batches.
    monkeypatch.setattr(loader_module, "free_bytes", lambda device: 1000)
    slow = _loader(images, labels, FLIP_AND_CROP, 3, resident=True)
    assert slow.pixels is not None and (slow.pixels.pad, slow.pixels.mirror) == (0, False)
    _check(slow, images, FLIP_AND_CROP, 3, {})
    fast.set_epoch(1)
    slow.set_epoch(1)
    for a, b in zip(fast, slow, strict=True):
        assert torch.equal(a.x, b.x)


@pytest.mark.parametrize(
    "steps", [[*FLIP_AND_CROP, ("color_jitter", 0.5)], FLIP_AND_CROP], ids=["jitter", "mixup"]
)
def test_steps_after_the_flips_and_mixing_still_run_on_float(steps) -> None:  # type: ignore[no-untyped-def]
    images, labels = _images()
    mixing = {"mixup_alpha": 0.4, "cutmix_alpha": 1.0}
    loader = _loader(images, labels, steps, 2, resident=True, mixing=mixing)
    _check(loader, images, steps, 2, mixing)


def test_a_held_batch_is_never_written_over_and_free_buffers_are_reused() -> None:
    images, labels = _images(200)
    loader = _loader(images, labels, FLIP_AND_CROP, 1, resident=True)
    previous, copy, view, view_copy = None, None, None, None
    pointers = set()
    for number, batch in enumerate(loader):
        if previous is not None:  # the training step still holds the last batch
            assert torch.equal(previous.x, copy)
        if view is not None:  # and a view of a batch keeps its memory too
            assert torch.equal(view, view_copy)
        if number == 3:
            view = batch.x[:, :1]
            view_copy = view.clone()
        previous, copy = batch, batch.x.clone()
        pointers.add(batch.x.data_ptr())
    if hasattr(torch._C, "_storage_Use_Count"):
        assert len(pointers) <= RING + 1  # released buffers came back; the viewed one did not


def test_the_loader_leaves_the_thread_count_as_it_found_it() -> None:
    images, labels = _images()
    threads = torch.get_num_threads()
    for _ in _loader(images, labels, FLIP_AND_CROP, 0, resident=True):
        assert torch.get_num_threads() == threads


def test_plain_batches_without_augmentation_are_the_images_normalised() -> None:
    images, labels = _images()
    loader = _loader(images, labels, [], 0, resident=True, augmenter=None, shuffle=False)
    batches = list(loader)
    got = torch.cat([_as_uint8(loader, b.x) for b in batches])
    assert torch.equal(got, torch.from_numpy(images))
