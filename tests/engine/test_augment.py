"""The augmentation registry: one parametrised contract for every entry, then specific checks.

The contract (timm-style) is what a hyperparameter search relies on: any registered name, at
any strength, keeps the batch's shape, dtype, layout and 0..1 range, never writes into its
input, is the identity at strength 0, and is reproducible from the generator's seed.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from cnn_lab.engine.data.augment import (
    AugmentationInfo,
    BatchAugmenter,
    augmentation_info,
    augmentation_names,
    cutmix,
    cutout,
    hflip,
    mixup,
    preview,
    random_resized_crop,
    rotate,
    translate,
    vflip,
)
from cnn_lab.engine.errors import SpecError

NAMES = augmentation_names()


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def batch(n: int = 8, c: int = 3, h: int = 32, w: int = 32, seed: int = 123) -> torch.Tensor:
    return torch.rand(n, c, h, w, generator=gen(seed))


def apply(name: str, x: torch.Tensor, strength: float, seed: int = 0) -> torch.Tensor:
    return augmentation_info(name).fn(x, strength, gen(seed))


# --- The contract every registered augmentation keeps --------------------------------------


def test_the_registry_holds_the_promised_augmentations() -> None:
    assert set(NAMES) >= {
        "hflip",
        "vflip",
        "translate",
        "rotate",
        "color_jitter",
        "cutout",
        "random_resized_crop",
    }


@pytest.mark.parametrize("name", NAMES)
def test_info_describes_the_augmentation(name: str) -> None:
    info = augmentation_info(name)
    assert isinstance(info, AugmentationInfo)
    assert info.name == name
    assert info.label
    assert 0.0 < info.default_strength <= 1.0
    assert "strength" in info.description  # says what the knob maps to


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
@pytest.mark.parametrize("name", NAMES)
def test_keeps_shape_dtype_and_range_and_leaves_the_input_alone(
    name: str, dtype: torch.dtype
) -> None:
    x = batch().to(dtype)
    before = x.clone()
    out = apply(name, x, 1.0)
    assert out.shape == x.shape
    assert out.dtype == dtype
    assert out.min() >= 0 and out.max() <= 1
    assert torch.equal(x, before)


@pytest.mark.parametrize("name", NAMES)
def test_strength_zero_is_the_identity(name: str) -> None:
    x = batch()
    assert torch.equal(apply(name, x, 0.0), x)


@pytest.mark.parametrize("name", NAMES)
def test_strength_one_changes_a_random_batch(name: str) -> None:
    x = batch()
    assert not torch.allclose(apply(name, x, 1.0), x)


@pytest.mark.parametrize("name", NAMES)
def test_the_same_seed_repeats_and_another_seed_differs(name: str) -> None:
    x = batch()
    assert torch.equal(apply(name, x, 1.0, seed=5), apply(name, x, 1.0, seed=5))
    assert not torch.equal(apply(name, x, 1.0, seed=5), apply(name, x, 1.0, seed=6))


@pytest.mark.parametrize("name", NAMES)
def test_each_image_gets_its_own_parameters(name: str) -> None:
    x = batch(n=1).expand(16, -1, -1, -1).contiguous()  # sixteen copies of one image
    out = apply(name, x, 1.0)
    assert len({tuple(image.flatten().tolist()) for image in out}) > 1


@pytest.mark.parametrize("name", NAMES)
def test_channels_last_input_gives_the_same_result_in_the_same_layout(name: str) -> None:
    x = batch()
    x_cl = x.contiguous(memory_format=torch.channels_last)
    out = apply(name, x_cl, 1.0)
    assert out.is_contiguous(memory_format=torch.channels_last)
    assert apply(name, x, 1.0).is_contiguous()
    torch.testing.assert_close(out, apply(name, x, 1.0))


@pytest.mark.parametrize("name", NAMES)
def test_non_square_and_one_channel_images_work(name: str) -> None:
    x = batch(n=4, c=1, h=24, w=40)
    out = apply(name, x, 1.0)
    assert out.shape == x.shape
    assert out.min() >= 0 and out.max() <= 1


@settings(max_examples=25, deadline=None)
@given(
    name=st.sampled_from(NAMES),
    strength=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**31 - 1),
)
def test_any_strength_keeps_the_range(name: str, strength: float, seed: int) -> None:
    x = batch(n=4, h=16, w=16)
    out = apply(name, x, strength, seed=seed)
    assert out.shape == x.shape
    assert out.min() >= 0 and out.max() <= 1


@pytest.mark.parametrize("name", NAMES)
def test_bad_arguments_are_refused(name: str) -> None:
    fn = augmentation_info(name).fn
    for strength in (-0.1, 1.5, float("nan")):
        with pytest.raises(SpecError, match="between 0 and 1"):
            fn(batch(), strength, gen())
    with pytest.raises(ValueError, match="N x C x H x W"):
        fn(batch()[0], 0.5, gen())


def test_an_unknown_name_is_a_sentence_naming_the_known_ones() -> None:
    with pytest.raises(SpecError) as caught:
        augmentation_info("sharpen")
    message = str(caught.value)
    assert "'sharpen'" in message
    assert all(name in message for name in NAMES)


# --- Specific checks -------------------------------------------------------------------------


@pytest.mark.parametrize(("fn", "dim"), [(hflip, -1), (vflip, -2)])
def test_a_flip_at_strength_one_flips_about_half_the_images_exactly(fn, dim: int) -> None:  # type: ignore[no-untyped-def]
    x = batch(n=1000)
    out = fn(x, 1.0, gen())
    flipped = (out == x.flip(dim)).flatten(1).all(1)
    kept = (out == x).flatten(1).all(1)
    assert bool((flipped ^ kept).all())  # each image is either the original or its mirror
    assert 430 <= int(flipped.sum()) <= 570  # binomial(1000, 0.5): about 4.4 sigma either way


def test_half_strength_flips_about_a_quarter() -> None:
    x = batch(n=1000)
    flipped = (hflip(x, 0.5, gen()) != x).flatten(1).any(1)
    assert 190 <= int(flipped.sum()) <= 310


def test_translate_shifts_whole_pixels_by_at_most_an_eighth() -> None:
    x = batch(n=8)
    out = translate(x, 1.0, gen())
    inner = slice(4, 28)
    for image, result in zip(x, out, strict=True):
        matches = [
            (dy, dx)
            for dy in range(-4, 5)
            for dx in range(-4, 5)
            if torch.equal(
                result[:, inner, inner], image.roll((dy, dx), dims=(1, 2))[:, inner, inner]
            )
        ]
        assert len(matches) == 1


def test_translate_fills_the_edge_by_reflection_not_black() -> None:
    x = batch(n=32) * 0.5 + 0.5  # no pixel darker than grey
    assert translate(x, 1.0, gen()).min() >= 0.5


def test_rotate_keeps_the_centre_pixel() -> None:
    x = batch(n=8, h=33, w=33)
    out = rotate(x, 1.0, gen())
    torch.testing.assert_close(out[:, :, 16, 16], x[:, :, 16, 16], atol=1e-5, rtol=0)


def test_rotate_leaves_a_round_disc_round_on_a_non_square_image() -> None:
    # A radial ramp measured in pixels: any rotation about the centre maps it to itself, so
    # a shear from a missing aspect correction would show up as a difference. Only pixels
    # within the inscribed circle are compared: outside it the corners come from reflection.
    h, w = 33, 49
    yy, xx = torch.meshgrid(torch.arange(h) - 16.0, torch.arange(w) - 24.0, indexing="ij")
    radius = torch.sqrt(yy**2 + xx**2)
    disc = (1 - radius / 12).clamp(0, 1)
    x = disc.expand(8, 3, h, w).contiguous()
    out = rotate(x, 1.0, gen())
    assert not torch.equal(out, x)
    inside = radius <= 16
    torch.testing.assert_close(out[..., inside], x[..., inside], atol=0.03, rtol=0)


def test_cutout_fills_one_square_with_the_image_mean() -> None:
    x = batch(n=8)
    out = cutout(x, 1.0, gen())
    side = 16  # half of 32 at strength 1
    for image, result in zip(x, out, strict=True):
        changed = (result != image).any(0)
        rows = changed.any(1).nonzero().flatten()
        cols = changed.any(0).nonzero().flatten()
        top, left = int(rows.min()), int(cols.min())
        assert int(rows.max()) - top + 1 == side and int(cols.max()) - left + 1 == side
        hole = result[:, top : top + side, left : left + side]
        mean = image.mean(dim=(1, 2)).view(3, 1, 1).expand_as(hole)
        torch.testing.assert_close(hole, mean)
        outside = torch.ones_like(changed)
        outside[top : top + side, left : left + side] = False
        assert torch.equal(result[:, outside], image[:, outside])


def test_random_resized_crop_zooms_in_and_keeps_orientation() -> None:
    ramp = torch.linspace(0, 1, 32).expand(8, 3, 32, 32).contiguous()  # brighter to the right
    out = random_resized_crop(ramp, 1.0, gen())
    steps = out.diff(dim=-1)
    assert bool((steps >= -1e-6).all())  # never mirrored
    # Stretching part of the image over the whole width flattens the ramp: a zoom in.
    per_image = steps.mean(dim=(1, 2, 3))
    assert bool((per_image <= ramp.diff(dim=-1).mean() + 1e-6).all())
    assert float(per_image.min()) < 0.9 * float(ramp.diff(dim=-1).mean())


def test_color_jitter_keeps_grey_images_grey() -> None:
    x = batch(n=8, c=1).expand(-1, 3, -1, -1).contiguous()
    out = augmentation_info("color_jitter").fn(x, 1.0, gen())
    torch.testing.assert_close(out[:, 0], out[:, 1], atol=1e-6, rtol=0)
    torch.testing.assert_close(out[:, 1], out[:, 2], atol=1e-6, rtol=0)


def pairs(targets: torch.Tensor, row: int) -> tuple[float, int]:
    """With labels arange(N), row i weighs i by its own share and one partner by the rest."""
    own = float(targets[row, row])
    others = [int(k) for k in targets[row].nonzero().flatten() if int(k) != row]
    assert len(others) <= 1
    return own, others[0] if others else row


def test_mixup_is_a_convex_combination_with_matching_soft_targets() -> None:
    n = 8
    x, y = batch(n=n), torch.arange(n)
    before = x.clone()
    mixed, targets = mixup(x, y, n, 0.4, gen())
    assert torch.equal(x, before)
    assert targets.dtype == torch.float32 and targets.shape == (n, n)
    torch.testing.assert_close(targets.sum(1), torch.ones(n))
    assert mixed.min() >= 0 and mixed.max() <= 1
    for i in range(n):
        lam, j = pairs(targets, i)
        torch.testing.assert_close(mixed[i], lam * x[i] + (1 - lam) * x[j])


def test_cutmix_target_weights_are_the_pasted_area() -> None:
    n = 16
    x, y = batch(n=n), torch.arange(n)
    mixed, targets = cutmix(x, y, n, 1.0, gen())
    assert targets.dtype == torch.float32 and targets.shape == (n, n)
    torch.testing.assert_close(targets.sum(1), torch.ones(n))
    pasted_some = False
    for i in range(n):
        own, j = pairs(targets, i)
        pasted = (mixed[i] != x[i]).any(0)
        assert float(pasted.float().mean()) == pytest.approx(1 - own, abs=1e-6)
        assert torch.equal(mixed[i][:, pasted], x[j][:, pasted])
        pasted_some |= bool(pasted.any())
    assert pasted_some


@pytest.mark.parametrize("mix", [mixup, cutmix])
def test_mixing_is_reproducible_and_checks_its_arguments(mix) -> None:  # type: ignore[no-untyped-def]
    x, y = batch(), torch.arange(8) % 3
    first, second = mix(x, y, 3, 1.0, gen(1)), mix(x, y, 3, 1.0, gen(1))
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])
    assert not torch.equal(first[0], mix(x, y, 3, 1.0, gen(2))[0])
    with pytest.raises(SpecError, match="alpha"):
        mix(x, y, 3, 0.0, gen())
    with pytest.raises(ValueError, match="labels"):
        mix(x, y[:4], 3, 1.0, gen())


# --- BatchAugmenter ------------------------------------------------------------------------


def test_the_augmenter_rejects_an_unknown_name_with_the_known_ones() -> None:
    with pytest.raises(SpecError) as caught:
        BatchAugmenter([("hflip", 0.5), ("sharpen", 0.5)])
    message = str(caught.value)
    assert message.startswith("There is no augmentation called 'sharpen'.")
    assert all(name in message for name in NAMES)


def test_the_augmenter_rejects_bad_strengths_and_alphas() -> None:
    with pytest.raises(SpecError, match="between 0 and 1"):
        BatchAugmenter([("rotate", 2.0)])
    with pytest.raises(SpecError, match="mixup alpha"):
        BatchAugmenter([], mixup_alpha=-1.0)
    with pytest.raises(SpecError, match="cutmix alpha"):
        BatchAugmenter([], cutmix_alpha=float("inf"))


def test_an_augmenter_that_does_nothing_is_false_and_hands_the_batch_back() -> None:
    for augmenter in (BatchAugmenter([]), BatchAugmenter([("hflip", 0.0), ("rotate", 0)])):
        assert not augmenter
        assert not augmenter.mixes_targets
        x, y = batch(), torch.arange(8)
        out, targets = augmenter(x, y, 8)
        assert out is x and targets is y
    assert BatchAugmenter([("hflip", 0.5)])
    assert BatchAugmenter([], mixup_alpha=0.2)
    assert BatchAugmenter([], cutmix_alpha=1.0).mixes_targets


def test_the_augmenter_keeps_labels_unless_it_mixes() -> None:
    x, y = batch(), torch.arange(8) % 4
    out, targets = BatchAugmenter([("hflip", 1.0), ("translate", 1.0)], seed=3)(x, y, 4)
    assert targets is y and out.shape == x.shape
    logits = torch.randn(8, 4)
    for mixing in (
        {"mixup_alpha": 0.2},
        {"cutmix_alpha": 1.0},
        {"mixup_alpha": 1, "cutmix_alpha": 1},
    ):
        augmenter = BatchAugmenter([("hflip", 1.0)], seed=3, **mixing)  # type: ignore[arg-type]
        out, targets = augmenter(x, y, 4)
        assert targets.dtype == torch.float32 and targets.shape == (8, 4)
        assert torch.isfinite(F.cross_entropy(logits, targets))  # soft targets are accepted


def test_the_augmenter_is_reproducible_from_its_seed_and_state() -> None:
    steps = [("translate", 1.0), ("rotate", 0.5), ("cutout", 0.5)]
    x, y = batch(), torch.arange(8) % 2
    first = BatchAugmenter(steps, mixup_alpha=0.4, cutmix_alpha=1.0, seed=7)
    second = BatchAugmenter(steps, mixup_alpha=0.4, cutmix_alpha=1.0, seed=7)
    for _ in range(3):
        a, b = first(x, y, 2), second(x, y, 2)
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    state = first.state_dict()
    expected = first(x, y, 2)
    other = BatchAugmenter(steps, mixup_alpha=0.4, cutmix_alpha=1.0, seed=99)
    other.load_state_dict(state)
    assert torch.equal(other(x, y, 2)[0], expected[0])
    assert not torch.equal(
        BatchAugmenter(steps, seed=8)(x, y, 2)[0], BatchAugmenter(steps)(x, y, 2)[0]
    )


def test_the_augmenter_is_built_from_a_dataset_spec() -> None:
    from cnn_lab.engine.specs.dataset import AugmentStep, DatasetSpec

    spec = DatasetSpec(
        augment=(AugmentStep(name="HFlip", strength=1.0), AugmentStep(name="cutout")),
        cutmix_alpha=1.0,
    )
    augmenter = BatchAugmenter.from_spec(spec, seed=1)
    assert augmenter.steps == (("hflip", 1.0), ("cutout", 0.5))
    assert augmenter.mixes_targets


# --- Preview ---------------------------------------------------------------------------------


def uint8_images(n: int = 6, h: int = 32, w: int = 32, c: int = 3) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, size=(n, h, w, c), dtype=np.uint8)


def test_preview_returns_uint8_images_and_a_reroll_differs() -> None:
    images = uint8_images()
    before = images.copy()
    steps = [("hflip", 1.0), ("translate", 1.0), ("color_jitter", 0.5)]
    shown = preview(images, steps, seed=1)
    assert shown.dtype == np.uint8 and shown.shape == images.shape
    assert np.array_equal(images, before)
    assert np.array_equal(shown, preview(images, steps, seed=1))
    assert not np.array_equal(shown, preview(images, steps, seed=2))
    assert not np.array_equal(shown, images)


def test_preview_without_augmentation_is_the_input() -> None:
    images = uint8_images()
    assert np.array_equal(preview(images, [], seed=0), images)
    assert np.array_equal(preview(images, [("rotate", 0.0)], seed=0), images)


def test_preview_shows_mixing_and_one_channel_images() -> None:
    images = uint8_images(c=1)
    shown = preview(images, [], seed=0, mixup_alpha=1.0, cutmix_alpha=1.0)
    assert shown.shape == images.shape and shown.dtype == np.uint8
    assert not np.array_equal(shown, images)
    with pytest.raises(ValueError, match="uint8"):
        preview(images.astype(np.float32), [], seed=0)


# --- Import cost -----------------------------------------------------------------------------


def test_the_names_are_listed_without_loading_torch() -> None:
    code = (
        "import sys\n"
        "import cnn_lab.engine.data.augment as a\n"
        "names = a.augmentation_names()\n"
        "assert names and a.augmentation_info(names[0]).description, names\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "assert 'numpy' not in sys.modules, 'numpy was imported'\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
