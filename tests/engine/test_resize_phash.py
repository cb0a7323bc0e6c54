"""Resize policies (registry, shapes, geometry) and perceptual near-duplicate grouping."""

from __future__ import annotations

import io
import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw, ImageEnhance

from cnn_lab.engine.data.phash import dhash, hamming, near_duplicate_groups
from cnn_lab.engine.data.resize import (
    register_resize_policy,
    resize_image,
    resize_policy_label,
    resize_policy_names,
)

# ------------------------------------------------------------------------------ resize


def test_builtin_policies_are_registered_with_labels() -> None:
    names = resize_policy_names()
    assert names[:3] == ["squash", "center_crop", "pad"]
    for name in names:
        assert resize_policy_label(name)


def test_unknown_policy_lists_the_names() -> None:
    with pytest.raises(ValueError, match="'squash', 'center_crop', 'pad'"):
        resize_image(Image.new("RGB", (4, 4)), 2, 2, policy="stretchy")
    with pytest.raises(ValueError, match="unknown resize policy"):
        resize_policy_label("stretchy")


def test_registering_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_resize_policy("squash", "again")(lambda image, h, w: image)


@pytest.mark.parametrize("policy", ["squash", "center_crop", "pad"])
@pytest.mark.parametrize("source_size", [(64, 32), (32, 64), (50, 50), (3, 200), (7, 5)])
@pytest.mark.parametrize("channels", [1, 3])
def test_every_policy_returns_uint8_hwc(
    policy: str, source_size: tuple[int, int], channels: int
) -> None:
    image = Image.new("RGB", source_size, (200, 100, 50))
    out = resize_image(image, 24, 40, policy=policy, channels=channels)
    assert out.dtype == np.uint8
    assert out.shape == (24, 40, channels)


@given(
    src_w=st.integers(1, 300),
    src_h=st.integers(1, 300),
    height=st.integers(1, 64),
    width=st.integers(1, 64),
    policy=st.sampled_from(["squash", "center_crop", "pad"]),
)
@settings(max_examples=60, deadline=None)
def test_shape_is_exact_for_any_sizes(
    src_w: int, src_h: int, height: int, width: int, policy: str
) -> None:
    out = resize_image(Image.new("RGB", (src_w, src_h), "white"), height, width, policy)
    assert out.shape == (height, width, 3)


def test_greyscale_uses_luma() -> None:
    out = resize_image(Image.new("RGB", (8, 8), (255, 0, 0)), 4, 4, channels=1)
    assert out.shape == (4, 4, 1)
    assert int(out[0, 0, 0]) == round(255 * 299 / 1000)


def test_bad_arguments() -> None:
    image = Image.new("RGB", (8, 8))
    with pytest.raises(ValueError, match="channels"):
        resize_image(image, 4, 4, channels=2)
    with pytest.raises(ValueError, match="at least 1"):
        resize_image(image, 0, 4)


def striped(width: int, height: int) -> Image.Image:
    """Left third red, middle green, right third blue."""
    image = Image.new("RGB", (width, height), (0, 255, 0))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, width // 3 - 1, height), fill=(255, 0, 0))
    draw.rectangle((width - width // 3, 0, width, height), fill=(0, 0, 255))
    return image


def test_squash_keeps_all_content() -> None:
    out = resize_image(striped(90, 30), 30, 30, "squash").astype(int)
    assert out[15, 2, 0] > 200 and out[15, 27, 2] > 200  # both outer stripes survive


def test_center_crop_keeps_the_middle() -> None:
    out = resize_image(striped(90, 30), 30, 30, "center_crop").astype(int)
    assert (out[:, :, 1] > 200).all()  # only the green middle third remains
    tall = resize_image(striped(30, 90).rotate(90, expand=True).rotate(-90, expand=True), 10, 10)
    assert tall.shape == (10, 10, 3)


def test_pad_fits_inside_with_mean_colour_bands() -> None:
    image = Image.new("RGB", (40, 20), (200, 40, 40))
    out = resize_image(image, 40, 40, "pad").astype(int)
    # Content occupies the middle 20 rows; bands above and below have the image's mean colour.
    assert tuple(out[20, 20]) == (200, 40, 40)
    assert tuple(out[0, 20]) == (200, 40, 40)
    mixed = Image.new("RGB", (40, 20), (0, 0, 0))
    mixed.paste((255, 255, 255), (0, 0, 20, 20))
    band = resize_image(mixed, 40, 40, "pad")[0, 0].astype(int)
    assert all(abs(v - 128) <= 2 for v in band)


def test_downscale_does_not_alias() -> None:
    # A one-pixel checkerboard averages to mid-grey; a point-sampling resize gives 0 or 255.
    board = (np.indices((400, 400)).sum(axis=0) % 2 * 255).astype(np.uint8)
    out = resize_image(Image.fromarray(board).convert("RGB"), 25, 25, "squash").astype(int)
    assert np.abs(out - 128).max() <= 3


def test_upscale_is_smooth() -> None:
    tiny = Image.fromarray(np.array([[0, 255]], dtype=np.uint8)).convert("RGB")
    out = resize_image(tiny, 1, 8, "squash")[0, :, 0].astype(int)
    assert out[0] < out[3] < out[7]


# ------------------------------------------------------------------------------ dhash


def shape_image(kind: str, size: int = 128) -> Image.Image:
    """A shape on a smooth, random, photo-like background (dhash needs gradients to see)."""
    rng = np.random.default_rng(sum(map(ord, kind)))
    field = rng.integers(40, 200, (6, 6, 3), dtype=np.uint8)
    image = Image.fromarray(field).resize((size, size), Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(image)
    if kind == "circle":
        draw.ellipse((20, 20, 100, 100), fill=(240, 240, 240))
    elif kind == "square":
        draw.rectangle((10, 60, 60, 120), fill=(20, 20, 20))
    elif kind == "triangle":
        draw.polygon([(64, 5), (5, 120), (120, 120)], fill=(250, 200, 0))
    elif kind == "cross":
        draw.line((0, 0, size, size), fill=(0, 0, 90), width=14)
        draw.line((0, size, size, 0), fill=(0, 0, 90), width=14)
    return image


def jpeg_copy(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def test_dhash_is_64_bits_and_deterministic() -> None:
    image = shape_image("circle")
    h = dhash(image)
    assert 0 <= h < 2**64
    assert dhash(image) == h
    assert dhash(np.asarray(image)) == h  # arrays and images hash the same
    assert dhash(image.convert("L")) == h
    assert dhash(np.asarray(image.convert("L"))) == h
    assert dhash(np.asarray(image.convert("L"))[:, :, None]) == h


def test_dhash_other_sizes() -> None:
    image = shape_image("triangle")
    assert dhash(image, size=4) < 2**16
    assert dhash(image, size=5) < 2**25  # 25 bits: not a whole number of bytes
    assert dhash(image, size=16) < 2**256


def test_dhash_rejects_bad_arrays() -> None:
    with pytest.raises(ValueError, match="uint8"):
        dhash(np.zeros((8, 8), dtype=np.float32))
    with pytest.raises(ValueError, match="H×W"):
        dhash(np.zeros((8, 8, 2), dtype=np.uint8))


def test_hamming() -> None:
    assert hamming(0, 0) == 0
    assert hamming(0b1011, 0b0001) == 2
    assert hamming(2**64 - 1, 0) == 64


def test_copies_are_close_and_different_shapes_are_far() -> None:
    kinds = ["circle", "square", "triangle", "cross"]
    hashes = {kind: dhash(shape_image(kind)) for kind in kinds}
    for kind in kinds:
        original = shape_image(kind)
        brighter = ImageEnhance.Brightness(original).enhance(1.15)
        assert hamming(hashes[kind], dhash(original)) == 0
        assert hamming(hashes[kind], dhash(brighter)) <= 4
        assert hamming(hashes[kind], dhash(jpeg_copy(original, 60))) <= 4
        assert hamming(hashes[kind], dhash(original.resize((300, 300)))) <= 4
    for a, b in itertools.combinations(kinds, 2):
        assert hamming(hashes[a], hashes[b]) > 12, (a, b)


# ------------------------------------------------------------------------------ grouping


def brute_force_groups(hashes: list[int], max_distance: int) -> list[list[int]]:
    parent = list(range(len(hashes)))

    def find(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    for i, j in itertools.combinations(range(len(hashes)), 2):
        if hamming(hashes[i], hashes[j]) <= max_distance:
            parent[max(find(i), find(j))] = min(find(i), find(j))
    groups: dict[int, list[int]] = {}
    for i in range(len(hashes)):
        groups.setdefault(find(i), []).append(i)
    return sorted((g for g in groups.values() if len(g) >= 2), key=lambda g: g[0])


def test_groups_of_images() -> None:
    kinds = ["circle", "square", "triangle", "cross"]
    images = [shape_image(k) for k in kinds]
    images.append(jpeg_copy(images[0], 70))  # 4: copy of the circle
    images.append(ImageEnhance.Brightness(images[2]).enhance(0.9))  # 5: copy of the triangle
    hashes = [dhash(image) for image in images]
    assert near_duplicate_groups(hashes) == [[0, 4], [2, 5]]


def test_groups_are_transitive() -> None:
    a = 0
    b = a ^ 0b1111  # 4 bits from a
    c = b ^ (0b1111 << 8)  # 4 bits from b, 8 from a
    far = 2**64 - 1
    assert near_duplicate_groups([c, far, a, b], max_distance=4) == [[0, 2, 3]]
    assert near_duplicate_groups([c, far, a], max_distance=4) == []


def test_equal_hashes_always_group_and_singletons_are_left_out() -> None:
    assert near_duplicate_groups([5, 7, 5, 5], max_distance=0) == [[0, 2, 3]]
    assert near_duplicate_groups([], 4) == []
    assert near_duplicate_groups([123], 4) == []


def test_grouping_bad_arguments() -> None:
    with pytest.raises(ValueError, match="max_distance"):
        near_duplicate_groups([1, 2], max_distance=64)
    with pytest.raises(ValueError, match="non-negative"):
        near_duplicate_groups([1, -2])
    with pytest.raises(ValueError, match="64 bits"):
        near_duplicate_groups([1, 2**64])


@given(
    seeds=st.lists(st.integers(0, 2**64 - 1), min_size=1, max_size=6),
    flips=st.lists(st.tuples(st.integers(0, 5), st.integers(0, 63)), max_size=60),
    max_distance=st.integers(0, 10),
)
@settings(max_examples=150, deadline=None)
def test_matches_brute_force(
    seeds: list[int], flips: list[tuple[int, int]], max_distance: int
) -> None:
    # Clusters around a few seeds, each member a few random bit flips away: many near pairs.
    hashes = list(seeds)
    for seed_index, bit in flips:
        hashes.append(seeds[seed_index % len(seeds)] ^ (1 << bit) ^ (hashes[-1] & 0b11))
    assert near_duplicate_groups(hashes, max_distance) == brute_force_groups(hashes, max_distance)


def test_many_random_hashes_with_planted_duplicates() -> None:
    rng = np.random.default_rng(7)
    hashes = [int(h) for h in rng.integers(0, 2**64, 20_000, dtype=np.uint64)]
    planted = {}
    for i in range(0, 20_000, 1000):  # every 1000th hash gets a 3-bit-off twin at the end
        twin = hashes[i] ^ (1 << 3) ^ (1 << 30) ^ (1 << 60)
        planted[i] = len(hashes)
        hashes.append(twin)
    groups = near_duplicate_groups(hashes, max_distance=4)
    for i, j in planted.items():
        assert [i, j] in groups
    for group in groups:  # anything else grouped must really be within reach
        assert any(hamming(hashes[group[0]], hashes[k]) <= 4 for k in group[1:])


def test_a_large_cluster_of_near_identical_hashes() -> None:
    # Thousands of near-blank images share most bits: the worst case for bucketing.
    base = 0
    hashes = [base ^ (1 << (i % 64)) ^ (1 << ((i // 64) % 64)) for i in range(4096)]
    groups = near_duplicate_groups(hashes, max_distance=4)
    assert groups == [list(range(4096))]
