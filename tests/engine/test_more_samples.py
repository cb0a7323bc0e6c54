"""``sample:digits`` and ``sample:textures``: layout, determinism, fairness and learnability.

The learnability checks are the point of these samples: a nearest-class-mean model on raw
pixels (a template match) must stay well below what a tiny CNN reaches after one or two epochs
on a subset, or the sample would teach nothing about convolutions. Both run on one CPU thread
in a few seconds, on fixed seeds.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import numpy as np
import pytest

from cnn_lab.engine.data.imageset import ImageSet
from cnn_lab.engine.data.sample_digits import make_digits
from cnn_lab.engine.data.sample_textures import make_textures
from cnn_lab.engine.data.samples import load_sample, sample_description, sample_names
from tests.engine.test_samples import tiny_cnn_val_accuracy

# name: (images, classes, side, description must mention)
LAYOUT = {
    "digits": (5000, 10, 28, "5000 grayscale 28×28"),
    "textures": (3200, 8, 64, "3200 RGB 64×64"),
}


@pytest.fixture(scope="module")
def digits() -> ImageSet:
    return load_sample("digits", seed=0)


@pytest.fixture(scope="module")
def textures() -> ImageSet:
    return load_sample("textures", seed=0)


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """One thread: on a small shared machine, OpenMP threads waiting on each other at every
    barrier make a few-second fit take far longer; one thread stays predictable."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _sample(request: pytest.FixtureRequest, name: str) -> ImageSet:
    return request.getfixturevalue(name)


# ------------------------------------------------------------------------------- layout


def test_every_sample_is_registered() -> None:
    assert sample_names() == ["digits", "shapes", "textures"]


@pytest.mark.parametrize("name", sorted(LAYOUT))
def test_layout(request: pytest.FixtureRequest, name: str) -> None:
    count, n_classes, side, described = LAYOUT[name]
    data = _sample(request, name)
    assert described in sample_description(name)
    assert data.name == f"sample:{name}"
    assert data.images.shape == (count, side, side, 3)  # ImageSet holds RGB
    assert data.images.dtype == np.uint8 and data.labels.dtype == np.int64
    assert len(data.classes) == n_classes == len(set(data.classes))
    assert data.class_counts() == dict.fromkeys(data.classes, count // n_classes)
    # shuffled, so any prefix (a quick look, a limit) sees every class
    assert len(np.unique(data.labels[:100])) == n_classes
    spread = data.images.reshape(count, -1, 3).std(axis=1, dtype=np.float32).max(axis=1)
    assert spread.min() > 10.0  # every image shows something against its background


def test_digits_are_grey_with_light_ink_on_dark_paper(digits: ImageSet) -> None:
    assert digits.classes == tuple("0123456789")
    grey = digits.images[..., 0]
    assert np.array_equal(grey, digits.images[..., 1])
    assert np.array_equal(grey, digits.images[..., 2])
    # the centre holds ink more often than the corners, where there is mostly paper
    centre, corner = grey[:, 10:18, 10:18].mean(), grey[:, :4, :4].mean()
    assert centre > corner + 20


@pytest.mark.parametrize("make", [make_digits, make_textures])
def test_same_seed_gives_identical_bytes_and_another_seed_differs(make) -> None:
    a, b, c = (make(seed, per_class=8) for seed in (3, 3, 4))
    assert a.images.tobytes() == b.images.tobytes()
    assert a.labels.tobytes() == b.labels.tobytes()
    assert a.images.tobytes() != c.images.tobytes()


@pytest.mark.parametrize("make", [make_digits, make_textures])
def test_bad_sizes_are_refused(make) -> None:
    with pytest.raises(ValueError):
        make(0, per_class=0)
    with pytest.raises(ValueError):
        make(0, size=8)


def test_new_sample_modules_do_not_import_torch() -> None:
    code = (
        "import sys; from cnn_lab.engine.data.samples import load_sample; "
        "import cnn_lab.engine.data.sample_digits as d, cnn_lab.engine.data.sample_textures as t; "
        "d.make_digits(0, per_class=2); t.make_textures(0, per_class=2); "
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# ------------------------------------------------------------------------------- fairness


def test_texture_colour_carries_no_class_information(textures: ImageSet) -> None:
    """Mean colour and brightness spread per class are alike: colour must not give it away."""
    labels = textures.labels
    means = np.stack([textures.images[labels == c].mean((0, 1, 2)) for c in range(8)])
    assert np.ptp(means, axis=0).max() < 12.0
    # how far colours stray from the image's own mean: a class drawn in one palette would be
    # narrower (or wider) than the rest
    some = textures.subset(np.arange(800))
    pixels = some.images.astype(np.float32)
    spread = pixels.std(axis=(1, 2))
    contrast = np.stack([spread[some.labels == c].mean(0) for c in range(8)])
    assert np.ptp(contrast, axis=0).max() < 12.0


def test_digit_strokes_vary_in_place_and_size(digits: ImageSet) -> None:
    """Ink centres and extents spread over several pixels within a class, so no fixed
    template fits; an unjittered generator would put every '1' in the same columns."""
    ink = digits.images[digits.labels == 1, :, :, 0].astype(np.float32)
    ink -= ink.min(axis=(1, 2), keepdims=True)
    columns = ink.sum(axis=1)
    centre = (columns * np.arange(28)).sum(1) / columns.sum(1)
    assert centre.std() > 1.5


# ------------------------------------------------------------------------------- learnability


def _nearest_class_mean_accuracy(data: ImageSet, n_train: int, n_val: int) -> float:
    """A template per class (the mean training image), each validation image to the closest."""
    x = data.images[..., :1] if data.name == "sample:digits" else data.images
    x = x.reshape(len(data), -1).astype(np.float32)
    x_train, y_train = x[:n_train], data.labels[:n_train]
    x_val, y_val = x[-n_val:], data.labels[-n_val:]
    means = np.stack([x_train[y_train == c].mean(0) for c in range(len(data.classes))])
    distance = (x_val**2).sum(1, keepdims=True) - 2 * x_val @ means.T + (means**2).sum(1)
    return float((distance.argmin(1) == y_val).mean())


def _tiny_cnn_accuracy(data: ImageSet, n_train: int, n_val: int, epochs: int) -> float:
    """The shapes test's tiny CNN on this sample (digits read as one grey channel)."""
    import torch

    x = torch.from_numpy(data.images).permute(0, 3, 1, 2).float().div(255)
    if data.name == "sample:digits":
        x = x[:, :1]
    y = torch.from_numpy(data.labels)
    x_train, y_train, x_val, y_val = x[:n_train], y[:n_train], x[-n_val:], y[-n_val:]
    mean, std = x_train.mean((0, 2, 3), keepdim=True), x_train.std((0, 2, 3), keepdim=True)
    x_train, x_val = (x_train - mean) / std, (x_val - mean) / std
    return tiny_cnn_val_accuracy(
        x_train, y_train, x_val, y_val, classes=len(data.classes), epochs=epochs
    )


# name: (train images, validation images, epochs, template match below, CNN above)
LEARNABILITY = {
    "digits": (1500, 1000, 2, 0.5, 0.9),
    "textures": (1200, 500, 1, 0.25, 0.45),
}


@pytest.mark.parametrize("name", sorted(LEARNABILITY))
@pytest.mark.usefixtures("one_torch_thread")
def test_a_template_match_fails_where_a_tiny_cnn_learns(
    request: pytest.FixtureRequest, name: str
) -> None:
    n_train, n_val, epochs, template_below, cnn_above = LEARNABILITY[name]
    data = _sample(request, name)
    template = _nearest_class_mean_accuracy(data, n_train, n_val)
    cnn = _tiny_cnn_accuracy(data, n_train, n_val, epochs)
    print(f"{name}: nearest class mean {template:.3f}, tiny CNN {cnn:.3f}")
    assert template < template_below
    assert cnn > cnn_above
    assert cnn > template + 0.3
