"""``sample:digits``: handwriting-like digits drawn from stroke templates, numpy only.

Why splat-and-blur instead of a distance field per stroke: every digit is a few hundred points
along its strokes. Each point is splatted bilinearly into its image with one ``bincount`` over
the whole batch, and each image is then blurred with its own Gaussian (two small batched matrix
products, ``G @ S @ Gᵀ``), which turns the points into an anti-aliased pen line whose width is
the blur. That is a few milliseconds per thousand digits, where a distance to every segment at
every pixel would be far slower.

What keeps it honest: each class has several written forms (a seven with and without its bar,
open and closed fours, ones with and without a flag), and every image gets its own slant,
rotation, scale, aspect, position, pen width, smooth wobble of the whole drawing, a small
offset per stroke (strokes that do not quite meet), ink and paper levels, and pixel noise.
A nearest-class-mean model on raw pixels therefore stays far below a small CNN.

The images are grey (the three channels are equal) because ``ImageSet`` holds RGB only; a
dataset spec with ``channels=1`` trains on one channel.
"""

from __future__ import annotations

import numpy as np

from cnn_lab.engine.data.imageset import ImageSet
from cnn_lab.engine.data.samples import register_sample

# ----------------------------------------------------------------------------- templates
#
# A stroke is an (M, 2) array of (x, y) control points in the digit's unit frame: y points down,
# the digit spans y in [-0.5, 0.5] and x in about [-0.3, 0.3]. Angles in ``_arc`` follow the
# image convention: 0° is right, 90° is down, 270° is up.

Stroke = np.ndarray
Form = tuple[Stroke, ...]


def _line(*points: tuple[float, float]) -> Stroke:
    return np.array(points, dtype=np.float64)


def _arc(cx: float, cy: float, rx: float, ry: float, start: float, stop: float) -> Stroke:
    t = np.radians(np.linspace(start, stop, max(3, int(abs(stop - start) / 15) + 1)))
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], axis=1)


def _curve(p0: tuple[float, float], c: tuple[float, float], p1: tuple[float, float]) -> Stroke:
    """A quadratic Bézier from ``p0`` to ``p1`` pulled towards ``c``."""
    t = np.linspace(0, 1, 12)[:, None]
    a, b, e = (np.array(p, dtype=np.float64) for p in (p0, c, p1))
    return (1 - t) ** 2 * a + 2 * (1 - t) * t * b + t**2 * e


def _join(*parts: Stroke) -> Stroke:
    """One continuous stroke through several pieces (the pen does not lift)."""
    return np.concatenate(parts, axis=0)


_FORMS: dict[str, tuple[Form, ...]] = {
    "0": (
        (_arc(0, 0, 0.27, 0.48, -80, 280),),
        (_arc(0, 0, 0.24, 0.48, -100, 250),),
    ),
    "1": (
        (_line((0.02, -0.5), (-0.02, 0.5)),),
        (_line((-0.16, -0.3), (0.02, -0.5), (0.0, 0.5)),),
        (_line((-0.16, -0.3), (0.02, -0.5), (0.0, 0.5)), _line((-0.16, 0.5), (0.16, 0.5))),
    ),
    "2": (
        (_join(_arc(0, -0.24, 0.26, 0.26, 200, 400), _line((-0.28, 0.5), (0.3, 0.5))),),
        (_join(_arc(0, -0.26, 0.25, 0.24, 190, 380),
               _curve((0.22, -0.14), (0.0, 0.3), (-0.28, 0.48)), _line((0.3, 0.47))),),
    ),
    "3": (
        (_arc(0, -0.25, 0.25, 0.25, 200, 450), _arc(0, 0.25, 0.28, 0.25, 270, 520)),
        (_join(_line((-0.25, -0.5), (0.25, -0.5), (-0.05, -0.05)),
               _arc(0, 0.22, 0.28, 0.28, 280, 520)),),
    ),
    "4": (
        (_line((-0.08, -0.5), (-0.3, 0.15), (0.3, 0.15)), _line((0.14, -0.3), (0.14, 0.5))),
        (_line((0.14, 0.5), (0.14, -0.5), (-0.3, 0.15), (0.3, 0.15)),),
    ),
    "5": (
        (_join(_line((0.28, -0.5), (-0.2, -0.5), (-0.16, -0.06)),
               _arc(0, 0.2, 0.28, 0.3, 240, 520)),),
        (_line((-0.2, -0.5), (-0.22, -0.04)), _line((-0.2, -0.5), (0.28, -0.5)),
         _arc(0, 0.2, 0.27, 0.3, 230, 510)),
    ),
    "6": (
        (_join(_curve((0.2, -0.5), (-0.3, -0.35), (-0.26, 0.22)),
               _arc(0, 0.22, 0.26, 0.27, 180, 540)),),
        (_join(_line((0.16, -0.5), (-0.24, 0.16)), _arc(0, 0.24, 0.25, 0.25, 200, 550)),),
    ),
    "7": (
        (_line((-0.28, -0.5), (0.3, -0.5), (-0.05, 0.5)),),
        (_line((-0.28, -0.5), (0.3, -0.5), (-0.05, 0.5)), _line((-0.12, 0.0), (0.22, 0.0))),
        (_line((-0.28, -0.38), (-0.28, -0.5), (0.3, -0.5), (0.02, 0.5)),),
    ),
    "8": (
        (_arc(0, -0.26, 0.22, 0.23, 0, 360), _arc(0, 0.24, 0.27, 0.26, 0, 360)),
        (_join(_curve((0.2, -0.38), (-0.25, -0.5), (-0.18, -0.3)),  # one stroke, a figure S
               _curve((-0.18, -0.3), (0.45, 0.2), (0.0, 0.5)),  # down and back up
               _curve((0.0, 0.5), (-0.45, 0.2), (0.2, -0.38))),),
    ),
    "9": (
        (_arc(0, -0.22, 0.26, 0.27, 0, 360), _line((0.26, -0.22), (0.2, 0.5))),
        (_arc(0, -0.22, 0.26, 0.27, 0, 360), _curve((0.26, -0.22), (0.3, 0.4), (-0.15, 0.5))),
    ),
}  # fmt: skip

_SPACING = 0.016
"""Template units between splatted points: under half a pixel at the largest digit size, so
the blurred points read as a continuous line."""


def _resample(form: Form) -> tuple[np.ndarray, np.ndarray]:
    """A form's strokes as evenly spaced points (P, 2) and the stroke each belongs to (P,)."""
    points, strokes = [], []
    for index, stroke in enumerate(form):
        seg = np.diff(stroke, axis=0)
        length = np.concatenate([[0.0], np.cumsum(np.hypot(seg[:, 0], seg[:, 1]))])
        at = np.linspace(0, length[-1], max(2, int(length[-1] / _SPACING) + 1))
        points.append(np.stack([np.interp(at, length, stroke[:, k]) for k in (0, 1)], axis=1))
        strokes.append(np.full(len(at), index))
    return np.concatenate(points).astype(np.float32), np.concatenate(strokes)


_POINTS = {label: tuple(_resample(form) for form in forms) for label, forms in _FORMS.items()}

# ----------------------------------------------------------------------------- drawing


def _place(
    rng: np.random.Generator, points: np.ndarray, strokes: np.ndarray, n: int, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` randomly written copies of one form: pixel coordinates (n, P, 2) and the pen
    scale (n,) in pixels per template unit."""
    n_strokes = int(strokes.max()) + 1
    x, y = points[None, :, 0], points[None, :, 1]
    # Smooth wobble: two low sine waves displace the whole drawing, so a stroke bends and two
    # strokes drift apart the way a hand's do.
    amp, freq, phase = (rng.uniform(lo, hi, (4, n, 1)).astype(np.float32) for lo, hi in
                        ((0.0, 0.05), (1.5, 4.0), (0.0, 2 * np.pi)))  # fmt: skip
    x = x + amp[0] * np.sin(freq[0] * y + phase[0]) + amp[1] * np.sin(freq[1] * x + phase[1])
    y = y + amp[2] * np.sin(freq[2] * x + phase[2]) + amp[3] * np.sin(freq[3] * y + phase[3])
    nudge = rng.normal(0, 0.025, (2, n, n_strokes)).astype(np.float32)
    x, y = x + nudge[0][:, strokes], y + nudge[1][:, strokes]

    slant = rng.uniform(-0.35, 0.35, (n, 1)).astype(np.float32)
    x = x - slant * y  # shear: a positive slant leans the top to the right
    angle = np.radians(rng.uniform(-12, 12, (n, 1))).astype(np.float32)
    x, y = x * np.cos(angle) - y * np.sin(angle), x * np.sin(angle) + y * np.cos(angle)
    height = rng.uniform(0.58, 0.82, (n, 1)).astype(np.float32) * size
    aspect = rng.uniform(0.8, 1.25, (n, 1)).astype(np.float32)
    x, y = x * height * aspect, y * height
    x, y = _somewhere_in_frame(rng, x, size), _somewhere_in_frame(rng, y, size)
    return np.stack([x, y], axis=-1), height[:, 0]


def _somewhere_in_frame(rng: np.random.Generator, coord: np.ndarray, size: int) -> np.ndarray:
    """Shift each row of ``coord`` (n, P) to a random place along one axis where the drawing
    fits with a pixel to spare; one too big to fit is centred (and cropped a little)."""
    low, high = coord.min(1, keepdims=True), coord.max(1, keepdims=True)
    room = size - 2 - (high - low)
    where = rng.random(room.shape, dtype=np.float32)
    return coord - low + 1 + np.where(room > 0, room * where, room / 2)


_STRAY_MARKS = 2
_STRAY_POINTS = 20


def _stray_marks(
    rng: np.random.Generator, scale: np.ndarray, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``_STRAY_MARKS`` short pen strokes per image anywhere in the frame (a slip of the
    pen, a neighbour's tail): pixel coordinates (n, marks·points, 2) and point weights.

    Every image gets the same number of points so the batch stays one array; a mark that is
    absent has weight 0, and a short mark's points weigh less so its line is as dark as a digit's.
    """
    n, shape = len(scale), (len(scale), _STRAY_MARKS, 1)
    length = rng.uniform(0.2, 0.5, shape).astype(np.float32) * scale[:, None, None]
    angle = rng.uniform(0, np.pi, shape).astype(np.float32)
    cx, cy = rng.uniform(0, size, (2, *shape)).astype(np.float32)
    t = np.linspace(-0.5, 0.5, _STRAY_POINTS, dtype=np.float32) * length
    xy = np.stack([cx + t * np.cos(angle), cy + t * np.sin(angle)], axis=-1)
    present = rng.random(shape, dtype=np.float32) < 0.4
    weight = present * length / (_STRAY_POINTS * _SPACING * scale[:, None, None])
    return xy.reshape(n, -1, 2), np.broadcast_to(weight, (*shape[:2], _STRAY_POINTS)).reshape(n, -1)


def _splat(xy: np.ndarray, weight: np.ndarray, size: int) -> np.ndarray:
    """Bilinear splat of (N, P, 2) pixel coordinates with (N, P) weights into (N, size, size)
    densities."""
    n = xy.shape[0]
    px, py = xy[..., 0] - 0.5, xy[..., 1] - 0.5  # pixel centres sit at integer + 0.5
    x0, y0 = np.floor(px), np.floor(py)
    fx, fy = px - x0, py - y0
    x0, y0 = x0.astype(np.int64), y0.astype(np.int64)
    image = np.arange(n, dtype=np.int64)[:, None] * size * size
    density = np.zeros(n * size * size, dtype=np.float64)
    for dx, dy, w in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)),
                      (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):  # fmt: skip
        w = w * weight
        cx, cy = x0 + dx, y0 + dy
        inside = (cx >= 0) & (cx < size) & (cy >= 0) & (cy < size)
        index = image + cy * size + cx
        density += np.bincount(index[inside], w[inside], minlength=density.size)
    return density.reshape(n, size, size).astype(np.float32)


def _pen(density: np.ndarray, width: np.ndarray, points_per_px: np.ndarray) -> np.ndarray:
    """Blur each density image with its own Gaussian and saturate it into ink coverage 0..1."""
    size = density.shape[1]
    grid = np.arange(size, dtype=np.float32)
    sigma = width[:, None, None]
    kernel = np.exp(-0.5 * ((grid[None, :, None] - grid[None, None, :]) / sigma) ** 2)
    blurred = kernel @ density @ kernel  # the kernel is symmetric, so Gᵀ = G
    # A straight line of density ρ blurs to a peak of ρ·σ·√(2π); scale that to about 1.6 so the
    # line's core saturates and its edges stay soft.
    peak = points_per_px * width * np.float32(np.sqrt(2 * np.pi))
    return np.clip(blurred * (1.6 / peak)[:, None, None], 0, 1)


def make_digits(seed: int = 0, per_class: int = 500, size: int = 28) -> ImageSet:
    """Ten digit classes, light ink on dark paper with noise, grey in all three channels."""
    if per_class < 1 or size < 16:
        raise ValueError(f"need per_class >= 1 and size >= 16, got {per_class} and {size}")
    rng = np.random.default_rng(seed)
    names = tuple(_FORMS)
    labels = np.repeat(np.arange(len(names), dtype=np.int64), per_class)
    ink = np.empty((len(labels), size, size), dtype=np.float32)
    for label, forms in enumerate(_POINTS.values()):
        form_of = rng.integers(0, len(forms), per_class)
        for index, (points, strokes) in enumerate(forms):
            rows = np.flatnonzero(form_of == index) + label * per_class
            if not len(rows):
                continue
            xy, scale = _place(rng, points, strokes, len(rows), size)
            stray_xy, stray_weight = _stray_marks(rng, scale, size)
            weight = np.concatenate([np.ones(xy.shape[:2], np.float32), stray_weight], axis=1)
            xy = np.concatenate([xy, stray_xy], axis=1)
            width = rng.uniform(0.55, 1.2, len(rows)).astype(np.float32)
            ink[rows] = _pen(_splat(xy, weight, size), width, 1 / (_SPACING * scale))

    n = len(labels)
    paper = rng.uniform(0, 70, (n, 1, 1)).astype(np.float32)
    pen = rng.uniform(150, 255, (n, 1, 1)).astype(np.float32)
    grey = paper + ink * (pen - paper)
    noise = rng.uniform(4, 22, (n, 1, 1)).astype(np.float32)
    grey += rng.standard_normal(grey.shape, dtype=np.float32) * noise
    grey = np.clip(grey + np.float32(0.5), 0, 255).astype(np.uint8)
    order = rng.permutation(n)
    images = np.repeat(grey[order, :, :, None], 3, axis=3)
    return ImageSet(images, labels[order], names, "sample:digits")


@register_sample(
    "digits",
    description="10 digit classes, 5000 grayscale 28×28 handwriting-like digits with random "
    "slant, size, pen width, wobble and noise: beyond a pixel template match, learnable by a "
    "small CNN in under a minute on a CPU.",
)
def _digits(seed: int) -> ImageSet:
    return make_digits(seed)
