"""Pooling: local max and average windows, and global pooling to a vector."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from pydantic import Field

from cnn_lab.engine.models.layers.registry import (
    BuildContext,
    LayerParams,
    LayerProblem,
    NoParams,
    Shape,
    register_layer,
)
from cnn_lab.engine.models.layers.shapes import need_map, window_fits

if TYPE_CHECKING:
    from torch import nn


class PoolParams(LayerParams):
    kernel: Annotated[int, Field(ge=1, le=31, description="Window size.")] = 2
    stride: Annotated[
        int | None,
        Field(ge=1, le=31, description="Step of the window. Empty: the window size."),
    ] = None
    padding: Annotated[
        int, Field(ge=0, le=15, description="Padding on each side; at most half the window.")
    ] = 0


def _check(p: PoolParams, shape: Shape) -> int:
    if 2 * p.padding > p.kernel:
        raise LayerProblem(
            f"padding {p.padding} is more than half the window ({p.kernel}); lower it"
        )
    window_fits(shape, p.kernel, p.padding, 1, "pooling window")
    return p.stride or p.kernel


def _pool_label(name: str, p: PoolParams) -> str:
    stride = p.stride or p.kernel
    return f"{name} {p.kernel}×{p.kernel}" + (f", /{stride}" if stride > 1 else "")


@register_layer(
    "max_pool",
    title="MaxPool",
    category="Pooling",
    description="Keeps the largest value in each window: downsamples and adds some "
    "translation tolerance.",
    params=PoolParams,
    label=lambda p: _pool_label("MaxPool", p),
)
def max_pool(p: PoolParams, shape: Shape, ctx: BuildContext) -> nn.Module:
    from torch import nn

    return nn.MaxPool2d(p.kernel, stride=_check(p, shape), padding=p.padding)


@register_layer(
    "avg_pool",
    title="AvgPool",
    category="Pooling",
    description="Averages each window: a smoother downsampling than max pooling.",
    params=PoolParams,
    label=lambda p: _pool_label("AvgPool", p),
)
def avg_pool(p: PoolParams, shape: Shape, ctx: BuildContext) -> nn.Module:
    from torch import nn

    return nn.AvgPool2d(p.kernel, stride=_check(p, shape), padding=p.padding)


@register_layer(
    "global_avg_pool",
    title="Global avg pool",
    category="Pooling",
    description="Averages each channel over the whole map, [C, H, W] → [C]: the usual bridge "
    "to the classifier, and it makes the net work at any image size.",
)
def global_avg_pool(p: NoParams, shape: Shape, ctx: BuildContext) -> nn.Module:
    from torch import nn

    need_map(shape)
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())


@register_layer(
    "global_max_pool",
    title="Global max pool",
    category="Pooling",
    description="Keeps each channel's largest value, [C, H, W] → [C]: suits small objects "
    "anywhere in the image.",
)
def global_max_pool(p: NoParams, shape: Shape, ctx: BuildContext) -> nn.Module:
    from torch import nn

    need_map(shape)
    return nn.Sequential(nn.AdaptiveMaxPool2d(1), nn.Flatten())
