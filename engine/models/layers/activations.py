"""Activations. Each is a registry entry so that the palette, the spec and the builder agree."""

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

if TYPE_CHECKING:
    from torch import nn


class LeakyParams(LayerParams):
    negative_slope: Annotated[
        float, Field(ge=0.0, le=1.0, description="Slope for negative inputs.")
    ] = 0.01


# kind → (title, torch.nn class name, description): the activations without parameters.
_PLAIN = {
    "relu": ("ReLU", "ReLU", "max(0, x): cheap and the usual default."),
    "gelu": (
        "GELU",
        "GELU",
        "Smooth ReLU used by ConvNeXt and transformers; slightly slower than ReLU.",
    ),
    "silu": ("SiLU", "SiLU", "x·sigmoid(x), also called Swish: EfficientNet's activation."),
    "hardswish": (
        "Hardswish",
        "Hardswish",
        "A piecewise-linear Swish (MobileNetV3): nearly as good, cheaper on CPUs.",
    ),
}


def _plain(class_name: str):  # type: ignore[no-untyped-def]
    def build(p: NoParams, shape: Shape, ctx: BuildContext) -> nn.Module:
        from torch import nn

        return getattr(nn, class_name)()

    return build


for _kind, (_title, _class_name, _description) in _PLAIN.items():
    register_layer(_kind, title=_title, category="Activation", description=_description)(
        _plain(_class_name)
    )


@register_layer(
    "leaky_relu",
    title="LeakyReLU",
    category="Activation",
    description="ReLU with a small slope for negative inputs, so units never die.",
    params=LeakyParams,
)
def leaky_relu(p: LeakyParams, shape: Shape, ctx: BuildContext) -> nn.Module:
    from torch import nn

    return nn.LeakyReLU(p.negative_slope)
