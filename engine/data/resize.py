"""Resize policies: how an image of any shape becomes the dataset's fixed H×W×C.

Each policy is a small function in a registry (name → label, function), so the GUI lists them
from ``resize_policy_names()``/``resize_policy_label()`` and a new policy is one decorated
function, never another branch in an if-chain.

Filter choice: bilinear with ``reducing_gap``. Pillow's bilinear is not the aliasing
"sample four neighbours" kind that OpenCV's INTER_LINEAR and an un-antialiased
``torch.nn.functional.interpolate`` are: Pillow widens the triangle kernel by the reduction
factor, so a 4000 px photo shrunk to 64 px averages every source pixel instead of skipping
most of them. That makes it non-aliasing and it is also what torchvision's PIL path uses, so a
model trained here sees the same pixels a torchvision pipeline produces at predict time.
``reducing_gap=3.0`` first shrinks big images by an integer factor with a cheap box reduce,
then resamples the last ≤3× step with the full filter: several times faster for phone-size
photos and, per Pillow's documentation, indistinguishable from fair resampling at 3.0.
LANCZOS would be sharper but slower and rings around edges; BOX alone blurs upscales.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageStat

_FILTER = Image.Resampling.BILINEAR
_REDUCING_GAP = 3.0

# (image, height, width, extent) -> image of exactly width×height, same mode as the input.
# ``extent`` is the picture's (width, height) inside ``image``, anchored at the top left: the
# image's own size, or less after a reduced JPEG decode whose last column or row is partial.
PolicyFunction = Callable[[Image.Image, int, int, tuple[float, float]], Image.Image]


@dataclass(frozen=True)
class _Policy:
    name: str
    label: str
    function: PolicyFunction


_POLICIES: dict[str, _Policy] = {}


def register_resize_policy(name: str, label: str) -> Callable[[PolicyFunction], PolicyFunction]:
    """Register ``function(image, height, width, extent) -> image`` as resize policy ``name``.

    ``label`` is what the GUI shows. Registering a name twice is a programming error.
    """

    def decorate(function: PolicyFunction) -> PolicyFunction:
        if name in _POLICIES:
            raise ValueError(f"resize policy {name!r} is already registered")
        _POLICIES[name] = _Policy(name, label, function)
        return function

    return decorate


def resize_policy_names() -> list[str]:
    """Registered policy names, in registration order (the order the GUI lists them)."""
    return list(_POLICIES)


def resize_policy_label(name: str) -> str:
    """The human label of policy ``name``."""
    return _policy(name).label


def _policy(name: str) -> _Policy:
    try:
        return _POLICIES[name]
    except KeyError:
        known = ", ".join(repr(n) for n in _POLICIES)
        raise ValueError(f"unknown resize policy {name!r}; choose one of {known}") from None


def resize_image(
    image: Image.Image,
    height: int,
    width: int,
    policy: str = "squash",
    channels: int = 3,
    extent: tuple[float, float] | None = None,
) -> np.ndarray:
    """Resize ``image`` to a uint8 array shaped (height, width, channels) by ``policy``.

    ``channels`` is 3 (RGB) or 1 (greyscale by Pillow's "L" conversion, ITU-R 601 luma, with
    the trailing axis kept so every dataset is H×W×C). The colour conversion happens before
    resizing: for greyscale it means filtering one channel instead of three. ``extent`` is
    ``Decoded.extent``: how much of ``image`` is picture after a reduced decode.
    """
    chosen = _policy(policy)
    if height < 1 or width < 1:
        raise ValueError(f"target size must be at least 1×1, got {height}×{width}")
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 (greyscale) or 3 (RGB), got {channels}")
    mode = "L" if channels == 1 else "RGB"
    source = image if image.mode == mode else image.convert(mode)
    resized = chosen.function(source, height, width, extent or source.size)
    if resized.size != (width, height) or resized.mode != mode:
        raise RuntimeError(
            f"resize policy {policy!r} returned {resized.mode} {resized.size}, "
            f"expected {mode} {(width, height)}"
        )
    pixels = np.asarray(resized, dtype=np.uint8)
    return pixels.reshape(height, width, channels)


def _resize(
    image: Image.Image,
    size: tuple[int, int],
    box: tuple[float, float, float, float] | None = None,
) -> Image.Image:
    if box is not None and box == (0, 0, *image.size):
        box = None  # the whole image: Pillow's own default, to the last bit
    return image.resize(size, _FILTER, box=box, reducing_gap=_REDUCING_GAP)


@register_resize_policy("squash", "Squash to size (ignore aspect ratio)")
def _squash(
    image: Image.Image, height: int, width: int, extent: tuple[float, float]
) -> Image.Image:
    """Stretch to exactly height×width: keeps every pixel of content, distorts shapes."""
    return _resize(image, (width, height), box=(0, 0, *extent))


@register_resize_policy("center_crop", "Crop the centre (keep aspect ratio)")
def _center_crop(
    image: Image.Image, height: int, width: int, extent: tuple[float, float]
) -> Image.Image:
    """Scale so the short side fits, cut off the overflow equally on both sides.

    Done as one resize of a fractional source box rather than resize-then-crop, so there is one
    resampling pass and no off-by-one from rounding the intermediate size.
    """
    src_w, src_h = extent
    # Compare aspect ratios by cross-multiplying (integers unless the extent is fractional):
    # with divisions, equal ratios can come out a hair apart and give a box a hair outside the
    # image, which Pillow rejects.
    if src_w * height > width * src_h:  # source is wider: trim left and right
        crop_w = min(float(src_w), src_h * width / height)
        left = (src_w - crop_w) / 2
        box = (left, 0.0, left + crop_w, float(src_h))
    else:  # source is taller (or the same shape): trim top and bottom
        crop_h = min(float(src_h), src_w * height / width)
        top = (src_h - crop_h) / 2
        box = (0.0, top, float(src_w), top + crop_h)
    return _resize(image, (width, height), box=box)


@register_resize_policy("pad", "Fit inside and pad (keep aspect ratio)")
def _pad(image: Image.Image, height: int, width: int, extent: tuple[float, float]) -> Image.Image:
    """Scale so the long side fits, centre it, fill the rest with the image's mean colour.

    Mean colour rather than black: a black band is a hard artificial edge that early
    convolutions respond to strongly, and when aspect ratio correlates with a class (portrait
    photos from one source) such a band becomes an easy shortcut feature. A band in the
    image's own average colour is low-contrast and adds no information the image didn't hold.
    """
    src_w, src_h = extent
    scale = min(width / src_w, height / src_h)
    fit_w = min(width, max(1, round(src_w * scale)))
    fit_h = min(height, max(1, round(src_h * scale)))
    fitted = _resize(image, (fit_w, fit_h), box=(0, 0, src_w, src_h))
    if (fit_w, fit_h) == (width, height):
        return fitted
    mean = [round(v) for v in ImageStat.Stat(fitted).mean]
    fill: int | tuple[int, ...] = mean[0] if image.mode == "L" else tuple(mean)
    canvas = Image.new(image.mode, (width, height), fill)
    canvas.paste(fitted, ((width - fit_w) // 2, (height - fit_h) // 2))
    return canvas
