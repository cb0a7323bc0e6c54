"""``sample:textures``: eight kinds of procedural texture at 64×64, numpy only.

Why this sample: the other two are small images of one object. Textures are larger images
whose class lives in repeated local structure (orientation, curvature, periodicity), which is
what convolutions are for, and which shows what augmentation does: flips keep every class (the
diagonal class holds both diagonals), while large rotations blur the stripe classes together.

Each class is a scalar pattern in 0..1 computed on a coordinate grid for a whole batch at
once; frequency, phase, orientation jitter, edge sharpness and duty cycle are random per
image. The pattern then mixes two random colours (so colour carries no class), under a random
lighting gradient and pixel noise. The phase is random too, so a per-class mean image is flat
and a pixel template match is near chance.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from cnn_lab.engine.data.imageset import ImageSet
from cnn_lab.engine.data.samples import register_sample

# A pattern maps (rng, X, Y) → pattern in 0..1, shaped (n, size, size). X and Y are pixel
# offsets from the image centre, broadcast as (1, size, size), and n is the batch size.
Pattern = Callable[[np.random.Generator, np.ndarray, np.ndarray, int], np.ndarray]

_PERIOD_PX = (6.0, 16.0)
"""Pattern periods in pixels, the same range for every class so scale gives nothing away."""


def _draw(rng: np.random.Generator, n: int, low: float, high: float) -> np.ndarray:
    """One random value per image, shaped to broadcast over an image grid."""
    return rng.uniform(low, high, (n, 1, 1)).astype(np.float32)


def _rotated(x: np.ndarray, y: np.ndarray, angle: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates along (u) and across (v) the direction ``angle`` (radians, per image)."""
    cos, sin = np.cos(angle), np.sin(angle)
    return x * cos + y * sin, y * cos - x * sin


def _soft(rng: np.random.Generator, wave: np.ndarray, n: int) -> np.ndarray:
    """A wave in -1..1 to a pattern in 0..1, from a soft sinusoid to hard-edged bands, with a
    random duty cycle (thin or thick lines)."""
    sharpness = _draw(rng, n, 1.5, 6.0)
    duty = _draw(rng, n, -0.35, 0.35)
    return 0.5 + 0.5 * np.tanh(sharpness * (wave - duty))


def _stripes(centre_degrees: tuple[float, ...]) -> Pattern:
    """Parallel bands across one of ``centre_degrees``, jittered by up to 8°."""

    def pattern(rng: np.random.Generator, x: np.ndarray, y: np.ndarray, n: int) -> np.ndarray:
        centres = np.asarray(centre_degrees, dtype=np.float32)
        centre = centres[rng.integers(0, len(centres), n)][:, None, None]
        angle = np.radians(centre + _draw(rng, n, -8, 8))
        u, _ = _rotated(x, y, angle)
        period, phase = _draw(rng, n, *_PERIOD_PX), _draw(rng, n, 0, 2 * np.pi)
        return _soft(rng, np.sin(2 * np.pi * u / period + phase), n)

    return pattern


def _checks(rng: np.random.Generator, x: np.ndarray, y: np.ndarray, n: int) -> np.ndarray:
    u, v = _rotated(x, y, _draw(rng, n, 0, np.pi / 2))
    period = _draw(rng, n, 2 * _PERIOD_PX[0], 2 * _PERIOD_PX[1])  # a period holds two squares
    a, b = _draw(rng, n, 0, 2 * np.pi), _draw(rng, n, 0, 2 * np.pi)
    wave = np.sin(2 * np.pi * u / period + a) * np.sin(2 * np.pi * v / period + b)
    return 0.5 + 0.5 * np.tanh(_draw(rng, n, 4.0, 10.0) * wave)


def _dots(rng: np.random.Generator, x: np.ndarray, y: np.ndarray, n: int) -> np.ndarray:
    """Round dots on a square lattice at a random angle, with soft or crisp edges."""
    u, v = _rotated(x, y, _draw(rng, n, 0, np.pi / 2))
    period = _draw(rng, n, *_PERIOD_PX)
    du = ((u / period + _draw(rng, n, 0, 1)) % 1 - 0.5) * period
    dv = ((v / period + _draw(rng, n, 0, 1)) % 1 - 0.5) * period
    edge = np.hypot(du, dv) - _draw(rng, n, 0.2, 0.36) * period
    return np.clip(0.5 - edge / _draw(rng, n, 0.8, 2.0), 0, 1)


def _rings(rng: np.random.Generator, x: np.ndarray, y: np.ndarray, n: int) -> np.ndarray:
    """Concentric rings around a centre near the image, so their curvature shows."""
    radius = np.hypot(x - _draw(rng, n, -20, 20), y - _draw(rng, n, -20, 20))
    period, phase = _draw(rng, n, *_PERIOD_PX), _draw(rng, n, 0, 2 * np.pi)
    return _soft(rng, np.sin(2 * np.pi * radius / period + phase), n)


def _waves(rng: np.random.Generator, x: np.ndarray, y: np.ndarray, n: int) -> np.ndarray:
    """Bands at any angle, bent into a sine along their length."""
    u, v = _rotated(x, y, _draw(rng, n, 0, 2 * np.pi))
    period = _draw(rng, n, *_PERIOD_PX)
    bend = _draw(rng, n, 0.35, 0.7) * period
    bent = u + bend * np.sin(2 * np.pi * v / _draw(rng, n, 16, 36) + _draw(rng, n, 0, 2 * np.pi))
    return _soft(rng, np.sin(2 * np.pi * bent / period + _draw(rng, n, 0, 2 * np.pi)), n)


_BLOTCH_WAVES = 8


def _blotches(rng: np.random.Generator, x: np.ndarray, y: np.ndarray, n: int) -> np.ndarray:
    """Irregular blobs: a sum of plane waves in random directions, thresholded softly."""
    total = np.zeros((n, y.shape[1], x.shape[2]), dtype=np.float32)
    for _ in range(_BLOTCH_WAVES):
        u, _ = _rotated(x, y, _draw(rng, n, 0, 2 * np.pi))
        period = _draw(rng, n, 1.2 * _PERIOD_PX[0], 2 * _PERIOD_PX[1])
        total += np.sin(2 * np.pi * u / period + _draw(rng, n, 0, 2 * np.pi))
    return _soft(rng, total / np.float32(np.sqrt(_BLOTCH_WAVES / 2)), n)


_PATTERNS: dict[str, Pattern] = {
    "h_stripes": _stripes((90.0,)),
    "v_stripes": _stripes((0.0,)),
    "diag_stripes": _stripes((45.0, 135.0)),
    "checks": _checks,
    "dots": _dots,
    "rings": _rings,
    "waves": _waves,
    "blotches": _blotches,
}

_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _colour_pairs(
    rng: np.random.Generator, n: int, min_contrast: float
) -> tuple[np.ndarray, np.ndarray]:
    """Random RGB pairs (n, 3) whose luminances differ by at least ``min_contrast``."""
    a = rng.uniform(0, 255, (n, 3)).astype(np.float32)
    b = rng.uniform(0, 255, (n, 3)).astype(np.float32)
    while (bad := np.abs((a - b) @ _LUMA) < min_contrast).any():
        b[bad] = rng.uniform(0, 255, (int(bad.sum()), 3))
    return a, b


def _paint(
    rng: np.random.Generator, pattern: np.ndarray, x: np.ndarray, y: np.ndarray
) -> np.ndarray:
    """Two colours mixed by ``pattern``, a lighting gradient and grain, as uint8 RGB (n, H, W, 3).

    Painted one channel plane at a time: contiguous (n, H, W) arithmetic is several times
    faster than broadcasting over an interleaved RGB axis. The grain is the same in all three
    channels (like a sensor's luminance noise), which also draws a third of the random numbers.
    """
    n = len(pattern)
    a, b = _colour_pairs(rng, n, min_contrast=50.0)
    slope, direction = _draw(rng, n, 0.0, 0.35), _draw(rng, n, 0, 2 * np.pi)
    light = 1 + slope * (x * np.cos(direction) + y * np.sin(direction)) / x.shape[-1]
    grain = rng.standard_normal(pattern.shape, dtype=np.float32) * _draw(rng, n, 3.0, 20.0)
    grain += np.float32(0.5)  # round to nearest in the cast below
    out = np.empty((*pattern.shape, 3), dtype=np.uint8)
    for c in range(3):
        first, second = a[:, c, None, None], b[:, c, None, None]
        plane = (first + pattern * (second - first)) * light + grain
        out[..., c] = np.clip(plane, 0, 255, out=plane)
    return out


def make_textures(seed: int = 0, per_class: int = 400, size: int = 64) -> ImageSet:
    """Eight texture classes in random colours, one vectorised pass per class."""
    if per_class < 1 or size < 16:
        raise ValueError(f"need per_class >= 1 and size >= 16, got {per_class} and {size}")
    rng = np.random.default_rng(seed)
    names = tuple(_PATTERNS)
    centre = np.arange(size, dtype=np.float32) + np.float32(0.5 - size / 2)
    x, y = centre[None, None, :], centre[None, :, None]
    images = np.empty((per_class * len(names), size, size, 3), dtype=np.uint8)
    for label, pattern in enumerate(_PATTERNS.values()):
        start = label * per_class
        drawn = pattern(rng, x, y, per_class).astype(np.float32, copy=False)
        images[start : start + per_class] = _paint(rng, drawn, x, y)
    labels = np.repeat(np.arange(len(names), dtype=np.int64), per_class)
    order = rng.permutation(len(labels))
    return ImageSet(images[order], labels[order], names, "sample:textures")


@register_sample(
    "textures",
    description="8 texture classes, 3200 RGB 64×64 images (stripes, checks, dots, rings, "
    "waves, blotches) in random colours, frequencies and phases: no pixel template works; "
    "a small CNN learns them in a minute or two on a CPU. A test bed for augmentation.",
)
def _textures(seed: int) -> ImageSet:
    return make_textures(seed)
