"""torchvision presets: exactly torchvision's nets at ImageNet size, adapted below it.

Parameter counts are checked on the meta device (no memory, no compute) against the
``num_params`` torchvision publishes with its weights; reading ``weights.meta`` downloads
nothing. Forward/backward runs on the CPU at width 0.25 where possible to stay quick.
"""

from __future__ import annotations

import pickle
import subprocess
import sys

import pytest
import torch
import torchvision
from torch import nn

from cnn_lab.engine.errors import UserError
from cnn_lab.engine.models import (
    InputShape,
    all_presets,
    build_model,
    get_preset,
    preset_names,
)
from cnn_lab.engine.specs import ArchitectureSpec

PRESETS = [p.name for p in all_presets() if p.family == "torchvision"]
IMAGENET = InputShape(channels=3, height=224, width=224, classes=1000)
CIFAR = InputShape(channels=3, height=32, width=32, classes=10)
MNIST = InputShape(channels=1, height=28, width=28, classes=10)


def _meta(preset: str, shape: InputShape, **spec: float) -> nn.Module:
    with torch.device("meta"):
        return build_model(ArchitectureSpec(preset=preset, **spec), shape)


def _params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _stem(model: nn.Module) -> nn.Conv2d:
    """The first convolution in module order: every preset's stem."""
    return next(m for m in model.modules() if isinstance(m, nn.Conv2d))


@pytest.mark.parametrize("preset", PRESETS)
def test_registered_as_torchvision_family(preset: str) -> None:
    info = get_preset(preset)
    assert info.family == "torchvision"
    assert info.description and "\n" not in info.description
    assert info.supports_depth == (not preset.startswith("mobilenet_v3"))


@pytest.mark.parametrize("preset", PRESETS)
def test_imagenet_size_is_exactly_torchvision(preset: str) -> None:
    published = next(iter(torchvision.models.get_model_weights(preset))).meta["num_params"]
    model = _meta(preset, IMAGENET)
    assert _params(model) == published
    with torch.device("meta"):
        reference = torchvision.models.get_model(preset, weights=None)
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in reference.state_dict().items()}
    assert ours == theirs  # so torchvision's weight files load key for key


def test_listing_presets_does_not_import_torch() -> None:
    code = (
        "import sys\n"
        "from cnn_lab.engine.models import preset_names\n"
        "assert 'resnet18' in preset_names()\n"
        "assert 'torch' not in sys.modules and 'torchvision' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def _forward_backward(model: nn.Module, shape: InputShape) -> None:
    x = torch.randn(2, shape.channels, shape.height, shape.width)
    out = model(x)
    assert out.shape == (2, shape.classes)
    assert torch.isfinite(out).all()
    out.logsumexp(1).sum().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("preset", [n for n in preset_names() if not n.startswith("test_")])
def test_every_preset_trains_forward_and_backward(preset: str) -> None:
    # Every registered preset, ours included, as timm tests every registered model.
    torch.manual_seed(0)
    model = build_model(ArchitectureSpec(preset=preset, width=0.25), CIFAR)
    _forward_backward(model, CIFAR)


@pytest.mark.parametrize("preset", ["resnet18", "efficientnet_b0", "mobilenet_v2"])
def test_forward_backward_one_channel(preset: str) -> None:
    torch.manual_seed(0)
    model = build_model(ArchitectureSpec(preset=preset, width=0.25), MNIST)
    assert _stem(model).in_channels == 1
    _forward_backward(model, MNIST)


@pytest.mark.parametrize("preset", PRESETS)
def test_small_images_keep_full_resolution_in_the_stem(preset: str) -> None:
    small, large = _meta(preset, CIFAR), _meta(preset, InputShape(3, 96, 96, 10))
    assert _stem(small).stride == (1, 1)
    assert _stem(large).stride == (2, 2)
    if preset.startswith("resnet"):
        assert _stem(small).kernel_size == (3, 3)
        assert isinstance(small.maxpool, nn.Identity)
        assert isinstance(large.maxpool, nn.MaxPool2d)


def test_small_resnet_keeps_spatial_size_through_the_stem() -> None:
    model = build_model(ArchitectureSpec(preset="resnet18", width=0.25), CIFAR).eval()
    stem = nn.Sequential(model.conv1, model.bn1, model.relu, model.maxpool)
    with torch.no_grad():
        assert stem(torch.randn(1, 3, 32, 32)).shape[-2:] == (32, 32)


@pytest.mark.parametrize("preset", ["resnet50", "mobilenet_v3_small", "efficientnet_b0"])
def test_other_channel_counts_change_only_the_stem(preset: str) -> None:
    rgb = _meta(preset, IMAGENET)
    gray = _meta(preset, InputShape(1, 224, 224, 1000))
    old, new = _stem(rgb), _stem(gray)
    assert (new.in_channels, new.out_channels) == (1, old.out_channels)
    assert (new.kernel_size, new.stride, new.padding) == (old.kernel_size, old.stride, old.padding)
    assert (new.bias is None) == (old.bias is None)
    assert _params(rgb) - _params(gray) == old.weight[:, :2].numel()


@pytest.mark.parametrize("preset", PRESETS)
def test_width_scales_parameters(preset: str) -> None:
    base = _params(_meta(preset, CIFAR))
    assert _params(_meta(preset, CIFAR, width=0.5)) < base < _params(_meta(preset, CIFAR, width=2))


@pytest.mark.parametrize("preset", [p for p in PRESETS if not p.startswith("mobilenet_v3")])
def test_depth_scales_parameters(preset: str) -> None:
    base = _params(_meta(preset, CIFAR))
    assert _params(_meta(preset, CIFAR, depth=0.5)) < base < _params(_meta(preset, CIFAR, depth=2))


def test_resnet_width_rounds_to_multiples_of_eight() -> None:
    model = _meta("resnet18", CIFAR, width=0.3)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert all(c.out_channels % 8 == 0 and c.out_channels >= 8 for c in convs)
    assert [model.layer1[0].conv1.out_channels, model.layer4[0].conv1.out_channels] == [16, 152]
    assert model.fc.in_features == 152


def test_resnet_depth_rounds_half_up_with_at_least_one_block() -> None:
    deep = _meta("resnet34", CIFAR, depth=1.5)
    assert [len(deep.layer1), len(deep.layer2), len(deep.layer3), len(deep.layer4)] == [5, 6, 9, 5]
    shallow = _meta("resnet18", CIFAR, depth=0.1)
    assert [len(shallow.layer1), len(shallow.layer4)] == [1, 1]


def test_efficientnet_depth_multiplies_its_own_coefficient() -> None:
    # B0 at B1's depth coefficient has B1's blocks: the multiplier composes with the preset's.
    b0_deeper = _meta("efficientnet_b0", IMAGENET, depth=1.1)
    with torch.device("meta"):
        b1 = torchvision.models.efficientnet_b1(weights=None)
    assert [len(s) for s in b0_deeper.features[1:-1]] == [len(s) for s in b1.features[1:-1]]


@pytest.mark.parametrize("preset", PRESETS)
def test_dropout_sits_before_the_classifier(preset: str) -> None:
    model = _meta(preset, CIFAR, dropout=0.3)
    modules = list(model.modules())
    last_linear = max(i for i, m in enumerate(modules) if isinstance(m, nn.Linear))
    dropouts = [i for i, m in enumerate(modules) if isinstance(m, nn.Dropout) and m.p == 0.3]
    assert dropouts and max(dropouts) < last_linear
    if preset.startswith("resnet"):
        assert isinstance(model.fc, nn.Linear)


def test_resnet_without_dropout_has_no_dropout_layer() -> None:
    assert not any(isinstance(m, nn.Dropout) for m in _meta("resnet18", CIFAR).modules())


@pytest.mark.parametrize("preset", ["mobilenet_v3_small", "mobilenet_v3_large"])
def test_mobilenet_v3_refuses_a_depth_multiplier(preset: str) -> None:
    with pytest.raises(UserError, match="depth multiplier must be 1"):
        build_model(ArchitectureSpec(preset=preset, depth=1.5), CIFAR)


def test_scaled_resnet_pickles_by_name() -> None:
    model = build_model(ArchitectureSpec(preset="resnet18", width=0.25), CIFAR)
    code = (
        "import pickle, sys\n"
        "model = pickle.loads(sys.stdin.buffer.read())\n"
        "assert type(model).__name__ == 'ScaledResNet', type(model)\n"
    )
    subprocess.run([sys.executable, "-c", code], input=pickle.dumps(model), check=True, timeout=60)
