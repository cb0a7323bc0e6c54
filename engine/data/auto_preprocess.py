"""What "auto" means for the image size and channels, chosen from the images before decoding.

The cache is keyed by the preprocessing (size, channels, resize), so the choice has to be made
before anything is decoded. It looks at image *headers* only: ``PIL.Image.open`` reads the
size and mode without decoding pixels. A seeded, class-stratified sample of at most
``SAMPLE`` files is enough to see what a folder holds, so choosing costs a few hundred file
opens (tens of milliseconds) whether the folder has 500 images or 100,000. A header that
cannot be read is just left out of the sample: the decoder reports that file later, with its
reason, like any other bad file.

The rules (``choose_for_files``), deterministic (same spec and same files, same choice; no
dependence on the machine, so a run's spec means the same thing everywhere):

* Size. When at least ``ALIKE_SHARE`` of the sampled images have the same size and its longer
  side is at most ``AUTO_MAX``, the images keep their own size (the longer side, so no detail is
  lost, when they are not square). Otherwise the size is the median shorter side, capped at
  ``AUTO_MAX``: at the median shorter side most images shrink rather than grow (enlarging
  adds compute and no information).

  ``AUTO_MAX`` is 64, the fixed size "auto" meant for files before. Auto never goes above it,
  so choosing from the data can only make training faster than it was, never slower: compute
  grows with the square of the side, and a CPU is where most people start. A person with a GPU
  and large photos sets a size; an explicit size always wins.

* Size, for published weights. A network starting from published weights (``IMAGENET1K_V2``)
  gets the side they were trained and evaluated at (their crop size, 224 for most), whatever
  the images are: the weights' filters and the stem's strides were learnt at that scale. The
  caller passes what the weights expect (``weights``, see
  engine/models/published_weights.py ``expected_preprocessing``); an explicit size still wins.

* Channels. One channel when every sampled image is greyscale (grey modes, or a palette of
  greys), else three. Greyscale trains on a third of the data with no loss. An explicit
  channel count always wins (pretrained weights, for one, want three).

Arrays (built-in samples, ``.npz``) arrive decoded: a square array keeps its own size (a
non-square one gets ``AUTO_MAX``), and one channel when the arrays hold one channel or three
equal ones.

Every choice comes with ``reason``: one sentence for the import report, ``cnn-lab data
inspect`` and the Data panel, saying what was chosen and why.

A run records the size and channels it trained at (the weights' input shape, and the run
summary's ``input_shape``); ``as_trained`` pins a dataset spec to them, so evaluating,
predicting, reporting on or resuming a run rebuilds the input it trained on even if auto would
choose differently today (the folder changed, or these rules did).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from cnn_lab.engine.data.cache import Preprocess
from cnn_lab.engine.data.listing import ArrayListing, FileListing
from cnn_lab.engine.data.splits import limit_indices
from cnn_lab.engine.specs import DatasetSpec

AUTO_MAX = 64
"""The largest side auto picks: the old fixed default for files, so auto is never slower."""
SAMPLE = 256
"""Headers read to choose: enough to see a folder's sizes and modes, cheap at any size."""
SAMPLE_SEED = 0
"""Fixed, not the split seed: a sweep over split seeds must not change the image size."""
ALIKE_SHARE = 0.95
"""Share of the sample that must have one size for the images to count as alike."""
MIN_SIZE = 8
"""DatasetSpec's smallest image size."""
GREY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})
"""Pillow modes without colour (alpha is flattened onto white, which stays grey)."""
_PALETTE_MODES = frozenset({"P", "PA"})
_SUPPORTED = frozenset({"JPEG", "MPO", "PNG", "BMP", "GIF", "TIFF", "WEBP"})
_EXIF_ORIENTATION = 274
_SWAPPING_ORIENTATIONS = frozenset({5, 6, 7, 8})


class WeightsInput(Protocol):
    """What published weights expect, as far as choosing a size goes (published_weights.py's
    ``Expected`` is one)."""

    @property
    def weights(self) -> str: ...

    @property
    def size(self) -> int | None: ...


@dataclass(frozen=True)
class Choice:
    """The preprocessing a dataset gets, and one sentence saying why."""

    prep: Preprocess
    reason: str


@dataclass(frozen=True)
class Header:
    """What an image file's header says: its size as shown (EXIF rotation applied) and colour."""

    width: int
    height: int
    grey: bool


def read_header(path: Path) -> Header | None:
    """The file's size and whether it is greyscale, without decoding; None if unreadable."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            if img.format not in _SUPPORTED:
                return None
            width, height = img.size
            if width <= 0 or height <= 0:
                return None
            if img.format in ("JPEG", "MPO", "TIFF", "WEBP"):
                orientation = img.getexif().get(_EXIF_ORIENTATION, 1)
                if orientation in _SWAPPING_ORIENTATIONS:
                    width, height = height, width
            return Header(width, height, _is_grey(img))
    except MemoryError:
        raise
    except Exception:  # Pillow plugins raise nearly anything on bad data; the decoder reports it
        return None


def _is_grey(img: object) -> bool:
    mode = getattr(img, "mode", "")
    if mode in GREY_MODES:
        return True
    if mode in _PALETTE_MODES:
        palette = img.getpalette() or []  # type: ignore[attr-defined]
        rgb = np.asarray(palette[: len(palette) // 3 * 3]).reshape(-1, 3)
        return bool(len(rgb)) and bool((rgb == rgb[:, :1]).all())
    return False


def sample_headers(listing: FileListing, sample: int = SAMPLE) -> tuple[list[Header], int]:
    """Headers of a seeded, class-stratified sample of the listing; and how many were tried."""
    entries = listing.entries
    if not entries:
        return [], 0
    lookup = {name: i for i, name in enumerate(listing.classes)}
    labels = np.array([lookup.get(e.label, 0) for e in entries], dtype=np.int64)
    picked = limit_indices(labels, min(sample, len(entries)), SAMPLE_SEED)
    headers = [read_header(entries[int(i)].path) for i in picked]
    return [h for h in headers if h is not None], len(picked)


def choose_for_files(
    listing: FileListing, spec: DatasetSpec, weights: WeightsInput | None = None
) -> Choice:
    """The preprocessing for image files: the spec's where it is explicit, else chosen."""
    by_weights = _weights_size(spec, weights)
    headers, tried = (
        sample_headers(listing)
        if (spec.image_size is None and by_weights is None) or spec.channels is None
        else ([], 0)
    )
    size_why = ""
    if spec.image_size is not None:
        size = spec.image_size
    elif by_weights is not None:
        size, size_why = by_weights
    elif not headers:
        size = AUTO_MAX
        size_why = (
            f"no image header could be read, so the {AUTO_MAX} px default"
            if tried
            else f"no images yet, so the {AUTO_MAX} px default"
        )
    else:
        size, size_why = _size_from(headers, tried, len(listing.entries))
    channels_why = ""
    if spec.channels is not None:
        channels = spec.channels
    elif not headers:
        channels = 3
        channels_why = "" if size_why else "no image header could be read"
    else:
        colour = sum(not h.grey for h in headers)
        channels = 3 if colour else 1
        channels_why = (
            f"{colour:,} of {len(headers):,} are in colour"
            if 0 < colour < len(headers)
            else ("all are in colour" if colour else "all are greyscale")
        )
    prep = Preprocess(size, channels, spec.resize)
    return Choice(prep, _sentence(prep, spec, size_why, channels_why))


def _size_from(headers: list[Header], tried: int, total: int) -> tuple[int, str]:
    shapes = Counter((h.width, h.height) for h in headers)
    (width, height), count = shapes.most_common(1)[0]
    sampled = f"{len(headers):,} images" if tried >= total else f"{len(headers):,} sampled images"
    if tried > len(headers):
        sampled += f" ({tried - len(headers):,} unreadable)"
    elif tried < total:
        sampled += f" (of {total:,})"
    alike = count >= ALIKE_SHARE * len(headers)
    which = "all" if count == len(headers) else f"{count:,} of"
    if alike and max(width, height) <= AUTO_MAX:
        side = max(MIN_SIZE, width, height)
        if side > max(width, height):
            kept = f"enlarged to the smallest size, {side} px"
        elif width == height:
            kept = "kept at their own size"
        else:
            kept = "kept at their longer side so no detail is lost"
        return side, f"{which} {sampled} are {width}×{height}, {kept}"
    short = sorted(min(h.width, h.height) for h in headers)
    median = short[(len(short) - 1) // 2]  # the lower median: an image size, never a half
    side = max(MIN_SIZE, min(AUTO_MAX, median))
    if alike:
        return side, (
            f"{which} {sampled} are {width}×{height}; auto goes no higher than {AUTO_MAX} px "
            "so training stays quick (set a size to train larger)"
        )
    widths = sorted(h.width for h in headers)
    heights = sorted(h.height for h in headers)
    mid = (len(headers) - 1) // 2
    if median <= AUTO_MAX:
        why = "the median shorter side, so most images shrink rather than grow"
    else:
        why = f"auto's limit (set a size to train larger than {AUTO_MAX} px)"
    return side, (
        f"sizes vary over the {sampled} (median {widths[mid]}×{heights[mid]}): {side} px is {why}"
    )


def choose_for_arrays(
    listing: ArrayListing, spec: DatasetSpec, weights: WeightsInput | None = None
) -> Choice:
    """The preprocessing for arrays that arrive decoded (samples, ``.npz``)."""
    _, height, width, stored = listing.images.shape
    by_weights = _weights_size(spec, weights)
    size_why = ""
    if spec.image_size is not None:
        size = spec.image_size
    elif by_weights is not None:
        size, size_why = by_weights
    elif height == width:
        size, size_why = height, f"kept at the arrays' own {width}×{height}"
    else:
        size = AUTO_MAX
        size_why = f"the arrays are {width}×{height}, not square, so the {AUTO_MAX} px default"
    channels_why = ""
    if spec.channels is not None:
        channels = spec.channels
    elif stored == 1:
        channels, channels_why = 1, "the arrays hold one channel"
    elif _arrays_grey(listing):
        channels, channels_why = 1, "all sampled images are greyscale (three equal channels)"
    else:
        channels, channels_why = 3, "the images are in colour"
    prep = Preprocess(size, channels, spec.resize)
    return Choice(prep, _sentence(prep, spec, size_why, channels_why))


def _weights_size(spec: DatasetSpec, weights: WeightsInput | None) -> tuple[int, str] | None:
    """The published weights' input side and why, when auto is to choose the size."""
    if spec.image_size is not None or weights is None or not weights.size:
        return None
    side = max(MIN_SIZE, int(weights.size))
    return side, f"the {weights.weights} weights expect {side} px"


def _arrays_grey(listing: ArrayListing) -> bool:
    images = listing.images
    if len(images) == 0 or images.shape[-1] != 3:
        return False
    picked = limit_indices(listing.labels, min(SAMPLE, len(images)), SAMPLE_SEED)
    sample = images[picked]
    return bool(
        (sample[..., 0] == sample[..., 1]).all() and (sample[..., 1] == sample[..., 2]).all()
    )


def _sentence(prep: Preprocess, spec: DatasetSpec, size_why: str, channels_why: str) -> str:
    """'28 px, 1 channel (auto): all 256 images sampled are 28×28, kept …; all are greyscale.'"""
    size_auto, channels_auto = spec.image_size is None, spec.channels is None
    size = f"{prep.size} px"
    channels = f"{prep.channels} channel{'s' if prep.channels != 1 else ''}"
    if size_auto and channels_auto:
        head = f"{size}, {channels} (auto)"
    elif size_auto:
        head = f"{size} (auto), {channels} (as set)"
    elif channels_auto:
        head = f"{size} (as set), {channels} (auto)"
    else:
        return f"{size}, {channels}, as set."
    why = "; ".join(part for part in (size_why, channels_why) if part)
    return f"{head}: {why}." if why else f"{head}."


def as_trained(dataset: DatasetSpec, input_shape: Sequence[int] | None) -> DatasetSpec:
    """``dataset`` with the size and channels a run trained at, ``(channels, height, width)``.

    What a run recorded wins over what auto would choose now, so the same images come back.
    Unknown (None, or a non-square shape no spec can name) leaves the spec as it is.
    """
    if not input_shape or len(input_shape) != 3:
        return dataset
    channels, height, width = (int(v) for v in input_shape)
    if height != width or channels not in (1, 3):
        return dataset
    if dataset.image_size == height and dataset.channels == channels:
        return dataset
    return dataset.model_copy(update={"image_size": height, "channels": channels})


def legacy_input(dataset: DatasetSpec) -> tuple[int, int, int] | None:
    """What a run recorded before auto chose from the data trained on: for image files
    (neither a sample nor ``.npz``) with no size set, 64 px; None where it is not known."""
    from cnn_lab.engine.data.sources import SAMPLE_PREFIX

    source = dataset.source
    arrays = source.startswith(SAMPLE_PREFIX) or source.lower().endswith(".npz")
    if dataset.image_size is not None or arrays or dataset.channels is None:
        return None
    return (dataset.channels, AUTO_MAX, AUTO_MAX)
