"""Built-in sample datasets, generated on the fly so a first run needs no download.

Samples register with ``@register_sample`` (a name, a description and a factory taking a
seed), in the spirit of timm's registries. This module is numpy-only on purpose: the GUI
imports it to preview a sample long before torch is loaded.

``sample:shapes`` is meant to be a small but honest benchmark: colour carries no class
information (foreground and background are both random), and clutter plus noise keep a
linear model on raw pixels well below what a small CNN reaches, so the app's comparisons
between architectures and hyperparameters show real differences.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from cnn_lab.engine.data.imageset import ImageSet
from cnn_lab.engine.errors import UserError

SampleFactory = Callable[[int], ImageSet]


@dataclass(frozen=True)
class _Sample:
    description: str
    factory: SampleFactory


_SAMPLES: dict[str, _Sample] = {}


def register_sample(name: str, *, description: str) -> Callable[[SampleFactory], SampleFactory]:
    """Register ``factory(seed) -> ImageSet`` under ``name``; a name can be taken only once."""

    def decorate(factory: SampleFactory) -> SampleFactory:
        if name in _SAMPLES:
            raise ValueError(f"sample {name!r} is already registered")
        _SAMPLES[name] = _Sample(description, factory)
        return factory

    return decorate


def sample_names() -> list[str]:
    """The registered sample names, sorted."""
    return sorted(_SAMPLES)


def _entry(name: str) -> _Sample:
    try:
        return _SAMPLES[name]
    except KeyError:
        known = ", ".join(sample_names()) or "none"
        raise UserError(
            f"There is no built-in sample called {name!r}; the samples are: {known}.",
            "Pick one of those names, or import your own images instead.",
        ) from None


def sample_description(name: str) -> str:
    """A one-line description of a sample, for the dataset panel."""
    return _entry(name).description


def load_sample(name: str, *, seed: int = 0) -> ImageSet:
    """Generate sample ``name``; the same seed always gives byte-identical arrays."""
    return _entry(name).factory(seed)


# --------------------------------------------------------------------------- sample:shapes
#
# Each shape is a signed distance in the shape's own unit frame (about [-1, 1]², negative
# inside). Drawing a batch is then: map pixel grids into each image's rotated, scaled frame,
# evaluate the distance, and turn it into a one-pixel anti-aliased coverage.

_Sdf = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _box(u: np.ndarray, v: np.ndarray, cu: float, cv: float, hu: float, hv: float) -> np.ndarray:
    return np.maximum(np.abs(u - cu) - hu, np.abs(v - cv) - hv)


def _polygon(u: np.ndarray, v: np.ndarray, sides: int, inner: float) -> np.ndarray:
    """A regular convex polygon: the largest of its edges' half-plane distances."""
    angles = np.pi / 2 + 2 * np.pi * np.arange(sides) / sides
    return np.max([u * np.cos(a) + v * np.sin(a) for a in angles], axis=0) - inner


def _star(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    r = np.hypot(u, v)
    phase = (np.arctan2(v, u) * 5 / (2 * np.pi)) % 1.0
    edge = 0.42 + 0.58 * np.abs(2 * phase - 1)  # tips at radius 1, notches at 0.42
    return (r - edge) * 0.6


_SHAPES: dict[str, _Sdf] = {
    "circle": lambda u, v: np.hypot(u, v) - 0.9,
    "ring": lambda u, v: np.abs(np.hypot(u, v) - 0.72) - 0.26,
    "square": lambda u, v: _box(u, v, 0, 0, 0.75, 0.75),
    "frame": lambda u, v: np.abs(_box(u, v, 0, 0, 0.62, 0.62)) - 0.22,
    "triangle": lambda u, v: _polygon(u, v, 3, 0.5),
    "cross": lambda u, v: np.minimum(_box(u, v, 0, 0, 1, 0.28), _box(u, v, 0, 0, 0.28, 1)),
    "star": _star,
    "bar": lambda u, v: _box(u, v, 0, 0, 1, 0.25),
    "crescent": lambda u, v: np.maximum(np.hypot(u, v) - 0.95, 0.75 - np.hypot(u - 0.5, v)),
    "ell": lambda u, v: np.minimum(_box(u, v, -0.6, 0, 0.3, 1), _box(u, v, 0, 0.7, 0.9, 0.3)),
}


def _coverage(distance_px: np.ndarray) -> np.ndarray:
    """Anti-aliased coverage of a signed pixel distance: 1 inside, 0 outside, a ramp between."""
    return np.clip(0.5 - distance_px, 0.0, 1.0)


def _colours(rng: np.random.Generator, n: int, min_contrast: float) -> tuple[np.ndarray, ...]:
    """Random foreground and background RGB pairs whose luminances differ by ``min_contrast``."""
    luma = np.array([0.299, 0.587, 0.114], dtype=np.float32)
    fg = rng.uniform(0, 255, (n, 3)).astype(np.float32)
    bg = rng.uniform(0, 255, (n, 3)).astype(np.float32)
    while True:
        bad = np.abs((fg - bg) @ luma) < min_contrast
        if not bad.any():
            return fg, bg
        fg[bad] = rng.uniform(0, 255, (int(bad.sum()), 3))


_CLUTTER_PATCH = 10  # pixels; a distractor is drawn in a patch this big, not over the image


def _draw_clutter(rng: np.random.Generator, canvas: np.ndarray, count: int) -> None:
    """Paint ``count`` small random dots or thin strokes per image, in random colours.

    ``canvas`` carries a margin of half a patch on every side, so a distractor may sit partly
    outside the visible frame. Each distractor is drawn on a small patch and blended back
    with fancy indexing, which is what keeps thousands of images fast to generate.
    """
    n, height, width, _ = canvas.shape
    p = _CLUTTER_PATCH
    py, px = np.mgrid[0:p, 0:p].astype(np.float32) + 0.5 - p / 2
    rows = np.arange(n)[:, None, None]
    for _ in range(count):
        top = rng.integers(0, height - p + 1, n)[:, None, None] + np.arange(p)[None, :, None]
        left = rng.integers(0, width - p + 1, n)[:, None, None] + np.arange(p)[None, None, :]
        oy, ox, theta = rng.uniform((-0.5, -0.5, 0), (0.5, 0.5, np.pi), (n, 3)).T
        oy, ox, theta = (a.astype(np.float32)[:, None, None] for a in (oy, ox, theta))
        du, dv = px - ox, py - oy
        u = du * np.cos(theta) + dv * np.sin(theta)
        v = dv * np.cos(theta) - du * np.sin(theta)
        dot = rng.random((n, 1, 1)) < 0.5
        half_len = np.where(dot, rng.uniform(0.7, 2.2, (n, 1, 1)), rng.uniform(2, 4.5, (n, 1, 1)))
        distance = np.where(dot, np.hypot(u, v) - half_len, _box(u, v, 0, 0, half_len, 0.5))
        alpha = _coverage(distance.astype(np.float32))
        alpha *= rng.random((n, 1, 1)) < 0.85  # some images get fewer distractors
        colour = rng.uniform(0, 255, (n, 1, 1, 3)).astype(np.float32)
        patch = canvas[rows, top, left]
        canvas[rows, top, left] = patch + alpha[..., None] * (colour - patch)


def _draw_shapes(rng: np.random.Generator, sdf: _Sdf, n: int, size: int) -> np.ndarray:
    """``n`` uint8 images of one shape: background, clutter, the shape, then pixel noise."""
    fg, bg = _colours(rng, n, min_contrast=70.0)
    scale, cy, cx, theta = rng.random((4, n, 1, 1), dtype=np.float32)
    scale = (0.2 + 0.18 * scale) * size  # the shape's half-size in pixels
    margin = 0.75 * scale  # the centre keeps the shape mostly inside the frame
    cy, cx = (margin + a * (size - 2 * margin) for a in (cy, cx))
    theta *= np.float32(2 * np.pi)

    pad = _CLUTTER_PATCH // 2
    padded = np.empty((n, size + 2 * pad, size + 2 * pad, 3), dtype=np.float32)
    padded[...] = bg[:, None, None, :]
    _draw_clutter(rng, padded, count=3)
    canvas = padded[:, pad:-pad, pad:-pad]  # a view: the shape and noise land in ``padded``

    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + np.float32(0.5)
    dx, dy = xx - cx, yy - cy
    cos, sin = np.cos(theta), np.sin(theta)
    alpha = _coverage(sdf((dx * cos + dy * sin) / scale, (dy * cos - dx * sin) / scale) * scale)
    canvas += alpha[..., None] * (fg[:, None, None, :] - canvas)
    canvas += rng.standard_normal(canvas.shape, dtype=np.float32) * np.float32(12.0)
    canvas += np.float32(0.5)  # round to nearest in the cast below
    return np.clip(canvas, 0, 255, out=canvas).astype(np.uint8)


def make_shapes(seed: int = 0, per_class: int = 600, size: int = 32) -> ImageSet:
    """Ten rotated, scaled, coloured shapes on cluttered, noisy backgrounds.

    Each class is drawn in one vectorised pass on coordinate grids (a chunk small enough to
    stay in cache), so the default 6000 images take a fraction of a second. Classes are
    chosen to stay distinct under rotation (hence no diamond: it is a rotated square).
    """
    if per_class < 1 or size < 16:
        raise ValueError(f"need per_class >= 1 and size >= 16, got {per_class} and {size}")
    rng = np.random.default_rng(seed)
    names = tuple(_SHAPES)
    images = np.empty((per_class * len(names), size, size, 3), dtype=np.uint8)
    for label, sdf in enumerate(_SHAPES.values()):
        start = label * per_class
        images[start : start + per_class] = _draw_shapes(rng, sdf, per_class, size)
    labels = np.repeat(np.arange(len(names), dtype=np.int64), per_class)
    order = rng.permutation(len(labels))
    return ImageSet(images[order], labels[order], names, "sample:shapes")


@register_sample(
    "shapes",
    description="10 shape classes, 6000 RGB 32×32 images with random colours, clutter and "
    "noise: hard for a linear model, learnable by a small CNN in a minute on a CPU.",
)
def _shapes(seed: int) -> ImageSet:
    return make_shapes(seed)


# The other samples live in their own modules and register themselves on import; importing them
# here, after ``register_sample`` exists, means any import of this module lists every sample.
from cnn_lab.engine.data import sample_digits, sample_textures  # noqa: E402, F401
