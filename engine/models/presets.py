"""Built-in network presets.

Each preset imports torch inside its body so that listing presets (the GUI does, before
torch is loaded) stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cnn_lab.engine.models.registry import InputShape, register_preset
from cnn_lab.engine.specs import ArchitectureSpec

if TYPE_CHECKING:
    from torch import nn


def _channels(base: int, width: float) -> int:
    # Round to a multiple of 8: tensor cores and vectorised CPU kernels prefer it.
    return max(8, round(base * width / 8) * 8)


def _conv_bn_relu(cin: int, cout: int) -> list[nn.Module]:
    from torch import nn

    return [
        nn.Conv2d(cin, cout, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    ]


@register_preset(
    "small_cnn", "Three conv-BN-ReLU-max-pool stages, global max pooling and a linear head (fast)"
)
def small_cnn(spec: ArchitectureSpec, shape: InputShape) -> nn.Module:
    """A small VGG-like net: big enough to learn the samples, small enough for a CPU."""
    from torch import nn

    c1, c2, c3 = (_channels(b, spec.width) for b in (32, 64, 128))
    layers: list[nn.Module] = [
        *_conv_bn_relu(shape.channels, c1),
        nn.MaxPool2d(2),
        *_conv_bn_relu(c1, c2),
        nn.MaxPool2d(2),
        *_conv_bn_relu(c2, c3),
        nn.MaxPool2d(2),
        nn.AdaptiveMaxPool2d(1),
        nn.Flatten(),
    ]
    if spec.dropout > 0:
        layers.append(nn.Dropout(spec.dropout))
    layers.append(nn.Linear(c3, shape.classes))
    return nn.Sequential(*layers)
