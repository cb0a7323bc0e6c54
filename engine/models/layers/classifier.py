"""The classifier end of a network (flatten, linear) and dropout."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from pydantic import Field

from cnn_lab.engine.models.layers.registry import (
    BuildContext,
    LayerParams,
    NoParams,
    Shape,
    register_layer,
)
from cnn_lab.engine.models.layers.shapes import need_vector

if TYPE_CHECKING:
    from torch import nn


class LinearParams(LayerParams):
    out_features: Annotated[
        int | None,
        Field(
            ge=1,
            le=65536,
            description="Outputs. Empty: one per class of the dataset (use it for the last layer).",
        ),
    ] = None
    bias: Annotated[bool, Field(description="Add a learned bias.")] = True


class DropoutParams(LayerParams):
    p: Annotated[
        float,
        Field(
            ge=0.0,
            lt=1.0,
            description="Share of values zeroed during training: fights overfitting, slows "
            "convergence a little.",
        ),
    ] = 0.5


@register_layer(
    "flatten",
    title="Flatten",
    category="Classifier",
    description="Turns a feature map [C, H, W] into a vector of C·H·W values. The next "
    "linear layer then depends on the image size.",
)
def flatten(p: NoParams, shape: Shape, ctx: BuildContext) -> nn.Module:
    from torch import nn

    return nn.Flatten()


@register_layer(
    "linear",
    title="Linear",
    category="Classifier",
    description="A fully connected layer. The last one gives one score per class.",
    params=LinearParams,
    label=lambda p: f"Linear → {p.out_features or 'classes'}",
)
def linear(p: LinearParams, shape: Shape, ctx: BuildContext) -> nn.Module:
    from torch import nn

    features = need_vector(shape)
    return nn.Linear(features, p.out_features or ctx.classes, bias=p.bias)


@register_layer(
    "dropout",
    title="Dropout",
    category="Regularisation",
    description="Zeroes random values while training; does nothing at evaluation.",
    params=DropoutParams,
    label=lambda p: f"Dropout {p.p:g}",
)
def dropout(p: DropoutParams, shape: Shape, ctx: BuildContext) -> nn.Module:
    from torch import nn

    return nn.Dropout(p.p)
