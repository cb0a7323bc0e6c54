"""Decoding a JPEG reduced (DCT scaling, Pillow's draft mode) for a known target size.

The reduced decode must give the same dataset pixels as a full decode followed by the same
resize, to within what a person could not see; other formats must not change at all; and a
file that fails either way is skipped with its reason.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw, JpegImagePlugin

from cnn_lab.engine.data.decode import ImageSkipped, decode_image
from cnn_lab.engine.data.resize import resize_image

# Tolerances against the full decode (Pillow 13, libjpeg-turbo), decoding reduced to the
# smallest size still at least the target, at 64, 128 and 224 px with every resize policy:
# on the real photographs below, mean absolute difference at most 1.47 levels of 255, largest
# single difference 21 (99.9th percentile at most 13), on the drawn photo up to 1.67 and 23 at
# its 2-pixel lines and near-Nyquist texture. The limits leave a little room for another
# libjpeg build's IDCT; a real change such as a geometry slip is caught separately below.
MEAN_LIMIT = 2.0
MAX_LIMIT = 24


def camera_photo(width: int = 2000, height: int = 1500, seed: int = 0, **save: object) -> bytes:
    """A camera-sized JPEG with what photos have: gradients, noise, fine texture, hard edges."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    red = 128 + 100 * np.sin(x / 97.0) * np.cos(y / 53.0)
    green = 255 * x / width + 40 * np.sin(x / 1.1 + y / 2.3)  # a 7-pixel texture
    blue = 255 * y / height
    pixels = np.stack([red, green, blue], -1) + rng.normal(0, 12, (height, width, 3))
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for i in range(40):
        x0, y0 = int(rng.integers(0, width - 200)), int(rng.integers(0, height - 200))
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        x1, y1 = x0 + int(rng.integers(5, 200)), y0 + int(rng.integers(5, 200))
        if i % 2:
            draw.ellipse([x0, y0, x1, y1], fill=colour)
        else:
            draw.rectangle([x0, y0, x1, y1], outline=colour, width=int(rng.integers(1, 6)))
        draw.line([x0, y0, x0 + 150, y0 + 90], fill=colour, width=2)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90, **save)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def photo() -> bytes:
    return camera_photo()


@pytest.mark.parametrize("size", [64, 128])
@pytest.mark.parametrize("policy", ["squash", "center_crop", "pad"])
def test_reduced_decode_resizes_to_what_the_full_decode_gives(
    photo: bytes, size: int, policy: str
) -> None:
    full = decode_image(photo)
    reduced = decode_image(photo, target=(size, size))
    assert full.image.size == (2000, 1500)
    # The strongest scale that leaves at least the target: 1/8 (1500 / 8 = 187.5 rows, so the
    # last row is half picture and the extent says so).
    assert reduced.image.size == (250, 188)
    assert reduced.extent == (250.0, 187.5)
    assert (reduced.width, reduced.height) == (2000, 1500)  # the file's own size, for reports
    assert (reduced.mode, reduced.format) == (full.mode, full.format)
    expected = resize_image(full.image, size, size, policy).astype(np.int16)
    got = resize_image(reduced.image, size, size, policy, extent=reduced.extent)
    got = got.astype(np.int16)
    diff = np.abs(expected - got)
    assert diff.mean() < MEAN_LIMIT, (diff.mean(), diff.max())
    assert diff.max() <= MAX_LIMIT, (diff.mean(), diff.max())


def test_small_targets_use_the_strongest_scaling_and_large_ones_none(photo: bytes) -> None:
    big = camera_photo(4000, 3000)
    assert decode_image(big, target=(64, 64)).image.size == (500, 375)  # 1/8
    assert decode_image(photo, target=(224, 224)).image.size == (500, 375)  # 1/4
    assert decode_image(photo, target=(400, 400)).image.size == (1000, 750)  # 1/2
    assert decode_image(photo, target=(800, 800)).image.size == (2000, 1500)  # none fits


@pytest.mark.parametrize("policy", ["squash", "center_crop", "pad"])
@pytest.mark.parametrize("size", [(2001, 1499), (1999, 1333), (1366, 2047)])
def test_sizes_that_do_not_divide_are_reduced_and_resized_by_their_exact_extent(
    size: tuple[int, int], policy: str
) -> None:
    # 1499 rows at 1/4 are 374.75 rows: libjpeg rounds up to 375, and the last row is only a
    # quarter picture. Resizing by the recorded extent keeps the geometry exact; resizing the
    # whole reduced image would stretch it (the test below shows by how much).
    odd = camera_photo(*size, seed=3)
    full = decode_image(odd)
    reduced = decode_image(odd, target=(64, 64))
    assert reduced.image.size == (-(-size[0] // 8), -(-size[1] // 8))
    assert reduced.extent == (size[0] / 8, size[1] / 8)
    assert (reduced.width, reduced.height) == size
    expected = resize_image(full.image, 64, 64, policy).astype(np.int16)
    got = resize_image(reduced.image, 64, 64, policy, extent=reduced.extent).astype(np.int16)
    diff = np.abs(expected - got)
    assert diff.mean() < MEAN_LIMIT, (diff.mean(), diff.max())
    assert diff.max() <= MAX_LIMIT, (diff.mean(), diff.max())


def test_ignoring_the_extent_would_stretch_the_picture() -> None:
    # The check above has teeth: the same resize without the extent moves edges visibly
    # (measured: mean 0.32 and max 3 with the extent, 1.47 and 35 without).
    odd = camera_photo(2007, 1505, seed=3)
    full = decode_image(odd)
    reduced = decode_image(odd, target=(64, 64))
    expected = resize_image(full.image, 64, 64).astype(np.int16)
    exact = np.abs(resize_image(reduced.image, 64, 64, extent=reduced.extent) - expected)
    stretched = np.abs(resize_image(reduced.image, 64, 64).astype(np.int16) - expected)
    assert stretched.max() > MAX_LIMIT and stretched.mean() > 3 * exact.mean()


def test_divisible_sizes_fill_the_reduced_image() -> None:
    assert decode_image(camera_photo(2000, 1504), target=(64, 64)).extent is None


def test_an_odd_size_turned_by_exif_is_only_reduced_by_a_dividing_scale() -> None:
    # The partial column would end up on another edge after the turn: no fractional extent.
    exif = Image.Exif()
    exif[0x0112] = 6
    turned = decode_image(camera_photo(2001, 1499, exif=exif.tobytes()), target=(64, 64))
    assert turned.image.size == (1499, 2001) and turned.extent is None
    assert (turned.width, turned.height) == (1499, 2001)


def test_exif_rotation_reports_the_turned_size() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to view
    data = camera_photo(exif=exif.tobytes())
    full = decode_image(data)
    reduced = decode_image(data, target=(64, 64))
    assert full.image.size == (1500, 2000) == (full.width, full.height)
    assert reduced.image.size == (375, 500)
    assert (reduced.width, reduced.height) == (1500, 2000)
    diff = np.abs(
        resize_image(full.image, 64, 64).astype(np.int16)
        - resize_image(reduced.image, 64, 64).astype(np.int16)
    )
    assert diff.mean() < MEAN_LIMIT and diff.max() <= MAX_LIMIT


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "BMP"])
def test_other_formats_take_the_unchanged_path(fmt: str) -> None:
    rgb = Image.fromarray(np.random.default_rng(1).integers(0, 256, (600, 800, 3), np.uint8))
    buffer = io.BytesIO()
    rgb.save(buffer, fmt)
    data = buffer.getvalue()
    plain, targeted = decode_image(data), decode_image(data, target=(64, 64))
    assert targeted.image.size == (800, 600)
    assert targeted.image.tobytes() == plain.image.tobytes()
    assert (targeted.width, targeted.height) == (plain.width, plain.height)


def test_without_a_target_a_jpeg_is_decoded_in_full(photo: bytes) -> None:
    assert decode_image(photo).image.tobytes() == Image.open(io.BytesIO(photo)).tobytes()


def test_a_truncated_photo_is_skipped_in_draft_mode_too(photo: bytes) -> None:
    cut = photo[: len(photo) // 2]
    for target in (None, (64, 64)):
        with pytest.raises(ImageSkipped, match="truncated or corrupt"):
            decode_image(cut, name="cut.jpg", target=target)


def test_a_photo_failing_only_in_draft_mode_is_skipped_not_raised(
    photo: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self, mode, size):  # type: ignore[no-untyped-def]
        raise OSError("broken data stream when scaling")

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", broken)
    assert decode_image(photo).image.size == (2000, 1500)  # the full path never drafts
    with pytest.raises(ImageSkipped, match="broken data stream when scaling") as caught:
        decode_image(photo, name="a.jpg", target=(64, 64))
    assert caught.value.name == "a.jpg"


def test_a_bomb_is_refused_before_any_draft(monkeypatch: pytest.MonkeyPatch) -> None:
    import cnn_lab.engine.data.decode as decode

    monkeypatch.setattr(decode, "MAX_IMAGE_PIXELS", 1_000_000)
    with pytest.raises(ImageSkipped, match="decompression bomb"):
        decode_image(camera_photo(1600, 800), target=(32, 32))


@pytest.mark.parametrize("index", range(7))
def test_real_photographs_decode_reduced_as_they_do_in_full(index: int) -> None:
    """The package photographs (an astronaut, coffee, a cat, ...) at camera sizes, odd ones
    included, through every policy at the import's usual sizes."""
    from benchmarks.photo_folder import camera_photo as from_package
    from benchmarks.photo_folder import grain_texture, package_photos

    rng = np.random.default_rng(index)
    base = package_photos()[index]
    long_side = int(rng.integers(1000, 4001))
    picture = from_package(base, rng, long_side, grain_texture(index, long_side))
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", quality=int(rng.integers(70, 96)))
    full = decode_image(buffer.getvalue())
    for size in (64, 128, 224):
        reduced = decode_image(buffer.getvalue(), target=(size, size))
        assert reduced.image.width < full.image.width  # it really was decoded reduced
        for policy in ("squash", "center_crop", "pad"):
            expected = resize_image(full.image, size, size, policy).astype(np.int16)
            got = resize_image(reduced.image, size, size, policy, extent=reduced.extent)
            diff = np.abs(expected - got.astype(np.int16))
            assert diff.mean() < MEAN_LIMIT, (picture.size, size, policy, diff.mean())
            assert diff.max() <= MAX_LIMIT, (picture.size, size, policy, diff.max())
