"""The built-in sample and ImageSet: determinism, shapes, splits, and an honest difficulty check.

The difficulty tests are the reason ``sample:shapes`` exists: if a linear model on raw pixels
solved it, comparing architectures in the app would show nothing. They train on the CPU in a
few seconds, on fixed seeds.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cnn_lab.engine.data.imageset import ImageSet

if TYPE_CHECKING:  # torch stays a local import at run time
    from torch import Tensor
from cnn_lab.engine.data.samples import (
    load_sample,
    make_shapes,
    sample_description,
    sample_names,
)
from cnn_lab.engine.errors import UserError


@pytest.fixture(scope="module")
def shapes() -> ImageSet:
    return load_sample("shapes", seed=0)


def _tiny_set(labels: list[int], n_classes: int) -> ImageSet:
    images = np.zeros((len(labels), 2, 2, 3), dtype=np.uint8)
    images[:, 0, 0, 0] = np.arange(len(labels)) % 256
    classes = tuple(f"c{i}" for i in range(n_classes))
    return ImageSet(images, np.array(labels, dtype=np.int64), classes, "tiny")


# ------------------------------------------------------------------------------- registry


def test_shapes_is_registered_with_a_description() -> None:
    assert "shapes" in sample_names()
    assert "6000" in sample_description("shapes")


def test_unknown_sample_names_the_known_ones() -> None:
    with pytest.raises(UserError) as caught:
        load_sample("nope")
    message = str(caught.value)
    assert "no built-in sample called 'nope'" in message
    assert "shapes" in message
    with pytest.raises(UserError):
        sample_description("nope")


def test_samples_module_does_not_import_torch() -> None:
    code = (
        "import sys; import cnn_lab.engine.data.samples as s; s.make_shapes(0, per_class=2); "
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# ------------------------------------------------------------------------------- generator


def test_same_seed_gives_identical_bytes_and_another_seed_differs() -> None:
    a, b, c = (make_shapes(seed, per_class=40) for seed in (3, 3, 4))
    assert a.images.tobytes() == b.images.tobytes()
    assert a.labels.tobytes() == b.labels.tobytes()
    assert a.images.tobytes() != c.images.tobytes()


def test_default_shapes_layout(shapes: ImageSet) -> None:
    assert shapes.images.shape == (6000, 32, 32, 3)
    assert shapes.images.dtype == np.uint8
    assert shapes.labels.dtype == np.int64
    assert len(shapes) == 6000
    assert len(shapes.classes) == 10
    assert shapes.class_counts() == dict.fromkeys(shapes.classes, 600)
    assert shapes.name == "sample:shapes"
    # shuffled, so any prefix (a quick look, a limit) sees every class
    assert len(np.unique(shapes.labels[:100])) == 10


def test_colour_carries_no_class_information(shapes: ImageSet) -> None:
    """Mean image colour per class should be alike: colour alone must not give the label away."""
    means = np.stack([shapes.images[shapes.labels == c].mean(axis=(0, 1, 2)) for c in range(10)])
    assert np.ptp(means, axis=0).max() < 12.0


def test_images_are_not_flat(shapes: ImageSet) -> None:
    spread = shapes.images.reshape(len(shapes), -1).astype(np.float32).std(axis=1)
    assert spread.min() > 10.0  # every image shows its shape against the background


# ------------------------------------------------------------------------------- ImageSet


def test_imageset_rejects_bad_arrays() -> None:
    good = np.zeros((2, 4, 4, 3), dtype=np.uint8)
    labels = np.array([0, 1], dtype=np.int64)
    with pytest.raises(ValueError):
        ImageSet(good.astype(np.float32), labels, ("a", "b"), "x")
    with pytest.raises(ValueError):
        ImageSet(good[..., :1], labels, ("a", "b"), "x")
    with pytest.raises(ValueError):
        ImageSet(good, labels.astype(np.int32), ("a", "b"), "x")
    with pytest.raises(ValueError):
        ImageSet(good, labels[:1], ("a", "b"), "x")
    with pytest.raises(ValueError):
        ImageSet(good, labels, ("a",), "x")
    with pytest.raises(ValueError):
        ImageSet(good, labels, ("a", "a"), "x")


def test_subset_copies_the_chosen_images() -> None:
    data = _tiny_set([0, 1, 1, 0], 2)
    part = data.subset([3, 1])
    assert part.labels.tolist() == [0, 1]
    assert part.images[:, 0, 0, 0].tolist() == [3, 1]
    assert part.classes == data.classes
    assert len(data.subset(data.labels == 1)) == 2


@settings(max_examples=60, deadline=None)
@given(
    labels=st.lists(st.integers(0, 4), min_size=1, max_size=120),
    val_fraction=st.floats(0.05, 0.95),
    seed=st.integers(0, 2**32 - 1),
)
def test_stratified_split_properties(labels: list[int], val_fraction: float, seed: int) -> None:
    data = _tiny_set(labels, 5)
    train, val = data.stratified_split(val_fraction, seed)
    again = data.stratified_split(val_fraction, seed)
    assert np.array_equal(train, again[0]) and np.array_equal(val, again[1])
    assert train.dtype == val.dtype == np.int64
    assert np.intersect1d(train, val).size == 0
    assert np.array_equal(np.sort(np.concatenate([train, val])), np.arange(len(labels)))
    counts = np.bincount(data.labels, minlength=5)
    val_counts = np.bincount(data.labels[val], minlength=5)
    for n, n_val in zip(counts, val_counts, strict=True):
        if n >= 2:
            assert 1 <= n_val <= n - 1  # both sides see every class that can be split
        assert abs(n_val - val_fraction * n) < 1.0  # proportions kept to within one image


def test_stratified_split_depends_on_seed(shapes: ImageSet) -> None:
    a, _ = shapes.stratified_split(0.2, seed=1)
    b, _ = shapes.stratified_split(0.2, seed=2)
    assert not np.array_equal(a, b)
    with pytest.raises(ValueError):
        shapes.stratified_split(1.0, seed=0)


@settings(max_examples=60, deadline=None)
@given(
    labels=st.lists(st.integers(0, 3), min_size=1, max_size=80),
    limit=st.integers(1, 100),
    seed=st.integers(0, 1000),
)
def test_stratified_limit_properties(labels: list[int], limit: int, seed: int) -> None:
    data = _tiny_set(labels, 4)
    small = data.stratified_limit(limit, seed)
    assert len(small) == min(limit, len(labels))
    counts = np.bincount(data.labels, minlength=4)
    kept = np.bincount(small.labels, minlength=4)
    assert (kept <= counts).all()
    present = int((counts > 0).sum())
    if limit >= present:
        assert ((kept > 0) == (counts > 0)).all()  # no class disappears
    else:
        assert (np.abs(kept - counts * limit / len(labels)) < 1.0).all()


def test_stratified_limit_on_shapes_is_balanced(shapes: ImageSet) -> None:
    small = shapes.stratified_limit(250, seed=0)
    assert set(small.class_counts().values()) == {25}
    assert small.images.tobytes() == shapes.stratified_limit(250, seed=0).images.tobytes()


# ------------------------------------------------------------------------------- difficulty


@contextmanager
def _one_torch_thread() -> Iterator[None]:
    """Train on one thread: with other work on a small machine, OpenMP threads waiting on each
    other at every barrier made a 3 s fit take over a minute; one thread stays predictable."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _tensors(data: ImageSet):  # -> tuple[torch.Tensor, ...]; torch stays a local import
    import torch

    x = torch.from_numpy(data.images).permute(0, 3, 1, 2).float().div(255)
    mean, std = x[:3000].mean((0, 2, 3), keepdim=True), x[:3000].std((0, 2, 3), keepdim=True)
    x = ((x - mean) / std).contiguous()
    y = torch.from_numpy(data.labels)
    return x[:3000], y[:3000], x[3000:4000], y[3000:4000]


def _linear_val_accuracy(shapes: ImageSet) -> float:
    """Full-batch Adam on raw pixels; weight decay gives the linear model its best chance."""
    import torch

    torch.manual_seed(0)
    x_train, y_train, x_val, y_val = _tensors(shapes)
    x_train, x_val = x_train.flatten(1), x_val.flatten(1)
    model = torch.nn.Linear(x_train.shape[1], len(shapes.classes))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-2)
    for _ in range(150):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x_train), y_train).backward()
        opt.step()
    with torch.no_grad():
        return (model(x_val).argmax(1) == y_val).float().mean().item()


def _cnn_val_accuracy(shapes: ImageSet, epochs: int = 4) -> float:
    return tiny_cnn_val_accuracy(*_tensors(shapes), classes=len(shapes.classes), epochs=epochs)


def tiny_cnn_val_accuracy(
    x_train: Tensor, y_train: Tensor, x_val: Tensor, y_val: Tensor, *, classes: int, epochs: int
) -> float:
    """Three conv blocks, global max pool, one-cycle Adam: a minute's model, seconds on a CPU.

    Takes normalised N×C×H×W tensors (any channel count); also judges the other samples
    (test_more_samples.py).
    """
    import torch
    from torch import nn

    torch.manual_seed(0)

    def block(cin: int, cout: int) -> nn.Module:
        return nn.Sequential(
            nn.Conv2d(cin, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )

    model = nn.Sequential(
        block(x_train.shape[1], 16), block(16, 32), block(32, 64),
        nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(64, classes),
    )  # fmt: skip
    batch = 32
    steps = epochs * -(-len(x_train) // batch)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    schedule = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-2, total_steps=steps)
    model.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(x_train)).split(batch):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x_train[idx]), y_train[idx]).backward()
            opt.step()
            schedule.step()
    model.eval()
    with torch.no_grad():
        return (model(x_val).argmax(1) == y_val).float().mean().item()


@pytest.fixture(scope="module")
def linear_accuracy(shapes: ImageSet) -> float:
    with _one_torch_thread():
        return _linear_val_accuracy(shapes)


def test_linear_model_on_raw_pixels_does_not_solve_shapes(linear_accuracy: float) -> None:
    print(f"linear val accuracy: {linear_accuracy:.3f}")
    assert linear_accuracy < 0.6


def test_small_cnn_learns_shapes_clearly_better(shapes: ImageSet, linear_accuracy: float) -> None:
    with _one_torch_thread():
        cnn_accuracy = _cnn_val_accuracy(shapes)
    print(f"cnn val accuracy: {cnn_accuracy:.3f} (linear {linear_accuracy:.3f})")
    assert cnn_accuracy > 0.6
    assert cnn_accuracy > linear_accuracy + 0.15
