"""Decode one image file safely and turn it into the RGB pixels every importer expects.

A dataset folder is untrusted input: it holds empty files, half-downloaded JPEGs, text files
with an image suffix, icons, 16-bit scans and now and then a decompression bomb. Each of those
must become one line in the import report ("skipped: truncated or corrupt image data") and
never a traceback, a frozen import or a machine out of memory. So this module:

* caps the pixel count before any pixel is decoded (``MAX_IMAGE_PIXELS``), with its own check
  rather than by changing the process-wide warning filters, which are not thread-safe and which
  pytest and other hosts reset;
* decodes the whole image inside the ``try`` (``Image.open`` only reads the header), so a
  truncated file is caught here and not later in a worker; ``ImageFile.LOAD_TRUNCATED_IMAGES``
  stays off on purpose, because padding a half image with grey silently poisons a dataset;
* accepts only the formats in ``SUPPORTED_FORMATS`` even though Pillow can open more: an icon
  or a PostScript file in a photo folder is almost always a mistake, and some of Pillow's rarer
  plugins (EPS runs Ghostscript) are not code we want to run on untrusted files;
* converts every colour mode to RGB the way a person would expect to see it: transparency
  composited on white (not dropped, which turns transparent areas into whatever colour the
  hidden pixels happen to hold, often black), 16-bit and float images rescaled from their real
  range rather than clipped to 255 (clipping turns most 16-bit scans pure white).

A caller that will shrink the image anyway may pass ``target``, the smallest size it needs.
A JPEG is then decoded through libjpeg's DCT scaling (Pillow's draft mode) at 1/2, 1/4 or 1/8
of its size, the smallest still at least the target (``_DRAFT_GAP``): a 12 MP photo bound
for 64 px decodes and resizes about 3 times faster (131 → 45 ms on a noisy quality-90 file;
the entropy decoding that scaling cannot skip is most of what remains) and never holds its
full 36 MB of pixels. Scaling in the DCT averages whole 8×8 blocks, so it is
a proper low-pass reduction like the box reduce resize.py does first, and the image that comes
out after resizing matches the full decode's to within 1.5 levels of 255 on average
(tests/engine/test_draft_decode.py measures it on real photographs). Other formats have no
cheap reduced decode and take the full path unchanged.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

# The largest image, in pixels, that we decode. 40 megapixels covers every camera and phone
# photo a person is likely to drop into a dataset (a 40 MP RGB image is 120 MB decoded), while a
# crafted file claiming 20000×20000 is refused from its header alone. Pillow's own limit is set
# to the same number so any other Pillow use in the process gets the same protection; Pillow
# only warns between 1× and 2× its limit, which is why decode_image also checks explicitly.
MAX_IMAGE_PIXELS = 40_000_000
Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS

# Pillow format names we decode. These are the formats datasets actually ship in.
SUPPORTED_FORMATS: frozenset[str] = frozenset({"JPEG", "PNG", "BMP", "GIF", "TIFF", "WEBP"})

# Pillow reports a JPEG with an extra embedded picture (common from phones and stereo cameras)
# as "MPO". Its first frame is an ordinary JPEG, so it is one of ours under its familiar name.
_FORMAT_ALIASES: dict[str, str] = {"MPO": "JPEG"}

# File suffixes (lower case, with the dot) that importers treat as images. The suffix only
# decides which files to try; decode_image always identifies the format from the content.
IMAGE_SUFFIXES: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
)

# Modes that carry an alpha channel, composited on white.
_ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})
# 16-bit unsigned modes: the full 0..65535 range maps onto 0..255.
_UINT16_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N"})
# Wide modes with no fixed range (32-bit int, 32-bit float): min..max maps onto 0..255.
_WIDE_MODES = frozenset({"I", "F"})

# How much larger than the target a draft-decoded JPEG stays: 1, the smallest reduced size
# still at least the target, as a plain Pillow draft() does. Leaving resize.py's bilinear 2× to
# do (Pillow's thumbnail() default) matches a full decode more closely (mean 0.4 vs 1.5 levels
# of 255 on real photos, largest 8 vs 21 at the sharpest edges), but decodes 4× the pixels
# when the target is 224: 13.5 vs 9.7 ms a camera photo (benchmarks/import_scale.py), 1.6×
# a process pool's plain draft decode where the issue asks for 1.25×. The differences stay
# invisible (the 99.9th percentile is at most 13 levels).
_DRAFT_GAP = 1

_BOMB_PIXELS = re.compile(r"\((\d+) pixels\)")


class ImageSkipped(Exception):
    """An image file that cannot be used, with ``reason``: a sentence for the import report.

    It is an expected outcome (every real dataset has a few), so callers collect these into
    the report instead of failing the import.
    """

    def __init__(self, reason: str, name: str = "") -> None:
        super().__init__(f"{name}: {reason}" if name else reason)
        self.reason = reason
        self.name = name


@dataclass(frozen=True)
class Decoded:
    """One decoded image: RGB pixels plus what the file originally was.

    ``image`` is always mode "RGB", at the original size unless the caller passed a
    ``target`` and the file is a JPEG (then it may be reduced by 2, 4 or 8, see the module
    docstring); ``width``/``height`` are the original size after EXIF orientation (so they
    match ``image.size`` whenever the image was not reduced); ``mode`` is the file's own Pillow
    mode ("P", "RGBA", "I;16", ...) so the import report can say "12 images were 16-bit" or
    "transparency was flattened onto white".
    """

    image: Image.Image
    width: int
    height: int
    mode: str
    format: str
    extent: tuple[float, float] | None = None
    """Where the picture ends inside ``image``, in its pixels, when a reduced decode of a size
    that the scale does not divide left a partly filled last column or row (2001 px at 1/8 is
    251 columns holding 250.125 of picture); None when the picture fills ``image``. Pass it to
    ``resize_image`` so the resize maps exactly the picture, not the padding, onto the target."""


def decode_image(data: bytes, name: str = "", target: tuple[int, int] | None = None) -> Decoded:
    """Decode one image held in memory; raise ImageSkipped with a reason if it can't be used.

    ``name`` is only used to label the exception (the file's path or archive member name).
    ``target`` (width, height) is the smallest size the caller will resize to; with it a JPEG
    may come back reduced (see the module docstring), without it every image is full size.
    """
    if not data:
        raise ImageSkipped("empty file (0 bytes)", name)
    return _decode_stream(io.BytesIO(data), name, target)


def decode_file(path: Path, target: tuple[int, int] | None = None) -> Decoded:
    """Decode one image file; raise ImageSkipped with a reason if it can't be used.

    The file is streamed to Pillow rather than read into memory first, so a multi-gigabyte
    file with an image suffix costs nothing beyond its header when it is refused.
    """
    name = str(path)
    try:
        with open(path, "rb") as fp:
            if _is_empty(fp):
                raise ImageSkipped("empty file (0 bytes)", name)
            return _decode_stream(fp, name, target)
    except OSError as exc:
        # _decode_stream turns Pillow's OSErrors into ImageSkipped, so what reaches here is the
        # file system's: missing, a directory, no permission, an I/O error.
        raise ImageSkipped(f"could not read file: {exc.strerror or exc}", name) from exc


def _is_empty(fp: IO[bytes]) -> bool:
    fp.seek(0, io.SEEK_END)
    empty = fp.tell() == 0
    fp.seek(0)
    return empty


def _decode_stream(fp: IO[bytes], name: str, target: tuple[int, int] | None = None) -> Decoded:
    """Identify, check, fully decode and convert one image from a seekable binary stream.

    With a ``target`` a JPEG is decoded reduced; everything below still runs inside the same
    ``try``, so a file that fails in draft mode is skipped with its reason just as at full size.
    """
    try:
        with Image.open(fp) as img:
            fmt = _FORMAT_ALIASES.get(img.format or "", img.format or "unknown")
            # Checked before load(): refusing an unsupported format or a bomb must cost only the
            # header read, and some plugins do real work (or run external programs) in load().
            if fmt not in SUPPORTED_FORMATS:
                raise ImageSkipped(f"unsupported image format {fmt}", name)
            _check_pixels(img.size, name)
            full_width, full_height = img.size
            scale = 1
            if target is not None and fmt == "JPEG":
                scale = _draft(img, target)
            img.load()  # decodes everything (the first frame of an animation): truncation shows
            mode = img.mode
            reduced = img.size != (full_width, full_height)
            oriented = _apply_orientation(img)
            if reduced and oriented is not img and _swaps_axes(img):
                full_width, full_height = full_height, full_width
            rgb = _to_rgb(oriented, owned=oriented is not img)
    except ImageSkipped:
        raise
    except MemoryError:
        # Not a property of this file: the machine is out of memory, and skipping every
        # following image with the same reason would hide that. Let the import fail.
        raise
    except Exception as exc:  # Pillow plugins raise nearly anything on bad data
        raise ImageSkipped(_reason_for(exc), name) from exc
    extent = None
    if not reduced:
        full_width, full_height = rgb.size
    elif (full_width / scale, full_height / scale) != rgb.size:
        extent = (full_width / scale, full_height / scale)
    return Decoded(
        image=rgb, width=full_width, height=full_height, mode=mode, format=fmt, extent=extent
    )


def _draft(img: Image.Image, target: tuple[int, int]) -> int:
    """Ask libjpeg for the strongest DCT scaling (8, 4, 2) that leaves at least the target.

    Returns the scale used (1 for none). libjpeg rounds a reduced side up, so 1499 rows at
    1/8 become 188 rows of which the last is only partly picture (187.375 rows of it): resized
    as it is, that stretches the picture by 0.3 % and moves sharp edges by a pixel or more
    (about 20 levels at such edges, measured in tests/engine/test_draft_decode.py). The caller
    therefore records the picture's exact extent (``Decoded.extent``) and the resize maps only
    that onto the target. The partial edge sits at the right and bottom as stored, so a file
    whose EXIF orientation would move it elsewhere is only reduced by a scale that divides both
    sides (camera and phone sizes, 4032×3024 or 6000×4000, divide by 8 anyway).
    Both sides are measured against the target's longer side, so an EXIF rotation (applied
    after decoding) can never leave either side short. The mode stays the file's own, so the
    colour conversion in _to_rgb is the one a full decode gets.
    """
    width, height = img.size
    need = max(1, *target) * _DRAFT_GAP
    upright = _orientation(img) in (0, 1)
    for scale in (8, 4, 2):
        divides = width % scale == 0 and height % scale == 0
        if (divides or upright) and min(width, height) // scale >= need:
            img.draft(img.mode, (width // scale, height // scale))
            break
    # The scale libjpeg was set to, read back from the size it will produce.
    for scale in (8, 4, 2):
        if img.size == (-(-width // scale), -(-height // scale)):
            return scale
    return 1


def _orientation(img: Image.Image) -> int:
    """The EXIF orientation tag (1 = as stored); a malformed EXIF block counts as 1."""
    try:
        return int(img.getexif().get(ExifTags.Base.Orientation, 1))
    except Exception:
        return 1


def _swaps_axes(img: Image.Image) -> bool:
    """Whether the EXIF orientation turns the image a quarter (tags 5 to 8)."""
    return _orientation(img) in (5, 6, 7, 8)


def _check_pixels(size: tuple[int, int], name: str) -> None:
    width, height = size
    if width <= 0 or height <= 0:
        raise ImageSkipped(f"image has no pixels ({width}×{height})", name)
    if width * height > MAX_IMAGE_PIXELS:
        raise ImageSkipped(_bomb_reason(width * height), name)


def _bomb_reason(pixels: int) -> str:
    return f"decompression bomb: {pixels:,} pixels exceeds the limit of {MAX_IMAGE_PIXELS:,}"


def _reason_for(exc: Exception) -> str:
    """A report sentence for an exception Pillow raised while opening or decoding."""
    if isinstance(exc, Image.DecompressionBombError | Image.DecompressionBombWarning):
        # Raised by Image.open itself above twice Pillow's limit (the error), or between 1× and
        # 2× when a host runs with warnings as errors; either way nothing was decoded.
        match = _BOMB_PIXELS.search(str(exc))
        if match:
            return _bomb_reason(int(match.group(1)))
        return f"decompression bomb: {exc}"
    if isinstance(exc, UnidentifiedImageError):
        return "not an image (no known image format)"
    detail = str(exc).strip() or type(exc).__name__
    return f"truncated or corrupt image data: {detail}"


def _apply_orientation(img: Image.Image) -> Image.Image:
    """Rotate/flip as the EXIF orientation tag says, so the pixels face the way people saw them.

    Returns ``img`` itself when there is nothing to do. A broken EXIF block on otherwise good
    pixels keeps the image as stored: losing a usable training image over unreadable metadata
    would be worse than an occasional sideways one.
    """
    try:
        if img.getexif().get(ExifTags.Base.Orientation, 1) in (0, 1):
            return img
        oriented = ImageOps.exif_transpose(img)
    except Exception:  # malformed EXIF raises many kinds of errors
        return img
    return oriented if oriented is not None else img


def _to_rgb(img: Image.Image, owned: bool) -> Image.Image:
    """Convert any Pillow mode to RGB the way the image looks on screen.

    ``owned`` says ``img`` is already a fresh copy. If not, it is the opened file's image,
    whose pixels Pillow frees when the file is closed, so an RGB image must still be copied.
    """
    mode = img.mode
    if mode in _UINT16_MODES or mode in _WIDE_MODES:
        return _rescale_to_rgb(img)
    if mode in _ALPHA_MODES or "transparency" in img.info:
        # Covers RGBA/LA/PA, palette images with a transparent index (GIF, PNG tRNS) and RGB
        # or L PNGs with a transparent colour: Pillow's RGBA conversion applies all of them.
        return _flatten_on_white(img.convert("RGBA"))
    if mode == "RGB":
        return img if owned else img.copy()
    # 1, L, P, CMYK (Pillow already un-inverts Adobe CMYK JPEGs while decoding), YCbCr, HSV.
    # Modes Pillow cannot convert (e.g. LAB) raise ValueError, which becomes a skip.
    return img.convert("RGB")


def _flatten_on_white(rgba: Image.Image) -> Image.Image:
    """Composite on white using alpha, so half-transparent red becomes pink, not red or black."""
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def _rescale_to_rgb(img: Image.Image) -> Image.Image:
    """Map a 16-bit or float image to 8 bits by its value range, then to grey RGB.

    Pillow's own convert("L") clips these modes at 255, which turns a typical 16-bit scan
    (values in the thousands) into a white rectangle. Unsigned 16-bit data has a known full
    range, so it is divided by 257 (65535 → 255, and the mapping is the exact inverse of the
    usual 8→16-bit widening). 32-bit int and float images have no such range, so their own
    min..max is stretched to 0..255; a constant image keeps its value clipped to 0..255.
    """
    values = np.asarray(img)
    transparent = _transparent_mask(img, values)
    if img.mode in _UINT16_MODES:
        grey = np.rint(values.astype(np.float64) / 257.0)
    else:
        wide = values.astype(np.float64)
        finite = np.isfinite(wide)
        if not finite.any():
            grey = np.zeros(wide.shape)
        else:
            low, high = float(wide[finite].min()), float(wide[finite].max())
            if high > low:
                grey = np.rint((wide - low) * (255.0 / (high - low)))
            else:
                grey = np.full(wide.shape, np.clip(low, 0.0, 255.0))
            grey[~finite] = 0.0
    grey8 = np.clip(grey, 0, 255).astype(np.uint8)
    if transparent is not None:
        grey8[transparent] = 255  # a transparent grey level flattens onto white, like RGBA
    return Image.fromarray(grey8).convert("RGB")


def _transparent_mask(img: Image.Image, values: np.ndarray) -> np.ndarray | None:
    """Pixels equal to a 16-bit PNG's transparent grey level (its tRNS chunk), if any."""
    key = img.info.get("transparency")
    if isinstance(key, int) and not isinstance(key, bool):
        return values == key
    return None
