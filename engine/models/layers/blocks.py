"""Blocks that hold layers: residual (with its own inner layers), ResNet's basic and bottleneck
blocks, squeeze-and-excitation and MBConv (the inverted residual of MobileNetV2/EfficientNet).

The named blocks are written as the inner layers they stand for, so one residual builder
serves them all and "Open block" in the panel can show those layers for editing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field

from cnn_lab.engine.models.layers.registry import (
    BuildContext,
    LayerParams,
    LayerProblem,
    Shape,
    register_layer,
)
from cnn_lab.engine.models.layers.shapes import need_map
from cnn_lab.engine.specs import LayerSpec
from cnn_lab.engine.util.formatting import format_shape as fmt

if TYPE_CHECKING:
    from torch import nn

Activation = Literal["none", "relu", "silu", "gelu", "hardswish"]

OutChannels = Annotated[int, Field(ge=1, le=8192, description="Output channels of the block.")]
Stride = Annotated[int, Field(ge=1, le=4, description="2 halves the height and width.")]


class ResidualParams(LayerParams):
    activation: Annotated[
        Activation, Field(description="Applied after the sum (ReLU in ResNet, none in MBConv).")
    ] = "relu"


class BasicParams(LayerParams):
    out_channels: OutChannels = 64
    stride: Stride = 1


class BottleneckParams(LayerParams):
    out_channels: OutChannels = 256
    stride: Stride = 1
    expansion: Annotated[
        int,
        Field(ge=1, le=16, description="Output channels ÷ inner channels (4 in ResNet-50)."),
    ] = 4


class SqueezeExciteParams(LayerParams):
    reduction: Annotated[
        int, Field(ge=1, le=64, description="Channels ÷ squeezed channels of the gate.")
    ] = 4
    activation: Annotated[Activation, Field(description="Inside the gate.")] = "relu"


class MBConvParams(LayerParams):
    out_channels: OutChannels = 32
    expand_ratio: Annotated[
        int, Field(ge=1, le=8, description="Inner channels = input channels × this.")
    ] = 6
    kernel: Annotated[int, Field(ge=1, le=9, description="Depthwise window size.")] = 3
    stride: Stride = 1
    se_ratio: Annotated[
        float,
        Field(ge=0.0, le=1.0, description="Squeeze-and-excitation size; 0 leaves it out."),
    ] = 0.25
    activation: Annotated[Activation, Field(description="SiLU in EfficientNet.")] = "silu"


def _layer(kind: str, **params: object) -> LayerSpec:
    return LayerSpec(kind=kind, params=params)


# Activation choice → torch.nn class name ("none" is the identity).
_ACTIVATION_CLASS = {"relu": "ReLU", "silu": "SiLU", "gelu": "GELU", "hardswish": "Hardswish"}


def _activation_class(name: str) -> type[nn.Module]:
    from torch import nn

    return getattr(nn, _ACTIVATION_CLASS.get(name, "Identity"))


def _activation_module(name: str) -> nn.Module:
    return _activation_class(name)()


def _shortcut_stride(before: Shape, after: Shape) -> int | None:
    """The stride of a 1×1 convolution that maps ``before``'s size to ``after``'s, if any."""
    for stride in range(1, max(before[1:]) + 1):
        if all((b - 1) // stride + 1 == a for b, a in zip(before[1:], after[1:], strict=True)):
            return stride
    return None


def build_residual(
    inner: tuple[LayerSpec, ...], shape: Shape, ctx: BuildContext, activation: str
) -> nn.Module:
    """Inner layers plus a shortcut that matches their output, summed."""
    from torch import nn

    from cnn_lab.engine.models.layers.modules import Residual

    if not inner:
        raise LayerProblem("a residual block needs at least one inner layer")
    body, out = ctx.sequence(inner, shape)
    shortcut: nn.Module
    if out == shape:
        shortcut = nn.Identity()
    elif len(out) == 3 and len(shape) == 3:
        stride = _shortcut_stride(shape, out)
        if stride is None:
            raise LayerProblem(
                f"the block cannot be built: its inner layers turn {fmt(shape)} into "
                f"{fmt(out)}, and no strided 1×1 shortcut gives that size; make the inner "
                "layers keep the size or divide it by a whole number"
            )
        shortcut = nn.Sequential(
            nn.Conv2d(shape[0], out[0], 1, stride=stride, bias=False), nn.BatchNorm2d(out[0])
        )
    elif len(out) == 1 and len(shape) == 1:
        shortcut = nn.Linear(shape[0], out[0], bias=False)
    else:
        raise LayerProblem(
            f"the block cannot be built: its inner layers turn {fmt(shape)} into {fmt(out)}, "
            "and a shortcut cannot add a vector to a feature map; keep flatten and global "
            "pooling outside the block"
        )
    return Residual(body, shortcut, _activation_module(activation))


@register_layer(
    "residual",
    title="Residual block",
    category="Blocks",
    description="Its inner layers plus a shortcut around them (x + f(x)): lets deep nets "
    "train. A projection is added when the inner layers change the shape.",
    params=ResidualParams,
    container=True,
)
def residual(p: ResidualParams, shape: Shape, ctx: BuildContext) -> nn.Module:
    return build_residual(ctx.inner_layers, shape, ctx, p.activation)


def _basic_inner(p: BasicParams) -> tuple[LayerSpec, ...]:
    return (
        _layer("conv2d", out_channels=p.out_channels, kernel=3, stride=p.stride),
        _layer("batchnorm"),
        _layer("relu"),
        _layer("conv2d", out_channels=p.out_channels, kernel=3),
        _layer("batchnorm"),
    )


def _bottleneck_inner(p: BottleneckParams) -> tuple[LayerSpec, ...]:
    mid = max(1, p.out_channels // p.expansion)
    return (
        _layer("conv2d", out_channels=mid, kernel=1),
        _layer("batchnorm"),
        _layer("relu"),
        _layer("conv2d", out_channels=mid, kernel=3, stride=p.stride),
        _layer("batchnorm"),
        _layer("relu"),
        _layer("conv2d", out_channels=p.out_channels, kernel=1),
        _layer("batchnorm"),
    )


def _as_residual(inner: tuple[LayerSpec, ...], activation: str) -> tuple[LayerSpec, ...]:
    return (LayerSpec(kind="residual", params={"activation": activation}, layers=inner),)


def _stride_label(name: str, channels: int, stride: int) -> str:
    return f"{name}, {channels}" + (f", /{stride}" if stride > 1 else "")


@register_layer(
    "basic_block",
    title="Basic block",
    category="Blocks",
    description="ResNet-18/34's block: two 3×3 conv-BN layers with a shortcut.",
    params=BasicParams,
    label=lambda p: _stride_label("Basic block", p.out_channels, p.stride),
    expand=lambda p, shape: _as_residual(_basic_inner(p), "relu"),
)
def basic_block(p: BasicParams, shape: Shape, ctx: BuildContext) -> nn.Module:
    need_map(shape)
    return build_residual(_basic_inner(p), shape, ctx, "relu")


@register_layer(
    "bottleneck",
    title="Bottleneck block",
    category="Blocks",
    description="ResNet-50's block: 1×1 reduce, 3×3, 1×1 expand, with a shortcut. Cheaper "
    "than a basic block at high channel counts.",
    params=BottleneckParams,
    label=lambda p: _stride_label("Bottleneck", p.out_channels, p.stride),
    expand=lambda p, shape: _as_residual(_bottleneck_inner(p), "relu"),
)
def bottleneck(p: BottleneckParams, shape: Shape, ctx: BuildContext) -> nn.Module:
    need_map(shape)
    return build_residual(_bottleneck_inner(p), shape, ctx, "relu")


@register_layer(
    "squeeze_excite",
    title="Squeeze-excitation",
    category="Blocks",
    description="Reweights channels with a gate computed from the whole map: a few percent "
    "more accuracy for little compute (SENet, EfficientNet).",
    params=SqueezeExciteParams,
    label=lambda p: f"SE /{p.reduction}",
)
def squeeze_excite(p: SqueezeExciteParams, shape: Shape, ctx: BuildContext) -> nn.Module:
    from torchvision.ops import SqueezeExcitation

    channels, _, _ = need_map(shape)
    gate = "relu" if p.activation == "none" else p.activation  # the gate needs a nonlinearity
    return SqueezeExcitation(
        channels, max(1, channels // p.reduction), activation=_activation_class(gate)
    )


def _mbconv_layers(p: MBConvParams, shape: Shape) -> tuple[LayerSpec, ...]:
    channels = shape[0]
    act = p.activation if p.activation != "none" else None
    inner: list[LayerSpec] = []
    if p.expand_ratio != 1:
        inner += [_layer("conv2d", out_channels=channels * p.expand_ratio, kernel=1)]
        inner += [_layer("batchnorm")] + ([_layer(act)] if act else [])
    inner += [_layer("depthwise_conv", kernel=p.kernel, stride=p.stride), _layer("batchnorm")]
    inner += [_layer(act)] if act else []
    if p.se_ratio > 0:
        reduction = max(1, round(p.expand_ratio / p.se_ratio))
        inner += [_layer("squeeze_excite", reduction=reduction, activation=p.activation)]
    inner += [_layer("conv2d", out_channels=p.out_channels, kernel=1), _layer("batchnorm")]
    if p.stride == 1 and channels == p.out_channels:
        return _as_residual(tuple(inner), "none")
    return tuple(inner)


@register_layer(
    "mbconv",
    title="MBConv",
    category="Blocks",
    description="Inverted residual (MobileNetV2, EfficientNet): 1×1 expand, depthwise, "
    "squeeze-excitation, 1×1 project; a shortcut when the shape is kept. Very cheap per "
    "accuracy point, but memory-hungry in training.",
    params=MBConvParams,
    label=lambda p: (
        f"MBConv{p.expand_ratio} {p.kernel}×{p.kernel}, {p.out_channels}"
        + (f", /{p.stride}" if p.stride > 1 else "")
    ),
    expand=_mbconv_layers,
)
def mbconv(p: MBConvParams, shape: Shape, ctx: BuildContext) -> nn.Module:
    need_map(shape)
    layers = _mbconv_layers(p, shape)
    if len(layers) == 1 and layers[0].kind == "residual":
        return build_residual(layers[0].layers, shape, ctx, "none")
    module, _ = ctx.sequence(layers, shape)
    return module
