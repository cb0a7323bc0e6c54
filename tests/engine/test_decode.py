"""decode_image/decode_file: every kind of bad file becomes a reason, every mode becomes RGB."""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnn_lab.engine.data import decode
from cnn_lab.engine.data.decode import (
    IMAGE_SUFFIXES,
    MAX_IMAGE_PIXELS,
    SUPPORTED_FORMATS,
    Decoded,
    ImageSkipped,
    decode_file,
    decode_image,
)


def encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def noise(width: int = 64, height: int = 48) -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def skip_reason(data: bytes) -> str:
    with pytest.raises(ImageSkipped) as caught:
        decode_image(data, name="x")
    return caught.value.reason


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width×height (1-bit grey) with a few bytes of pixel data.

    Costs nothing to build or to refuse; if anything tried to decode it, it would fail as
    truncated instead of being refused as a bomb, which is what the tests tell apart.
    """

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


# ------------------------------------------------------------------------------ constants


def test_limits_and_formats_are_set_explicitly() -> None:
    assert Image.MAX_IMAGE_PIXELS == MAX_IMAGE_PIXELS == 40_000_000
    assert {"JPEG", "PNG", "BMP", "GIF", "TIFF", "WEBP"} == SUPPORTED_FORMATS
    assert {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"} == IMAGE_SUFFIXES
    assert all(s == s.lower() and s.startswith(".") for s in IMAGE_SUFFIXES)


# ------------------------------------------------------------------------------ bad inputs


def test_zero_byte_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    with pytest.raises(ImageSkipped) as caught:
        decode_file(path)
    assert caught.value.reason == "empty file (0 bytes)"
    assert skip_reason(b"") == "empty file (0 bytes)"


def test_truncated_jpeg() -> None:
    data = encode(noise(), "JPEG", quality=90)
    reason = skip_reason(data[: len(data) // 2])
    assert reason.startswith("truncated or corrupt image data: ")


def test_truncated_png() -> None:
    data = encode(noise(), "PNG")
    reason = skip_reason(data[: len(data) // 2])
    assert reason.startswith("truncated or corrupt image data: ")


def test_truncated_file_on_disk_is_skipped_not_padded(tmp_path: Path) -> None:
    data = encode(noise(), "PNG")
    path = tmp_path / "half.png"
    path.write_bytes(data[: len(data) - 200])
    with pytest.raises(ImageSkipped, match="truncated or corrupt"):
        decode_file(path)


def test_random_bytes_named_jpg(tmp_path: Path) -> None:
    path = tmp_path / "random.jpg"
    path.write_bytes(np.random.default_rng(1).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(ImageSkipped) as caught:
        decode_file(path)
    assert caught.value.reason == "not an image (no known image format)"


def test_text_file_named_png(tmp_path: Path) -> None:
    path = tmp_path / "notes.png"
    path.write_text("these are my notes, not a picture\n" * 10)
    with pytest.raises(ImageSkipped) as caught:
        decode_file(path)
    assert caught.value.reason == "not an image (no known image format)"


def test_corrupt_png_signature_but_garbage_body() -> None:
    data = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
    reason = skip_reason(data)
    assert reason in {"not an image (no known image format)"} or reason.startswith(
        "truncated or corrupt image data"
    )


@pytest.mark.parametrize(
    ("fmt", "mode"),
    [("ICO", "RGBA"), ("PPM", "RGB"), ("TGA", "RGB")],
)
def test_decodable_but_unsupported_format_named_png(tmp_path: Path, fmt: str, mode: str) -> None:
    path = tmp_path / "icon.png"
    path.write_bytes(encode(Image.new(mode, (16, 16), "red"), fmt))
    with pytest.raises(ImageSkipped) as caught:
        decode_file(path)
    assert caught.value.reason == f"unsupported image format {fmt}"


def test_decompression_bomb_far_above_limit_is_refused_from_the_header() -> None:
    data = png_header_only(20_000, 20_000)  # 400 MP: Pillow itself refuses this in open()
    assert skip_reason(data) == (
        "decompression bomb: 400,000,000 pixels exceeds the limit of 40,000,000"
    )


def test_decompression_bomb_just_above_limit_is_refused_not_only_warned() -> None:
    data = png_header_only(8000, 6000)  # 48 MP: Pillow only warns between 1x and 2x its limit
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        reason = skip_reason(data)
    assert reason == "decompression bomb: 48,000,000 pixels exceeds the limit of 40,000,000"


def test_decompression_bomb_warning_as_error_still_gives_the_same_reason() -> None:
    data = png_header_only(8000, 6000)
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        reason = skip_reason(data)
    assert reason == "decompression bomb: 48,000,000 pixels exceeds the limit of 40,000,000"


def test_real_one_bit_bomb_built_with_pillow() -> None:
    # A genuine, fully valid 1-bit PNG: 7000×7000 = 49 MP compresses to a few kilobytes.
    data = encode(Image.new("1", (7000, 7000)), "PNG")
    assert len(data) < 100_000
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        assert skip_reason(data).startswith("decompression bomb: 49,000,000 pixels")


def test_image_at_the_limit_is_accepted() -> None:
    image = decode_image(encode(Image.new("1", (8000, 5000), 1), "PNG"))
    assert (image.width, image.height) == (8000, 5000)


def test_unreadable_path(tmp_path: Path) -> None:
    with pytest.raises(ImageSkipped) as caught:
        decode_file(tmp_path / "missing.jpg")
    assert caught.value.reason.startswith("could not read file: ")
    with pytest.raises(ImageSkipped, match="could not read file"):
        decode_file(tmp_path)  # a directory


def test_memory_error_is_not_swallowed(monkeypatch: pytest.MonkeyPatch) -> None:
    def out_of_memory(*_: object, **__: object) -> None:
        raise MemoryError

    monkeypatch.setattr(decode.Image, "open", out_of_memory)
    with pytest.raises(MemoryError):
        decode_image(b"anything")


def test_any_pillow_exception_becomes_a_skip(monkeypatch: pytest.MonkeyPatch) -> None:
    for error in (struct.error("bad struct"), SyntaxError("bad"), EOFError(), IndexError("i")):

        def broken(*_: object, error: Exception = error, **__: object) -> None:
            raise error

        monkeypatch.setattr(decode.Image, "open", broken)
        assert skip_reason(b"data").startswith("truncated or corrupt image data: ")


def test_skip_carries_name_and_reason() -> None:
    with pytest.raises(ImageSkipped) as caught:
        decode_image(b"", name="cats/1.jpg")
    assert caught.value.name == "cats/1.jpg"
    assert str(caught.value) == "cats/1.jpg: empty file (0 bytes)"


# ------------------------------------------------------------------------------ conversions


def pixels(decoded: Decoded) -> np.ndarray:
    assert decoded.image.mode == "RGB"
    assert decoded.image.size == (decoded.width, decoded.height)
    return np.asarray(decoded.image)


def test_rgb_png_round_trips_exactly() -> None:
    source = noise()
    decoded = decode_image(encode(source, "PNG"))
    assert (decoded.mode, decoded.format) == ("RGB", "PNG")
    np.testing.assert_array_equal(pixels(decoded), np.asarray(source))


def test_greyscale_becomes_grey_rgb() -> None:
    grey = Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8) * 4)
    decoded = decode_image(encode(grey, "PNG"))
    assert decoded.mode == "L"
    out = pixels(decoded)
    for channel in range(3):
        np.testing.assert_array_equal(out[:, :, channel], np.asarray(grey))


def test_one_bit_becomes_black_and_white() -> None:
    image = Image.new("1", (4, 4), 0)
    image.putpixel((1, 1), 1)
    out = pixels(decode_image(encode(image, "PNG")))
    assert tuple(out[1, 1]) == (255, 255, 255)
    assert tuple(out[0, 0]) == (0, 0, 0)


def test_palette_with_transparency_becomes_white_where_transparent() -> None:
    image = Image.new("P", (4, 4), 0)
    image.putpalette([0, 0, 0, 255, 0, 0, 0, 0, 255] + [0] * (256 * 3 - 9))
    image.putpixel((0, 0), 1)  # red
    image.putpixel((1, 0), 2)  # blue
    data = encode(image, "PNG", transparency=0)  # index 0 (black) is transparent
    decoded = decode_image(data)
    assert decoded.mode == "P"
    out = pixels(decoded)
    assert tuple(out[3, 3]) == (255, 255, 255)  # transparent black: white, not black
    assert tuple(out[0, 0]) == (255, 0, 0)
    assert tuple(out[0, 1]) == (0, 0, 255)


def test_rgba_half_transparent_red_becomes_pink() -> None:
    image = Image.new("RGBA", (4, 4), (255, 0, 0, 128))
    image.putpixel((0, 0), (0, 255, 0, 0))  # fully transparent green
    decoded = decode_image(encode(image, "PNG"))
    assert decoded.mode == "RGBA"
    out = pixels(decoded).astype(int)
    r, g, b = out[2, 2]
    assert r == 255 and abs(g - 127) <= 1 and abs(b - 127) <= 1
    assert tuple(out[0, 0]) == (255, 255, 255)


def test_la_greyscale_with_alpha_composites_on_white() -> None:
    image = Image.new("LA", (2, 2), (0, 0))  # black, fully transparent
    out = pixels(decode_image(encode(image, "PNG")))
    assert tuple(out[0, 0]) == (255, 255, 255)


def test_rgb_png_with_transparent_colour_key() -> None:
    image = Image.new("RGB", (2, 2), (10, 20, 30))
    image.putpixel((0, 0), (200, 0, 0))
    out = pixels(decode_image(encode(image, "PNG", transparency=(10, 20, 30))))
    assert tuple(out[1, 1]) == (255, 255, 255)
    assert tuple(out[0, 0]) == (200, 0, 0)


def test_cmyk_jpeg() -> None:
    image = Image.new("CMYK", (16, 16), (0, 255, 255, 0))  # full magenta + yellow: red
    decoded = decode_image(encode(image, "JPEG", quality=95))
    assert (decoded.mode, decoded.format) == ("CMYK", "JPEG")
    r, g, b = pixels(decoded)[8, 8].astype(int)
    assert r > 240 and g < 15 and b < 15


def test_adobe_inverted_cmyk_jpeg_does_not_crash() -> None:
    # Pillow writes an Adobe APP14 marker with inverted CMYK, as Photoshop does.
    data = encode(Image.new("CMYK", (16, 16), (0, 0, 0, 255)), "JPEG")
    assert b"Adobe" in data
    out = pixels(decode_image(data))
    assert out.max() < 20  # K=255 is black


def test_16_bit_png_is_rescaled_not_clipped() -> None:
    values = np.array([[0, 32768, 65535, 300]], dtype=np.uint16)
    image = Image.fromarray(values)
    decoded = decode_image(encode(image, "PNG"))
    assert decoded.mode == "I;16"
    grey = pixels(decoded)[0, :, 0]
    assert grey[0] == 0
    assert abs(int(grey[1]) - 128) <= 1  # would be 255 if clipped
    assert grey[2] == 255
    assert grey[3] == 1  # 300 / 257: small values stay dark instead of saturating


def test_16_bit_big_endian_tiff() -> None:
    image = Image.frombytes("I;16B", (2, 1), b"\xff\xff\x80\x00")
    decoded = decode_image(encode(image, "TIFF"))
    assert decoded.mode == "I;16B"
    grey = pixels(decoded)[0, :, 0]
    assert grey[0] == 255 and abs(int(grey[1]) - 128) <= 1


def test_32_bit_int_and_float_tiff_are_stretched_over_their_range() -> None:
    ints = Image.fromarray(np.array([[-5, 100_000, 50_000]], dtype=np.int32))
    floats = Image.fromarray(np.array([[0.5, 2.0, 1.25]], dtype=np.float32))
    for image, mode in ((ints, "I"), (floats, "F")):
        decoded = decode_image(encode(image, "TIFF"))
        assert decoded.mode == mode
        grey = pixels(decoded)[0, :, 0].astype(int)
        assert grey[0] == 0 and grey[1] == 255 and abs(grey[2] - 128) <= 1


def test_exif_orientation_6_rotates_to_portrait() -> None:
    image = Image.new("RGB", (20, 10), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, 5, 5))  # red block in the stored top-left corner
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    decoded = decode_image(encode(image, "JPEG", quality=95, exif=exif.tobytes()))
    assert (decoded.width, decoded.height) == (10, 20)
    out = pixels(decoded).astype(int)
    assert out[1, 8, 0] > 200 and out[1, 8, 2] < 60  # top-right corner is red now
    assert out[1, 1, 2] > 200  # top-left is blue
    assert out[18, 8, 2] > 200  # bottom-right is blue


def test_broken_exif_keeps_the_image(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_getexif(self: Image.Image) -> None:
        raise SyntaxError("bad EXIF")

    monkeypatch.setattr(Image.Image, "getexif", broken_getexif)
    decoded = decode_image(encode(noise(20, 10), "PNG"))
    assert (decoded.width, decoded.height) == (20, 10)


def test_animated_gif_gives_first_frame() -> None:
    frames = [Image.new("RGB", (8, 8), colour) for colour in ("red", "blue", "lime")]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    decoded = decode_image(data)
    assert decoded.format == "GIF"
    out = pixels(decoded)
    assert tuple(out[4, 4]) == (255, 0, 0)


def test_gif_with_transparent_index_composites_on_white() -> None:
    image = Image.new("P", (4, 4), 1)
    image.putpalette([0, 0, 0, 0, 128, 0] + [0] * (256 * 3 - 6))
    image.putpixel((0, 0), 0)
    out = pixels(decode_image(encode(image, "GIF", transparency=0)))
    assert tuple(out[0, 0]) == (255, 255, 255)
    assert tuple(out[2, 2]) == (0, 128, 0)


@pytest.mark.parametrize(
    ("fmt", "params"),
    [
        ("TIFF", {}),
        ("BMP", {}),
        ("WEBP", {"lossless": True}),
        ("PNG", {}),
    ],
)
def test_lossless_formats_decode_exactly(fmt: str, params: dict[str, object]) -> None:
    source = noise(33, 17)
    decoded = decode_image(encode(source, fmt, **params))
    assert decoded.format == fmt
    assert (decoded.width, decoded.height) == (33, 17)
    np.testing.assert_array_equal(pixels(decoded), np.asarray(source))


def test_lossy_webp_and_animated_webp() -> None:
    frames = [Image.new("RGB", (8, 8), colour) for colour in ("red", "blue")]
    data = encode(frames[0], "WEBP", save_all=True, append_images=frames[1:], lossless=True)
    out = pixels(decode_image(data))
    assert tuple(out[4, 4]) == (255, 0, 0)
    lossy = decode_image(encode(noise(), "WEBP", quality=80))
    assert lossy.format == "WEBP" and lossy.image.size == (64, 48)


def test_multi_picture_jpeg_counts_as_jpeg() -> None:
    frames = [Image.new("RGB", (8, 8), "red"), Image.new("RGB", (8, 8), "blue")]
    data = encode(frames[0], "MPO", save_all=True, append_images=frames[1:])
    decoded = decode_image(data)
    assert decoded.format == "JPEG"
    assert pixels(decoded)[4, 4, 0] > 240


def test_decode_file_matches_decode_image(tmp_path: Path) -> None:
    data = encode(noise(), "PNG")
    path = tmp_path / "a.png"
    path.write_bytes(data)
    from_file, from_bytes = decode_file(path), decode_image(data)
    assert (from_file.mode, from_file.format) == (from_bytes.mode, from_bytes.format)
    np.testing.assert_array_equal(pixels(from_file), pixels(from_bytes))


def test_decoded_image_outlives_the_file(tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    path.write_bytes(encode(noise(), "PNG"))
    decoded = decode_file(path)
    path.unlink()
    assert decoded.image.resize((4, 4)).size == (4, 4)
