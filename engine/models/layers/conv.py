"""Convolutions: plain (with groups and dilation), depthwise, and depthwise separable."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from pydantic import Field

from cnn_lab.engine.models.layers.registry import (
    BuildContext,
    LayerParams,
    LayerProblem,
    Shape,
    register_layer,
)
from cnn_lab.engine.models.layers.shapes import need_map, same_padding, window_fits

if TYPE_CHECKING:
    from torch import nn

Channels = Annotated[
    int,
    Field(
        ge=1,
        le=8192,
        description="Output channels (filters). More channels learn more; compute grows with "
        "input × output channels.",
    ),
]
Kernel = Annotated[
    int, Field(ge=1, le=31, description="Window size. 3 is the usual choice; larger costs more.")
]
Stride = Annotated[
    int,
    Field(ge=1, le=16, description="Step of the window. 2 halves the height and width (and cost)."),
]
Padding = Annotated[
    int | None,
    Field(
        ge=0,
        le=64,
        description="Zeros added on each side. Empty: 'same' padding, which keeps the size "
        "at stride 1.",
    ),
]
Dilation = Annotated[
    int,
    Field(ge=1, le=16, description="Spacing of the window's taps: sees wider at the same cost."),
]
Bias = Annotated[bool, Field(description="Add a learned bias. Not needed when batch norm follows.")]


class ConvParams(LayerParams):
    out_channels: Channels = 32
    kernel: Kernel = 3
    stride: Stride = 1
    padding: Padding = None
    dilation: Dilation = 1
    groups: Annotated[
        int,
        Field(
            ge=1,
            le=8192,
            description="Split channels into groups convolved apart; cuts compute by the "
            "number of groups. Must divide input and output channels.",
        ),
    ] = 1
    bias: Bias = False


class DepthwiseParams(LayerParams):
    kernel: Kernel = 3
    stride: Stride = 1
    padding: Padding = None
    dilation: Dilation = 1
    multiplier: Annotated[
        int, Field(ge=1, le=16, description="Output channels per input channel.")
    ] = 1
    bias: Bias = False


class SeparableParams(LayerParams):
    out_channels: Channels = 64
    kernel: Kernel = 3
    stride: Stride = 1
    padding: Padding = None
    dilation: Dilation = 1
    bias: Bias = False


def _padding(p: ConvParams | DepthwiseParams | SeparableParams) -> int:
    return p.padding if p.padding is not None else same_padding(p.kernel, p.dilation)


def _conv_label(name: str, kernel: int, channels: int | None, stride: int) -> str:
    text = f"{name} {kernel}×{kernel}"
    if channels is not None:
        text += f", {channels}"
    return text + (f", /{stride}" if stride > 1 else "")


@register_layer(
    "conv2d",
    title="Conv2d",
    category="Convolution",
    description="A 2-D convolution: learns local patterns. The workhorse of a CNN.",
    params=ConvParams,
    label=lambda p: _conv_label("Conv", p.kernel, p.out_channels, p.stride),
)
def conv2d(p: ConvParams, shape: Shape, ctx: BuildContext) -> nn.Module:
    from torch import nn

    channels, _, _ = need_map(shape)
    for what, count in (("input", channels), ("output", p.out_channels)):
        if count % p.groups:
            raise LayerProblem(
                f"the channels do not match: {count} {what} channels cannot be split into "
                f"{p.groups} groups; make groups divide both channel counts"
            )
    window_fits(shape, p.kernel, _padding(p), p.dilation, "kernel")
    return nn.Conv2d(
        channels,
        p.out_channels,
        p.kernel,
        stride=p.stride,
        padding=_padding(p),
        dilation=p.dilation,
        groups=p.groups,
        bias=p.bias,
    )


@register_layer(
    "depthwise_conv",
    title="Depthwise conv",
    category="Convolution",
    description="One filter per channel (groups = channels): spatial mixing at a fraction of "
    "a full convolution's cost. Follow it with a 1×1 convolution to mix channels.",
    params=DepthwiseParams,
    label=lambda p: _conv_label("Depthwise", p.kernel, None, p.stride),
)
def depthwise_conv(p: DepthwiseParams, shape: Shape, ctx: BuildContext) -> nn.Module:
    from torch import nn

    channels, _, _ = need_map(shape)
    window_fits(shape, p.kernel, _padding(p), p.dilation, "kernel")
    return nn.Conv2d(
        channels,
        channels * p.multiplier,
        p.kernel,
        stride=p.stride,
        padding=_padding(p),
        dilation=p.dilation,
        groups=channels,
        bias=p.bias,
    )


@register_layer(
    "separable_conv",
    title="Separable conv",
    category="Convolution",
    description="Depthwise then 1×1 pointwise convolution (MobileNet, Xception): close to a "
    "full convolution's accuracy for about 1/9 of the compute at 3×3.",
    params=SeparableParams,
    label=lambda p: _conv_label("Separable", p.kernel, p.out_channels, p.stride),
)
def separable_conv(p: SeparableParams, shape: Shape, ctx: BuildContext) -> nn.Module:
    from collections import OrderedDict

    from torch import nn

    channels, _, _ = need_map(shape)
    window_fits(shape, p.kernel, _padding(p), p.dilation, "kernel")
    return nn.Sequential(
        OrderedDict(
            depthwise=nn.Conv2d(
                channels,
                channels,
                p.kernel,
                stride=p.stride,
                padding=_padding(p),
                dilation=p.dilation,
                groups=channels,
                bias=False,
            ),
            pointwise=nn.Conv2d(channels, p.out_channels, 1, bias=p.bias),
        )
    )
