"""Augmentation of whole batches on the training device, as a registry of strength knobs.

Why batches on the device: the training set already lives on the device as one tensor
(engine/data/tensors.py), so augmenting per image on CPU workers would mean copying every
batch back and forth. Here each augmentation is a handful of tensor operations over the whole
N x C x H x W batch, with different random parameters for every image, and no Python loop over
images. Inputs are float images in 0..1, before normalisation, so fills and clamps mean what
they say (0.5 is grey, 1 is white).

Why one ``strength`` in 0..1 per augmentation: a hyperparameter search can vary one number per
augmentation without knowing what the knob does inside. Strength 0 is always the identity and
1 the strongest setting that still makes sense for small-image classification; each
augmentation's docstring says what the number maps to (the GUI shows it as the description).

Randomness: every kernel takes a CPU ``torch.Generator`` and draws its per-image parameters
(N-sized, tiny) on the CPU, then sends them to the batch's device. A CPU generator cannot
draw on CUDA, and drawing on the CPU keeps a run reproducible from one seed and gives the same
parameters on every device. Only the (large) image arithmetic runs on the device.

This module imports neither torch nor numpy at import time: the GUI lists the names, labels
and descriptions before torch is loaded. The kernels import torch when first called.

Mixup and cutmix are not in the per-image registry because they change the targets as well
as the images; ``BatchAugmenter`` runs them after the registered steps.

Flips and shifts only move pixels, so ``BatchAugmenter.pixel_map`` also hands them over as a
map of where each pixel comes from, with the same random draws: the loader follows it while
it gathers the uint8 images, before the cast to float, and runs the rest on float.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cnn_lab.engine.errors import SpecError

if TYPE_CHECKING:  # torch and numpy load only when a batch is augmented or previewed
    import numpy as np
    import torch
    from torch import Tensor

    from cnn_lab.engine.specs.dataset import DatasetSpec

Augmentation = Callable[["Tensor", float, "torch.Generator"], "Tensor"]

# The largest settings, reached at strength 1. Kept together so the docs and code agree.
MAX_FLIP_PROBABILITY = 0.5
MAX_TRANSLATE_FRACTION = 0.125  # 4 pixels on 32: the classic CIFAR "pad 4, random crop"
MAX_ROTATE_DEGREES = 30.0
MAX_JITTER = 0.4  # torchvision's ColorJitter(0.4, 0.4, 0.4), the usual ImageNet recipe
MAX_CUTOUT_FRACTION = 0.5  # 16 pixels on 32, as in DeVries & Taylor's CIFAR-10 setting
MIN_CROP_AREA = 0.08  # torchvision's RandomResizedCrop default lower scale
MAX_CROP_LOG_ASPECT = math.log(4 / 3)


@dataclass(frozen=True)
class AugmentationInfo:
    name: str
    label: str
    default_strength: float
    """The strength the form fills in when a person switches this augmentation on."""
    description: str
    """What it does and what strength 1 means, for the form's tooltip."""
    fn: Augmentation = field(repr=False, compare=False)


_AUGMENTATIONS: dict[str, AugmentationInfo] = {}


def register_augmentation(
    name: str, label: str, default_strength: float
) -> Callable[[Augmentation], Augmentation]:
    """Register a kernel under ``name``; the returned function checks its arguments first.

    The wrapper does what every kernel would otherwise repeat: it rejects strengths outside
    0..1 and non-CPU generators, returns the input untouched at strength 0 (exactly the
    identity, with no interpolation round-off), runs half-precision batches in float32, and
    hands back the input's dtype and memory format (channels_last stays channels_last).
    """
    if not 0.0 <= default_strength <= 1.0:
        raise ValueError(f"default_strength of {name!r} must be in 0..1, not {default_strength}")

    def decorate(kernel: Augmentation) -> Augmentation:
        if name in _AUGMENTATIONS:
            raise ValueError(f"An augmentation called {name!r} is already registered.")

        @functools.wraps(kernel)
        def augmentation(x: Tensor, strength: float, generator: torch.Generator) -> Tensor:
            import torch

            strength = _check_strength(name, strength)
            _check_batch(name, x)
            if generator.device.type != "cpu":
                raise ValueError(
                    f"{name}: pass a CPU torch.Generator; parameters are drawn on the CPU "
                    "and sent to the batch's device."
                )
            if strength == 0.0:
                return x
            work = x if x.dtype in (torch.float32, torch.float64) else x.float()
            out = kernel(work, strength, generator).to(x.dtype)
            return out.contiguous(memory_format=_memory_format(x))

        # Without docstrings (python -OO, frozen apps) the label is the best we have.
        description = inspect.cleandoc(kernel.__doc__) if kernel.__doc__ else label
        _AUGMENTATIONS[name] = AugmentationInfo(
            name, label, default_strength, description, augmentation
        )
        return augmentation

    return decorate


def augmentation_names() -> list[str]:
    return list(_AUGMENTATIONS)


def augmentation_info(name: str) -> AugmentationInfo:
    try:
        return _AUGMENTATIONS[name]
    except KeyError:
        raise _unknown(name) from None


def _unknown(name: str) -> SpecError:
    known = ", ".join(_AUGMENTATIONS)
    return SpecError(
        f"There is no augmentation called {name!r}. Known: {known}.",
        hint="Pick one of those names in the dataset's augmentation list.",
    )


def _check_strength(name: str, strength: float) -> float:
    strength = float(strength)
    if not 0.0 <= strength <= 1.0:  # also rejects NaN
        raise SpecError(f"The strength of {name!r} must be between 0 and 1, not {strength}.")
    return strength


def _check_batch(name: str, x: Tensor) -> None:
    if x.dim() != 4 or not x.is_floating_point():
        raise ValueError(
            f"{name}: expected a float batch N x C x H x W in 0..1, got {tuple(x.shape)} {x.dtype}."
        )


def _memory_format(x: Tensor) -> torch.memory_format:
    """channels_last if ``x`` is laid out that way (and not also plain contiguous)."""
    import torch

    if x.is_contiguous():
        return torch.contiguous_format
    if x.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format


def _send(t: Tensor, like: Tensor) -> Tensor:
    """Move small CPU parameters to ``like``'s device without stalling the CPU.

    A plain ``.to("cuda")`` from pageable memory waits for the GPU to drain its queue, once per
    augmentation per step; from pinned memory the copy is queued and the CPU runs ahead.
    """
    if like.device.type == "cuda":
        return t.pin_memory().to(like.device, non_blocking=True)
    return t.to(like.device)


def _rand(generator: torch.Generator, *shape: int) -> Tensor:
    """Uniform 0..1 numbers on the CPU, float64 so integer parameters round the same everywhere."""
    import torch

    return torch.rand(*shape, generator=generator, dtype=torch.float64)


def _reflect(index: Tensor, size: int) -> Tensor:
    """Fold indices that fell off 0..size-1 back in, mirroring about the edge pixels.

    Valid for indices within one image size of the range, which shifts of at most 12.5% are.
    """
    last = size - 1
    return last - (last - index.abs()).abs()


def _draw_flips(generator: torch.Generator, n: int, strength: float) -> Tensor:
    """Which of ``n`` images a flip of ``strength`` flips (bool, CPU)."""
    return _rand(generator, n) < MAX_FLIP_PROBABILITY * strength


def _draw_shifts(
    generator: torch.Generator, n: int, strength: float, h: int, w: int
) -> tuple[Tensor, Tensor] | None:
    """Whole-pixel shifts (dy, dx) of ``n`` h x w images (int64, CPU); None, drawing
    nothing, when the image is too small for ``strength`` to move a pixel."""
    max_dy, max_dx = _shift_limits(strength, h, w)
    if max_dy == 0 and max_dx == 0:
        return None
    u = _rand(generator, n, 2)
    dy = (u[:, 0] * (2 * max_dy + 1)).long().clamp_(max=2 * max_dy) - max_dy
    dx = (u[:, 1] * (2 * max_dx + 1)).long().clamp_(max=2 * max_dx) - max_dx
    return dy, dx


def _shift_limits(strength: float, h: int, w: int) -> tuple[int, int]:
    return int(strength * MAX_TRANSLATE_FRACTION * h), int(strength * MAX_TRANSLATE_FRACTION * w)


# --- The registry -------------------------------------------------------------------------


@register_augmentation("hflip", "Horizontal flip", default_strength=1.0)
def hflip(x: Tensor, strength: float, generator: torch.Generator) -> Tensor:
    """Mirror images left to right.

    Each image is flipped with probability strength / 2: half of the images at strength 1,
    which is the most a flip can do (beyond that the data just flips the other way round).
    For photographs of things with no preferred side; not for text or digits.
    """
    import torch

    flip = _send(_draw_flips(generator, x.shape[0], strength), x)
    return torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)


@register_augmentation("vflip", "Vertical flip", default_strength=1.0)
def vflip(x: Tensor, strength: float, generator: torch.Generator) -> Tensor:
    """Mirror images top to bottom.

    Each image is flipped with probability strength / 2 (half of them at strength 1). Only for
    data with no up and down: microscopy, satellite and texture images.
    """
    import torch

    flip = _send(_draw_flips(generator, x.shape[0], strength), x)
    return torch.where(flip.view(-1, 1, 1, 1), x.flip(-2), x)


@register_augmentation("translate", "Shift (random crop with padding)", default_strength=1.0)
def translate(x: Tensor, strength: float, generator: torch.Generator) -> Tensor:
    """Shift each image by a whole number of pixels, filling the edge by reflection.

    The shift goes up to strength x 12.5% of the height and width each way: 4 pixels on a
    32-pixel image at strength 1, the classic "pad 4 and crop" of CIFAR training. Reflection
    instead of black padding, so the network never learns that dark borders mean anything.
    """
    import torch

    n, _, h, w = x.shape
    drawn = _draw_shifts(generator, n, strength, h, w)
    if drawn is None:  # too small an image for this strength to move a pixel
        return x.clone()
    shift = _send(torch.stack(drawn, dim=1), x)
    rows = _reflect(torch.arange(h, device=x.device) - shift[:, :1], h)  # N x H
    cols = _reflect(torch.arange(w, device=x.device) - shift[:, 1:], w)  # N x W
    batch = torch.arange(n, device=x.device).view(n, 1, 1)
    # One gather for the whole batch; the result comes out N x H x W x C.
    return x[batch, :, rows.view(n, h, 1), cols.view(n, 1, w)].permute(0, 3, 1, 2)


@register_augmentation("rotate", "Rotation", default_strength=0.5)
def rotate(x: Tensor, strength: float, generator: torch.Generator) -> Tensor:
    """Rotate each image about its centre by a random angle, filling the corners by reflection.

    The angle is uniform in plus or minus strength x 30 degrees (15 at the default 0.5).
    Bilinear resampling, so it also blurs a little: keep it moderate for tiny images.
    """
    import torch

    n, _, h, w = x.shape
    angle = (_rand(generator, n) * 2 - 1) * strength * math.radians(MAX_ROTATE_DEGREES)
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.zeros(n, 2, 3, dtype=torch.float64)
    # A rotation in pixels, written in grid_sample's -1..1 coordinates: on a non-square image
    # the off-diagonal terms carry the aspect ratio, or the rotation would shear.
    theta[:, 0, 0] = cos
    theta[:, 0, 1] = -sin * h / w
    theta[:, 1, 0] = sin * w / h
    theta[:, 1, 1] = cos
    return _resample(x, theta, padding_mode="reflection")


@register_augmentation("color_jitter", "Colour jitter", default_strength=0.5)
def color_jitter(x: Tensor, strength: float, generator: torch.Generator) -> Tensor:
    """Vary brightness, contrast and saturation of each image, in that order.

    Each factor is drawn uniform in 1 plus or minus strength x 0.4 (torchvision's usual
    ColorJitter(0.4, 0.4, 0.4) at strength 1). Brightness scales the pixels, contrast scales
    them about the image's mean grey, saturation about each pixel's grey; saturation does
    nothing to one-channel images. The result is clipped to 0..1.
    """
    import torch

    n, c, _, _ = x.shape
    factors = _send(1 + (_rand(generator, n, 3) * 2 - 1) * strength * MAX_JITTER, x)
    factors = factors.to(x.dtype).view(n, 3, 1, 1)
    brightness, contrast, saturation = factors[:, 0:1], factors[:, 1:2], factors[:, 2:3]
    # ITU-R 601 luma for RGB, as torchvision's rgb_to_grayscale; the channel mean otherwise.
    # Built on the CPU and sent: torch.tensor(..., device="cuda") would stall the CPU.
    luma = [0.299, 0.587, 0.114] if c == 3 else [1.0 / c] * c
    weights = _send(torch.tensor(luma, dtype=x.dtype), x)
    out = x * brightness
    grey = (out * weights.view(1, c, 1, 1)).sum(dim=1, keepdim=True)
    mean = grey.mean(dim=(2, 3), keepdim=True)
    out = (out - mean) * contrast + mean
    grey = (grey - mean) * contrast + mean  # the contrast step is linear, so no second sum
    out = (out - grey) * saturation + grey
    return out.clamp_(0.0, 1.0)


@register_augmentation("cutout", "Cutout (erase a square)", default_strength=0.5)
def cutout(x: Tensor, strength: float, generator: torch.Generator) -> Tensor:
    """Erase one square per image, filled with that image's mean colour.

    The square's side is strength x 50% of the shorter image side (16 pixels on 32 at strength
    1, DeVries & Taylor's CIFAR-10 setting) and it lies wholly inside the image at a random
    place, so every image loses the same area. The mean colour rather than black keeps the
    image statistics, so normalisation is not thrown off.
    """
    import torch

    n, _, h, w = x.shape
    side = round(strength * MAX_CUTOUT_FRACTION * min(h, w))
    if side == 0:
        return x.clone()
    u = _rand(generator, n, 2)
    top = (u[:, 0] * (h - side + 1)).long().clamp_(max=h - side)
    left = (u[:, 1] * (w - side + 1)).long().clamp_(max=w - side)
    corner = _send(torch.stack([top, left], dim=1), x)
    mask = _box_mask(corner[:, 0], corner[:, 0] + side, corner[:, 1], corner[:, 1] + side, h, w)
    fill = x.mean(dim=(2, 3), keepdim=True)
    return torch.where(mask, fill, x)


@register_augmentation("random_resized_crop", "Random resized crop (zoom)", default_strength=0.5)
def random_resized_crop(x: Tensor, strength: float, generator: torch.Generator) -> Tensor:
    """Crop a random part of each image and stretch it back to the full size.

    The crop keeps between 1 - 0.92 x strength and all of the area (8% to 100% at strength 1,
    torchvision's RandomResizedCrop), with an aspect ratio, relative to the image's own,
    between (3/4)^strength and (4/3)^strength. Strength 1 is the ImageNet recipe and strong
    for small images; around 0.3 suits 32-pixel data.
    """
    import torch

    n = x.shape[0]
    u = _rand(generator, n, 4)
    area = 1 - (1 - MIN_CROP_AREA) * strength * u[:, 0]
    aspect = torch.exp((u[:, 1] * 2 - 1) * strength * MAX_CROP_LOG_ASPECT)
    # Sides as fractions of the image's; a side that would overflow is held at the full side
    # (torchvision retries instead, which cannot be vectorised; the clamp only loses area).
    width = torch.sqrt(area * aspect).clamp_(max=1.0)
    height = torch.sqrt(area / aspect).clamp_(max=1.0)
    theta = torch.zeros(n, 2, 3, dtype=torch.float64)
    theta[:, 0, 0] = width
    theta[:, 1, 1] = height
    theta[:, 0, 2] = (u[:, 2] * 2 - 1) * (1 - width)  # centre: anywhere the crop fits
    theta[:, 1, 2] = (u[:, 3] * 2 - 1) * (1 - height)
    return _resample(x, theta, padding_mode="border")


def _resample(x: Tensor, theta: Tensor, *, padding_mode: str) -> Tensor:
    """Bilinear resampling of every image through its own affine map, in one grid_sample."""
    import torch.nn.functional as F

    grid = F.affine_grid(_send(theta.to(x.dtype), x), list(x.shape), align_corners=False)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode=padding_mode, align_corners=False)
    return out.clamp_(0.0, 1.0)  # bilinear weights can overshoot 1 by a rounding error


def _box_mask(top: Tensor, bottom: Tensor, left: Tensor, right: Tensor, h: int, w: int) -> Tensor:
    """N x 1 x H x W, True inside each image's box [top, bottom) x [left, right)."""
    import torch

    rows = torch.arange(h, device=top.device)
    cols = torch.arange(w, device=top.device)
    in_rows = (rows >= top.view(-1, 1)) & (rows < bottom.view(-1, 1))  # N x H
    in_cols = (cols >= left.view(-1, 1)) & (cols < right.view(-1, 1))  # N x W
    return (in_rows[:, :, None] & in_cols[:, None, :]).unsqueeze(1)


# --- The same flips and shifts as pixel maps, for uint8 batches ---------------------------
#
# Flips and whole-pixel shifts move pixels without changing them, so they can run on the
# uint8 images (one byte a pixel) before the cast to float, and fuse into the gather that
# forms the batch. Each map below draws exactly the random numbers its kernel draws, in the
# same order, so a batch comes out the same whichever way it is augmented (tests pin it).

PixelMapStep = Callable[["Tensor", "Tensor", float, "torch.Generator"], tuple["Tensor", "Tensor"]]
_PIXEL_MAPS: dict[str, PixelMapStep] = {}


def _pixel_map_of(name: str) -> Callable[[PixelMapStep], PixelMapStep]:
    def decorate(step: PixelMapStep) -> PixelMapStep:
        _PIXEL_MAPS[name] = step
        return step

    return decorate


@dataclass(frozen=True)
class PixelMap:
    """Where each pixel of an augmented batch comes from, per image and per axis.

    ``out[n, :, i, j] == x[n, :, rows[n, i], cols[n, j]]``, with rows N x H and cols N x W,
    int64 on the CPU.
    """

    rows: Tensor
    cols: Tensor

    def apply(self, x: Tensor) -> Tensor:
        """The mapped batch of an N x C x H x W ``x``, in its dtype and memory format (as
        the kernels keep them: reductions after it then add up in the same order)."""
        import torch

        n = x.shape[0]
        rows = _send(self.rows, x).view(n, -1, 1)
        cols = _send(self.cols, x).view(n, 1, -1)
        batch = torch.arange(n, device=x.device).view(n, 1, 1)
        out = x[batch, :, rows, cols].permute(0, 3, 1, 2)
        return out.contiguous(memory_format=_memory_format(x))


@_pixel_map_of("hflip")
def _hflip_map(
    rows: Tensor, cols: Tensor, strength: float, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    import torch

    flip = _draw_flips(generator, cols.shape[0], strength)
    return rows, torch.where(flip.view(-1, 1), cols.flip(1), cols)


@_pixel_map_of("vflip")
def _vflip_map(
    rows: Tensor, cols: Tensor, strength: float, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    import torch

    flip = _draw_flips(generator, rows.shape[0], strength)
    return torch.where(flip.view(-1, 1), rows.flip(1), rows), cols


@_pixel_map_of("translate")
def _translate_map(
    rows: Tensor, cols: Tensor, strength: float, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    import torch

    (n, h), w = rows.shape, cols.shape[1]
    drawn = _draw_shifts(generator, n, strength, h, w)
    if drawn is None:
        return rows, cols
    dy, dx = drawn
    moved_rows = _reflect(torch.arange(h) - dy.view(n, 1), h)
    moved_cols = _reflect(torch.arange(w) - dx.view(n, 1), w)
    return rows.gather(1, moved_rows), cols.gather(1, moved_cols)


# --- Batch mixing (changes the targets, so not in the registry) -----------------------------


def mixup(
    x: Tensor, y: Tensor, num_classes: int, alpha: float, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """Blend each image with another from the batch, and its one-hot target by the same weight.

    Pairs come from one random permutation of the batch; each image draws its own weight
    lambda ~ Beta(alpha, alpha) (per image rather than per batch: free when vectorised, and
    the loss sees the whole range of blends in every step). Returns the blended images and
    float32 soft targets N x num_classes whose rows sum to 1:
    ``x_mixed = lambda x + (1 - lambda) x[perm]``, ``t = lambda onehot(y) + ...``.
    """
    import torch

    lam, perm = _mix_parameters("mixup", x, y, num_classes, alpha, generator)
    lam_x = _send(lam, x).to(x.dtype).view(-1, 1, 1, 1)
    perm_d = _send(perm, x)
    mixed = torch.lerp(x[perm_d], x, lam_x).clamp_(0.0, 1.0)
    return mixed, _soft_targets(y, perm_d, _send(lam.float(), x), num_classes)


def cutmix(
    x: Tensor, y: Tensor, num_classes: int, alpha: float, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """Paste a box from another image of the batch into each image; targets by pasted area.

    As in Yun et al.: lambda ~ Beta(alpha, alpha) per image, a box of sides sqrt(1 - lambda)
    of the image's, centred anywhere and clipped at the edges. The target gives the pasted
    image the box's true area fraction (after clipping), the own image the rest. Returns the
    images and float32 soft targets N x num_classes whose rows sum to 1.
    """
    import torch

    n, _, h, w = x.shape
    lam, perm = _mix_parameters("cutmix", x, y, num_classes, alpha, generator)
    ratio = torch.sqrt(1 - lam)
    centre = _rand(generator, n, 2)
    cy, cx = (centre[:, 0] * h).floor(), (centre[:, 1] * w).floor()
    half_h, half_w = (ratio * h / 2).round(), (ratio * w / 2).round()
    top = (cy - half_h).clamp(0, h).long()
    bottom = (cy + half_h).clamp(0, h).long()
    left = (cx - half_w).clamp(0, w).long()
    right = (cx + half_w).clamp(0, w).long()
    pasted = ((bottom - top) * (right - left)).double() / (h * w)
    box = _send(torch.stack([top, bottom, left, right], dim=1), x)
    mask = _box_mask(box[:, 0], box[:, 1], box[:, 2], box[:, 3], h, w)
    perm_d = _send(perm, x)
    mixed = torch.where(mask, x[perm_d], x)
    own = _send((1 - pasted).float(), x)
    return mixed, _soft_targets(y, perm_d, own, num_classes)


def _mix_parameters(
    name: str, x: Tensor, y: Tensor, num_classes: int, alpha: float, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """Per-image Beta(alpha, alpha) weights (float64, CPU) and a pairing permutation (CPU)."""
    import numpy as np
    import torch

    _check_batch(name, x)
    if generator.device.type != "cpu":
        raise ValueError(f"{name}: pass a CPU torch.Generator.")
    n = x.shape[0]
    if not alpha > 0:
        raise SpecError(f"The {name} alpha must be above 0, not {alpha}.")
    if y.dim() != 1 or y.shape[0] != n or y.is_floating_point():
        raise ValueError(f"{name}: expected N integer labels, got {tuple(y.shape)} {y.dtype}.")
    if num_classes < 1:
        raise ValueError(f"{name}: num_classes must be at least 1, not {num_classes}.")
    # torch's Beta sampler takes no generator; numpy's does, seeded from ours so one seed
    # still fixes the whole run.
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    lam = torch.from_numpy(np.random.default_rng(seed).beta(alpha, alpha, size=n))
    perm = torch.randperm(n, generator=generator)
    return lam, perm


def _soft_targets(y: Tensor, perm: Tensor, own: Tensor, num_classes: int) -> Tensor:
    """own x onehot(y) + (1 - own) x onehot(y[perm]), float32 N x K."""
    import torch

    # Not F.one_hot: on CUDA it checks the labels' range on the CPU, a stall every step.
    onehot = torch.zeros(y.shape[0], num_classes, dtype=torch.float32, device=y.device)
    onehot.scatter_(1, y.long().view(-1, 1), 1.0)
    own = own.view(-1, 1)
    return onehot * own + onehot[perm] * (1 - own)


# --- The batch augmenter the training loop holds ---------------------------------------------


class BatchAugmenter:
    """Runs a list of (name, strength) steps, then mixup or cutmix, with its own seeded RNG.

    It owns a CPU ``torch.Generator`` seeded once, so a run's augmentations are the same every
    time it is repeated with the same seed, whatever else draws random numbers. Names and
    strengths are checked here, when the run starts, not at the first batch.
    """

    def __init__(
        self,
        steps: Sequence[tuple[str, float]],
        *,
        mixup_alpha: float = 0.0,
        cutmix_alpha: float = 0.0,
        seed: int = 0,
    ) -> None:
        import torch

        checked: list[tuple[str, float]] = []
        for name, strength in steps:
            key = str(name).strip().lower()
            if key not in _AUGMENTATIONS:
                raise _unknown(str(name))
            checked.append((key, _check_strength(key, strength)))
        for label, alpha in (("mixup", mixup_alpha), ("cutmix", cutmix_alpha)):
            if not (math.isfinite(alpha) and alpha >= 0):
                raise SpecError(f"The {label} alpha must be 0 (off) or above, not {alpha}.")
        self.steps: tuple[tuple[str, float], ...] = tuple(checked)
        self.mixup_alpha = float(mixup_alpha)
        self.cutmix_alpha = float(cutmix_alpha)
        self.seed = int(seed)
        # Steps at strength 0 are the identity: skip them rather than call them every batch.
        active = [(n, s) for n, s in self.steps if s > 0]
        self._active = [(_AUGMENTATIONS[n].fn, s) for n, s in active]
        # The leading flips and shifts, which pixel_map() can do on uint8 before the cast.
        lead = 0
        while lead < len(active) and active[lead][0] in _PIXEL_MAPS:
            lead += 1
        self._mapped = [(_PIXEL_MAPS[n], n, s) for n, s in active[:lead]]
        self._rest = self._active[lead:]  # then the steps that compute new pixel values
        self._generator = torch.Generator().manual_seed(self.seed)

    @classmethod
    def from_spec(cls, spec: DatasetSpec, *, seed: int = 0) -> BatchAugmenter:
        """The augmenter a DatasetSpec asks for."""
        return cls(
            [(step.name, step.strength) for step in spec.augment],
            mixup_alpha=spec.mixup_alpha,
            cutmix_alpha=spec.cutmix_alpha,
            seed=seed,
        )

    @property
    def mixes_targets(self) -> bool:
        """Whether it returns soft targets (float N x K) instead of the integer labels."""
        return self.mixup_alpha > 0 or self.cutmix_alpha > 0

    def __bool__(self) -> bool:
        """False when calling it would hand the batch back unchanged, so the loop can skip it."""
        return bool(self._active) or self.mixes_targets

    def __call__(self, x: Tensor, y: Tensor, num_classes: int) -> tuple[Tensor, Tensor]:
        """Augment a batch; targets come back as ``y`` itself, or float32 soft targets.

        ``torch.nn.functional.cross_entropy`` takes either kind, so the loop need not care.
        """
        import torch

        with torch.no_grad():
            for fn, strength in self._active[: len(self._mapped)]:
                x = fn(x, strength, self._generator)
        return self.rest(x, y, num_classes)

    # The same augmentation in two parts, for a loader that gathers uint8 images: first
    # pixel_map() (the leading flips and shifts, as one map the gather follows), then rest()
    # on the float batch. Together they draw and compute exactly what __call__ does.

    @property
    def has_rest(self) -> bool:
        """Whether anything is left for rest() after pixel_map() (other steps, or mixing)."""
        return bool(self._rest) or self.mixes_targets

    def map_layout(self, h: int, w: int) -> tuple[int, bool]:
        """The most pixel_map() can shift columns by, and whether it can mirror them.

        A loader can keep its images padded by that many reflected columns on each side, and
        mirrored, so that every mapped row is one contiguous run of bytes to copy.
        """
        shift = sum(_shift_limits(s, h, w)[1] for _, name, s in self._mapped if name == "translate")
        return shift, any(name == "hflip" for _, name, _ in self._mapped)

    def pixel_map(self, n: int, h: int, w: int) -> PixelMap | None:
        """The leading flips and shifts of a batch of ``n`` h x w images, as one map.

        Draws from the generator exactly what those kernels would; call rest() next. None
        when the augmentation does not start with a flip or shift (nothing is drawn then).
        """
        import torch

        if not self._mapped:
            return None
        rows = torch.arange(h).expand(n, h)
        cols = torch.arange(w).expand(n, w)
        for step, _, strength in self._mapped:
            rows, cols = step(rows, cols, strength, self._generator)
        return PixelMap(rows, cols)

    def rest(self, x: Tensor, y: Tensor, num_classes: int) -> tuple[Tensor, Tensor]:
        """The steps after pixel_map()'s, then mixing, on the float 0..1 batch."""
        import torch

        with torch.no_grad():
            for fn, strength in self._rest:
                x = fn(x, strength, self._generator)
            mix = self._pick_mix()
            if mix is None:
                return x, y
            fn, alpha = mix
            return fn(x, y, num_classes, alpha, self._generator)

    def _pick_mix(self) -> tuple[Callable[..., tuple[Tensor, Tensor]], float] | None:
        import torch

        if self.mixup_alpha > 0 and self.cutmix_alpha > 0:
            # Both on: one or the other per batch, as timm does; mixing both blurs the targets.
            if float(torch.rand(1, generator=self._generator)) < 0.5:
                return mixup, self.mixup_alpha
            return cutmix, self.cutmix_alpha
        if self.mixup_alpha > 0:
            return mixup, self.mixup_alpha
        if self.cutmix_alpha > 0:
            return cutmix, self.cutmix_alpha
        return None

    def reseed(self, seed: int) -> None:
        """Restart the RNG from ``seed``. The loader does this per batch, from (run seed,
        epoch, batch), so a run resumed mid-epoch draws exactly what it would have drawn."""
        self._generator.manual_seed(seed)

    def state_dict(self) -> dict[str, Any]:
        """The RNG state, so a run resumed from a checkpoint draws what it would have drawn."""
        return {"generator": self._generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._generator.set_state(state["generator"])

    def __repr__(self) -> str:
        return (
            f"BatchAugmenter(steps={list(self.steps)!r}, mixup_alpha={self.mixup_alpha}, "
            f"cutmix_alpha={self.cutmix_alpha}, seed={self.seed})"
        )


def preview(
    images: np.ndarray,
    steps: Sequence[tuple[str, float]],
    seed: int,
    mixup_alpha: float = 0.0,
    cutmix_alpha: float = 0.0,
) -> np.ndarray:
    """The GUI's "after augmentation" grid: uint8 N x H x W x C in, the same shape out.

    Runs on the CPU with a fresh augmenter seeded with ``seed``, so the re-roll button only
    has to pass another seed. Mixing blends images of this batch with each other; the labels
    do not change the pictures, so none are asked for.
    """
    import numpy as np
    import torch

    array = np.asarray(images)
    if array.ndim != 4 or array.dtype != np.uint8:
        raise ValueError(
            f"preview expects uint8 N x H x W x C images, got {array.shape} {array.dtype}."
        )
    augmenter = BatchAugmenter(steps, mixup_alpha=mixup_alpha, cutmix_alpha=cutmix_alpha, seed=seed)
    if len(array) == 0 or not augmenter:
        return array.copy()
    x = torch.tensor(array).permute(0, 3, 1, 2).float().div_(255.0)  # a copy: input untouched
    labels = torch.zeros(len(array), dtype=torch.long)
    out, _ = augmenter(x, labels, num_classes=1)
    return (
        out.mul(255.0)
        .round_()
        .clamp_(0, 255)
        .to(torch.uint8)
        .permute(0, 2, 3, 1)
        .contiguous()
        .numpy()
    )
