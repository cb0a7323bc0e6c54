"""nn.Module classes the layer kinds need beyond torch's own. Imports torch: load lazily."""

from __future__ import annotations

import torch
from torch import nn


class Residual(nn.Module):
    """out = activation(body(x) + shortcut(x)): the residual connection of ResNet and MBConv.

    The shortcut is the identity when the body keeps the shape, else a projection the
    builder chose (a strided 1×1 convolution with batch norm, as in torchvision's ResNet).
    """

    def __init__(self, body: nn.Module, shortcut: nn.Module, activation: nn.Module) -> None:
        super().__init__()
        self.body = body
        self.shortcut = shortcut
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.body(x) + self.shortcut(x))


class LayerNet(nn.Sequential):
    """A network built from a list of LayerSpecs: one child per top-level layer.

    ``built`` keeps each layer's kind and shapes so the summary can name its rows after the
    layers the person placed, not after torch's module classes.
    """

    def __init__(self, modules: list[nn.Module], built: list) -> None:  # list[BuiltLayer]
        super().__init__(*modules)
        self.built = built

    def summary_units(self) -> list[tuple[str, str, nn.Module]]:
        return [
            (f"{i + 1} {info.label}", info.kind, module)
            for i, (info, module) in enumerate(zip(self.built, self, strict=True))
        ]
