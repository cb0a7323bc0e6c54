"""cnn-lab's own presets, written as layers so the panel can open them for editing.

Each adapts to the dataset: the first layer takes the dataset's channels, the last linear
layer gives one score per class, and downsampling stops before the map would vanish, so
the same preset trains on 28×28 digits and 224×224 photos.
"""

from __future__ import annotations

import math

from cnn_lab.engine.models.registry import InputShape, register_layer_preset
from cnn_lab.engine.models.scaling import scaled_channels, scaled_repeats
from cnn_lab.engine.specs import ArchitectureSpec, LayerSpec


def _layer(kind: str, **params: object) -> LayerSpec:
    return LayerSpec(kind=kind, params=params)


def _conv_bn_relu(channels: int) -> list[LayerSpec]:
    return [_layer("conv2d", out_channels=channels), _layer("batchnorm"), _layer("relu")]


def _max_halvings(shape: InputShape) -> int:
    """How many times the smaller side can be halved and stay at least 2 pixels."""
    return max(0, int(math.log2(max(min(shape.height, shape.width), 1))) - 1)


def _head(spec: ArchitectureSpec, pool: str = "global_avg_pool") -> list[LayerSpec]:
    head = [_layer(pool)]
    if spec.dropout > 0:
        head.append(_layer("dropout", p=spec.dropout))
    return [*head, _layer("linear")]


def _stages(
    spec: ArchitectureSpec, shape: InputShape, widths: tuple[int, ...], convs: tuple[int, ...]
) -> list[LayerSpec]:
    """Conv-BN-ReLU stages, each ending in a 2×2 max pool while the map is large enough."""
    layers: list[LayerSpec] = []
    pools_left = _max_halvings(shape)
    for base, count in zip(widths, convs, strict=True):
        for _ in range(scaled_repeats(count, spec.depth)):
            layers += _conv_bn_relu(scaled_channels(base, spec.width))
        if pools_left > 0:
            layers.append(_layer("max_pool", kernel=2))
            pools_left -= 1
    return layers


@register_layer_preset(
    "small_cnn",
    "Three conv-BN-ReLU-max-pool stages, global max pooling and a linear head. Fast on a "
    "CPU; a good first run on small images.",
)
def small_cnn(spec: ArchitectureSpec, shape: InputShape) -> tuple[LayerSpec, ...]:
    body = _stages(spec, shape, (32, 64, 128), (1, 1, 1))
    return (*body, *_head(spec, "global_max_pool"))


@register_layer_preset(
    "vgg",
    "VGG-style: five stages of 3×3 conv-BN-ReLU (1, 1, 2, 2, 2 convs; 64 to 512 channels) "
    "with max pooling, global average pooling and a linear head. Simple and accurate, but "
    "heavy in compute.",
)
def vgg(spec: ArchitectureSpec, shape: InputShape) -> tuple[LayerSpec, ...]:
    body = _stages(spec, shape, (64, 128, 256, 512, 512), (1, 1, 2, 2, 2))
    return (*body, *_head(spec))


def _residual_pair(channels: int) -> LayerSpec:
    inner = (*_conv_bn_relu(channels), *_conv_bn_relu(channels))
    return LayerSpec(kind="residual", params={"activation": "none"}, layers=inner)


@register_layer_preset(
    "resnet9",
    "ResNet-9, the fast CIFAR net of David Page's DAWNBench record (94% on CIFAR-10 in "
    "minutes): conv-pool stages with two residual pairs. Best with one-cycle schedules.",
)
def resnet9(spec: ArchitectureSpec, shape: InputShape) -> tuple[LayerSpec, ...]:
    c = {base: scaled_channels(base, spec.width) for base in (64, 128, 256, 512)}
    pools_left = _max_halvings(shape)

    def pool() -> list[LayerSpec]:
        nonlocal pools_left
        if pools_left <= 0:
            return []
        pools_left -= 1
        return [_layer("max_pool", kernel=2)]

    repeats = scaled_repeats(1, spec.depth)
    layers = [*_conv_bn_relu(c[64])]
    layers += [*_conv_bn_relu(c[128]), *pool()] + [_residual_pair(c[128])] * repeats
    layers += [*_conv_bn_relu(c[256]), *pool()]
    layers += [*_conv_bn_relu(c[512]), *pool()] + [_residual_pair(c[512])] * repeats
    return (*layers, *_head(spec, "global_max_pool"))
