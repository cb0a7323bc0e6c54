"""Normalisation layers."""

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
from cnn_lab.engine.util.formatting import format_shape as fmt

if TYPE_CHECKING:
    from torch import nn


class BatchNormParams(LayerParams):
    momentum: Annotated[
        float,
        Field(gt=0.0, le=1.0, description="How fast the running statistics follow the batches."),
    ] = 0.1
    eps: Annotated[float, Field(gt=0.0, le=0.1, description="Added to the variance.")] = 1e-5


class GroupNormParams(LayerParams):
    groups: Annotated[
        int,
        Field(
            ge=1,
            le=1024,
            description="Channel groups normalised together. Independent of the batch size, "
            "so it suits small batches. Must divide the channels.",
        ),
    ] = 8
    eps: Annotated[float, Field(gt=0.0, le=0.1, description="Added to the variance.")] = 1e-5


@register_layer(
    "batchnorm",
    title="BatchNorm",
    category="Normalisation",
    description="Normalises each channel over the batch: allows higher learning rates and "
    "faster training. Works on feature maps and on vectors.",
    params=BatchNormParams,
)
def batchnorm(p: BatchNormParams, shape: Shape, ctx: BuildContext) -> nn.Module:
    from torch import nn

    if len(shape) == 3:
        return nn.BatchNorm2d(shape[0], eps=p.eps, momentum=p.momentum)
    if len(shape) == 1:
        return nn.BatchNorm1d(shape[0], eps=p.eps, momentum=p.momentum)
    raise LayerProblem(f"cannot normalise an input of shape {fmt(shape)}")


@register_layer(
    "groupnorm",
    title="GroupNorm",
    category="Normalisation",
    description="Normalises groups of channels within each image: batch-size independent.",
    params=GroupNormParams,
    label=lambda p: f"GroupNorm /{p.groups}",
)
def groupnorm(p: GroupNormParams, shape: Shape, ctx: BuildContext) -> nn.Module:
    from torch import nn

    channels = shape[0]
    if channels % p.groups:
        raise LayerProblem(
            f"the channels do not match: {channels} channels cannot be split into {p.groups} "
            "groups; choose a number of groups that divides the channels"
        )
    return nn.GroupNorm(p.groups, channels, eps=p.eps)
