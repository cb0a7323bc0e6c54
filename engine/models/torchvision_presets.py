"""torchvision's ResNet, MobileNet and EfficientNet, adapted to any dataset's shape.

Every factory builds torchvision's own model classes (never copies of them), so weights saved
from torchvision load key for key. Three adaptations are made, and only where needed:

* channels: a dataset with other than 3 channels gets a stem convolution taking that many;
* resolution: below ``SMALL_IMAGE`` pixels (CIFAR's 32, MNIST's 28) the stem keeps full
  resolution (the usual CIFAR adaptation), otherwise a 32-pixel image would be 1×1 after the
  stem and the network would learn little; at ``SMALL_IMAGE`` pixels and above the nets are
  exactly torchvision's (tests compare parameter counts with torchvision's published ones);
* ``width``/``depth``/``dropout`` from the spec, mapped onto each family's own knobs.

torch and torchvision are imported inside the factories: the GUI lists presets before torch
is loaded. This module leans on two private torchvision helpers,
``torchvision.models.mobilenetv3._mobilenet_v3_conf`` and
``torchvision.models.efficientnet._efficientnet_conf``, because they are the only way to reach
the width/depth multipliers of those nets without copying their block tables; the
parameter-count tests fail loudly if a torchvision release changes them.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from cnn_lab.engine.models.registry import InputShape, register_preset
from cnn_lab.engine.models.scaling import scaled_channels, scaled_repeats
from cnn_lab.engine.specs import ArchitectureSpec

if TYPE_CHECKING:
    from torch import nn

SMALL_IMAGE = 96
"""Images whose shorter side is below this many pixels get a full-resolution stem."""

_FAMILY = "torchvision"

# EfficientNet's compound-scaling coefficients (width, depth) as torchvision's
# efficientnet_b0..b3 builders pass them to _efficientnet_conf, and their default dropout.
_EFFICIENTNET_COEFFICIENTS: dict[str, tuple[float, float]] = {
    "efficientnet_b0": (1.0, 1.0),
    "efficientnet_b1": (1.0, 1.1),
    "efficientnet_b2": (1.1, 1.2),
    "efficientnet_b3": (1.2, 1.4),
}

# MobileNetV2's inverted residual table (expansion t, channels c, repeats n, stride s), as in
# torchvision's MobileNetV2.__init__ default; written out because the depth multiplier
# scales ``n`` and torchvision does not expose the table.
_MOBILENET_V2_SETTING: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


def is_small_image(shape: InputShape) -> bool:
    """Whether ``shape`` gets the full-resolution stem (see the module docstring)."""
    return min(shape.height, shape.width) < SMALL_IMAGE


# -- shared surgery -------------------------------------------------------------------------


def _replace_stem(features: nn.Sequential, shape: InputShape) -> None:
    """Give a MobileNet/EfficientNet stem ``shape.channels`` inputs and, for small images,
    stride 1. Left untouched (exactly torchvision's) when neither applies."""
    from torch import nn

    old = features[0][0]  # Conv2dNormActivation -> its Conv2d
    assert isinstance(old, nn.Conv2d)
    small = is_small_image(shape)
    if shape.channels == old.in_channels and not small:
        return
    new = nn.Conv2d(
        shape.channels,
        old.out_channels,
        kernel_size=old.kernel_size,
        stride=1 if small else old.stride,
        padding=old.padding,
        dilation=old.dilation,
        groups=old.groups,
        bias=old.bias is not None,
    )
    # The same initialisation torchvision gives these nets' convolutions.
    nn.init.kaiming_normal_(new.weight, mode="fan_out")
    if new.bias is not None:
        nn.init.zeros_(new.bias)
    features[0][0] = new


# -- ResNet ---------------------------------------------------------------------------------


@functools.cache
def _scaled_resnet_class() -> type[nn.Module]:
    """torchvision's ResNet with a width multiplier; built on first use so torch loads late.

    The class is published as this module's ``ScaledResNet`` (module ``__getattr__``), so
    models pickle and unpickle by name like any other.
    """
    from torch import nn
    from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

    class ScaledResNet(ResNet):
        """ResNet whose stem and every stage are ``width`` times as wide.

        Only ``_make_layer`` is overridden (it receives each stage's base width, 64…512);
        ``ResNet.__init__`` hard-codes the stem's 64 channels and the head's input, so those
        two are rebuilt afterwards, and only when they differ from torchvision's.
        """

        def __init__(
            self,
            block: type[BasicBlock | Bottleneck],
            layers: list[int],
            *,
            num_classes: int,
            width: float,
            in_channels: int,
            small_input: bool,
            dropout: float,
        ) -> None:
            self.width_mult = width  # read by _make_layer while ResNet.__init__ runs
            super().__init__(block, layers, num_classes=num_classes)
            stem = scaled_channels(64, width)
            if small_input or in_channels != 3 or stem != 64:
                # CIFAR adaptation for small images: a 3×3 stride-1 stem and no max pool.
                k, s, p = (3, 1, 1) if small_input else (7, 2, 3)
                self.conv1 = nn.Conv2d(in_channels, stem, k, stride=s, padding=p, bias=False)
                nn.init.kaiming_normal_(self.conv1.weight, mode="fan_out", nonlinearity="relu")
                self.bn1 = self._norm_layer(stem)
            if small_input:
                self.maxpool = nn.Identity()
            if self.fc.in_features != self.inplanes:
                self.fc = nn.Linear(self.inplanes, num_classes)
            if dropout > 0:
                # Dropout sits just before fc; putting it in avgpool keeps ResNet's forward,
                # the fc name and every state-dict key as torchvision has them.
                self.avgpool = nn.Sequential(self.avgpool, nn.Dropout(dropout))

        def _make_layer(
            self,
            block: type[BasicBlock | Bottleneck],
            planes: int,
            blocks: int,
            stride: int = 1,
            dilate: bool = False,
        ) -> nn.Sequential:
            if planes == 64:  # layer1 follows the stem, whose width is scaled too
                self.inplanes = scaled_channels(64, self.width_mult)
            planes = scaled_channels(planes, self.width_mult)
            return super()._make_layer(block, planes, blocks, stride, dilate)

    ScaledResNet.__module__ = __name__
    ScaledResNet.__qualname__ = "ScaledResNet"
    return ScaledResNet


def __getattr__(name: str) -> Any:
    # PEP 562: ``ScaledResNet`` exists once asked for, so pickles of it load in a fresh process.
    if name == "ScaledResNet":
        return _scaled_resnet_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _resnet(
    spec: ArchitectureSpec, shape: InputShape, *, bottleneck: bool, layers: tuple[int, ...]
) -> nn.Module:
    from torchvision.models.resnet import BasicBlock, Bottleneck

    return _scaled_resnet_class()(
        Bottleneck if bottleneck else BasicBlock,
        [scaled_repeats(n, spec.depth) for n in layers],
        num_classes=shape.classes,
        width=spec.width,
        in_channels=shape.channels,
        small_input=is_small_image(shape),
        dropout=spec.dropout,
    )


# name → (bottleneck blocks?, blocks per stage, description)
_RESNETS: dict[str, tuple[bool, tuple[int, ...], str]] = {
    "resnet18": (
        False,
        (2, 2, 2, 2),
        "ResNet-18 (torchvision): 11.7 M params, 1.8 G MACs at 224 px; the solid default "
        "baseline for photos of any size",
    ),
    "resnet34": (
        False,
        (3, 4, 6, 3),
        "ResNet-34 (torchvision): 21.8 M params, 3.7 G MACs at 224 px; twice ResNet-18's depth "
        "and cost, for larger datasets where 18 underfits",
    ),
    "resnet50": (
        True,
        (3, 4, 6, 3),
        "ResNet-50 (torchvision): 25.6 M params, 4.1 G MACs at 224 px, bottleneck blocks; the "
        "classic fine-tuning backbone, best with pretrained weights and a GPU",
    ),
}
for _name, (_bottleneck, _layers, _description) in _RESNETS.items():
    register_preset(_name, _description, family=_FAMILY)(
        functools.partial(_resnet, bottleneck=_bottleneck, layers=_layers)
    )


# -- MobileNet ------------------------------------------------------------------------------


@register_preset(
    "mobilenet_v2",
    "MobileNetV2 (torchvision): 3.5 M params, 0.3 G MACs at 224 px; light and fast, for CPUs, "
    "phones and quick experiments",
    family=_FAMILY,
)
def mobilenet_v2(spec: ArchitectureSpec, shape: InputShape) -> nn.Module:
    """MobileNetV2; ``depth`` scales each stage's repeats (half up, at least one)."""
    from torchvision.models import MobileNetV2

    setting = [[t, c, scaled_repeats(n, spec.depth), s] for t, c, n, s in _MOBILENET_V2_SETTING]
    model = MobileNetV2(
        num_classes=shape.classes,
        width_mult=spec.width,
        inverted_residual_setting=setting,
        dropout=spec.dropout,
    )
    _replace_stem(model.features, shape)
    return model


def _mobilenet_v3(arch: str, spec: ArchitectureSpec, shape: InputShape) -> nn.Module:
    from torchvision.models.mobilenetv3 import MobileNetV3, _mobilenet_v3_conf

    setting, last_channel = _mobilenet_v3_conf(arch, width_mult=spec.width)
    model = MobileNetV3(setting, last_channel, num_classes=shape.classes, dropout=spec.dropout)
    _replace_stem(model.features, shape)
    return model


@register_preset(
    "mobilenet_v3_small",
    "MobileNetV3-Small (torchvision): 2.5 M params, 0.06 G MACs at 224 px; the cheapest net "
    "here, for CPU-only training and tiny devices (width only, no depth multiplier)",
    family=_FAMILY,
    supports_depth=False,
)
def mobilenet_v3_small(spec: ArchitectureSpec, shape: InputShape) -> nn.Module:
    return _mobilenet_v3("mobilenet_v3_small", spec, shape)


@register_preset(
    "mobilenet_v3_large",
    "MobileNetV3-Large (torchvision): 5.5 M params, 0.22 G MACs at 224 px; more accurate than "
    "V2 at less cost, for fast inference (width only, no depth multiplier)",
    family=_FAMILY,
    supports_depth=False,
)
def mobilenet_v3_large(spec: ArchitectureSpec, shape: InputShape) -> nn.Module:
    return _mobilenet_v3("mobilenet_v3_large", spec, shape)


# -- EfficientNet ---------------------------------------------------------------------------


def _efficientnet(arch: str, spec: ArchitectureSpec, shape: InputShape) -> nn.Module:
    """EfficientNet-Bn; ``width``/``depth`` multiply the preset's own coefficients.

    Depth is scaled as torchvision does (ceil per stage), so a B0 at depth 1.1 is a B1's depth.
    """
    from torchvision.models.efficientnet import EfficientNet, _efficientnet_conf

    width_coefficient, depth_coefficient = _EFFICIENTNET_COEFFICIENTS[arch]
    setting, last_channel = _efficientnet_conf(
        arch, width_mult=width_coefficient * spec.width, depth_mult=depth_coefficient * spec.depth
    )
    model = EfficientNet(
        setting, dropout=spec.dropout, num_classes=shape.classes, last_channel=last_channel
    )
    _replace_stem(model.features, shape)
    return model


_EFFICIENTNET_DESCRIPTIONS = {
    "efficientnet_b0": "EfficientNet-B0 (torchvision): 5.3 M params, 0.39 G MACs at 224 px; best "
    "accuracy per MAC, though slower per MAC than ResNet on GPUs",
    "efficientnet_b1": "EfficientNet-B1 (torchvision): 7.8 M params, 0.69 G MACs at 240 px; B0 "
    "made deeper, for images around 240 px",
    "efficientnet_b2": "EfficientNet-B2 (torchvision): 9.1 M params, 1.1 G MACs at 288 px; wider "
    "and deeper than B1, for images around 260-290 px",
    "efficientnet_b3": "EfficientNet-B3 (torchvision): 12.2 M params, 1.8 G MACs at 300 px; the "
    "most accurate here, for large images and a GPU",
}
for _name, _description in _EFFICIENTNET_DESCRIPTIONS.items():
    register_preset(_name, _description, family=_FAMILY)(functools.partial(_efficientnet, _name))
