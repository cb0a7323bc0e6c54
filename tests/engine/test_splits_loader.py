"""Splits keep classes and duplicate groups; the loader gives the same batches however it runs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cnn_lab.engine.data.augment import BatchAugmenter
from cnn_lab.engine.data.loader import BatchLoader, channel_stats, sampler_weights
from cnn_lab.engine.data.splits import k_folds, stratified_split
from cnn_lab.engine.specs.dataset import RESIZE_POLICIES


@settings(max_examples=60, deadline=None)
@given(
    counts=st.lists(st.integers(2, 40), min_size=2, max_size=6),
    val=st.floats(0.1, 0.4),
    test=st.sampled_from([0.0, 0.1, 0.2]),
    seed=st.integers(0, 1000),
    dup_every=st.integers(2, 7),
)
def test_stratified_split_properties(
    counts: list[int], val: float, test: float, seed: int, dup_every: int
) -> None:
    labels = np.repeat(np.arange(len(counts)), counts)
    groups = np.arange(len(labels)) // dup_every  # runs of copies, some spanning classes
    splits = stratified_split(labels, groups, val, test, seed)
    everything = np.concatenate([splits.train, splits.val, splits.test])
    assert sorted(everything.tolist()) == list(range(len(labels)))  # a partition
    for part in (splits.train, splits.val, splits.test):
        assert np.all(np.diff(part) > 0)
    side = np.empty(len(labels), dtype=np.int64)
    for number, part in enumerate((splits.train, splits.val, splits.test)):
        side[part] = number
    for g in np.unique(groups):
        assert len(set(side[groups == g].tolist())) == 1  # copies never straddle splits
    again = stratified_split(labels, groups, val, test, seed)
    assert np.array_equal(again.val, splits.val)


def test_every_class_trains_and_validates_without_duplicates() -> None:
    labels = np.repeat(np.arange(4), [2, 5, 50, 300])
    splits = stratified_split(labels, None, 0.2, 0.1, seed=3)
    for c in range(4):
        assert np.any(labels[splits.train] == c) and np.any(labels[splits.val] == c)
    big = labels == 3
    assert abs(np.sum(labels[splits.val] == 3) - 0.2 * big.sum()) <= 1
    assert abs(np.sum(labels[splits.test] == 3) - 0.1 * big.sum()) <= 1


def test_k_folds_cover_every_image_once_and_stay_stratified() -> None:
    labels = np.repeat(np.arange(3), [30, 60, 90])
    groups = np.arange(len(labels)) // 3
    folds = k_folds(labels, groups, 5, seed=0)
    seen = np.concatenate([val for _, val in folds])
    assert sorted(seen.tolist()) == list(range(len(labels)))
    for train, val in folds:
        assert len(np.intersect1d(train, val)) == 0
        assert len(train) + len(val) == len(labels)
        shares = np.bincount(labels[val], minlength=3) / len(val)
        assert np.allclose(shares, [1 / 6, 2 / 6, 3 / 6], atol=0.05)
        for g in np.unique(groups[val]):
            assert not np.any(groups[train] == g)
    with pytest.raises(ValueError):
        k_folds(labels, None, 1, seed=0)


def _images(n: int = 50, size: int = 8) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8), np.arange(n) % 5


def _loader(images: np.ndarray, labels: np.ndarray, **kw: object) -> BatchLoader:
    mean, std = channel_stats(images, np.arange(len(images)))
    args: dict = {
        "device": torch.device("cpu"),
        "mean": mean,
        "std": std,
        "batch_size": 16,
        "shuffle": True,
        "num_classes": 5,
        "seed": 7,
    }
    args.update(kw)
    return BatchLoader(images, labels, np.arange(len(images)), **args)


def test_resident_and_streamed_loading_give_the_same_images(tmp_path) -> None:  # type: ignore[no-untyped-def]
    images, labels = _images()
    np.save(tmp_path / "images.npy", images)
    mapped = np.load(tmp_path / "images.npy", mmap_mode="r")
    resident = list(_loader(images, labels, resident=True))
    streamed = list(_loader(mapped, labels, resident=False))
    assert [len(b.labels) for b in resident] == [16, 16, 16, 2]
    # Streamed batches are sorted within the batch for sequential reads; compare as sets.
    for a, b in zip(resident, streamed, strict=True):
        key_a = sorted(zip(a.labels.tolist(), a.x.flatten(1).sum(1).tolist(), strict=True))
        key_b = sorted(zip(b.labels.tolist(), b.x.flatten(1).sum(1).tolist(), strict=True))
        assert np.allclose(np.array(key_a), np.array(key_b), atol=1e-3)


def test_batches_are_normalised_channels_last_float() -> None:
    images, labels = _images(200)
    batch = next(iter(_loader(images, labels, batch_size=200, shuffle=False)))
    assert batch.x.dtype == torch.float32 and batch.x.shape == (200, 3, 8, 8)
    assert batch.x.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(batch.x.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-4)
    assert torch.allclose(batch.x.std(dim=(0, 2, 3)), torch.ones(3), atol=1e-2)
    assert torch.equal(batch.labels, torch.from_numpy(labels[:200]))
    plain = next(iter(_loader(images, labels, channels_last=False, shuffle=False)))
    assert plain.x.is_contiguous()


def test_a_stopped_stream_ends_its_prefetch_thread(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import threading

    images, labels = _images(400)
    loader = _loader(images, labels, resident=False, batch_size=4)
    for number, _ in enumerate(loader):
        if number == 2:
            break
    assert not any(t.name == "cnn-lab-prefetch" and t.is_alive() for t in threading.enumerate())


def test_weighted_sampler_draws_rare_classes_as_often() -> None:
    labels = np.array([0] * 900 + [1] * 100)
    images = np.zeros((1000, 2, 2, 3), dtype=np.uint8)
    loader = _loader(images, labels, num_classes=2, sample_weights=sampler_weights(labels, 2))
    drawn = torch.cat([b.labels for b in loader])
    assert len(drawn) == 1000
    assert 0.4 < drawn.float().mean().item() < 0.6


def test_augmentation_and_mixing_reach_the_batches() -> None:
    images, labels = _images()
    augmenter = BatchAugmenter([("hflip", 1.0)], mixup_alpha=0.4, seed=1)
    batch = next(iter(_loader(images, labels, augmenter=augmenter)))
    assert batch.targets.dtype == torch.float32 and batch.targets.shape == (16, 5)
    assert torch.allclose(batch.targets.sum(1), torch.ones(16))
    assert batch.labels.dtype == torch.int64


def test_spec_resize_policies_match_the_registry() -> None:
    from cnn_lab.engine.data.resize import resize_policy_names

    assert set(resize_policy_names()) == set(RESIZE_POLICIES)


def test_cross_validation_folds_are_disjoint_and_cover_the_training_data() -> None:
    """The issue's check: k runs validate on disjoint folds whose union is the training set."""
    from cnn_lab.engine.data.prepare import prepare_dataset
    from cnn_lab.engine.specs import DatasetSpec

    base = DatasetSpec(source="sample:shapes", limit=300, test_fraction=0.1, folds=4)
    prepared = prepare_dataset(base)
    splits = [prepared.split(base.model_copy(update={"fold": i})) for i in range(4)]
    held_out = splits[0].test
    assert len(held_out) > 0
    assert all(np.array_equal(s.test, held_out) for s in splits)  # one test set for all folds
    vals = [s.val for s in splits]
    for i, a in enumerate(vals):
        for b in vals[i + 1 :]:
            assert not np.intersect1d(a, b).size
    everything_but_test = np.setdiff1d(np.arange(len(prepared)), held_out)
    assert np.array_equal(np.sort(np.concatenate(vals)), everything_but_test)
    for s in splits:  # each run trains on the other folds, never on its own or the test set
        assert np.array_equal(np.sort(np.concatenate([s.train, s.val])), everything_but_test)
        assert all(np.bincount(prepared.labels[s.val], minlength=10) > 0)  # stratified


def test_a_fold_that_does_not_exist_is_refused_with_a_sentence() -> None:
    from pydantic import ValidationError

    from cnn_lab.engine.specs import DatasetSpec

    with pytest.raises(ValidationError, match="fold 4 does not exist with 4 folds"):
        DatasetSpec(folds=4, fold=4)
    with pytest.raises(ValidationError, match="set folds for cross-validation"):
        DatasetSpec(fold=1)
