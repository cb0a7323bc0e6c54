"""The layer registry and the builder: every kind trains, every impossible net is a sentence."""

from __future__ import annotations

import json
import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs

from cnn_lab.engine.errors import ModelError, SpecError, UserError
from cnn_lab.engine.models import InputShape, build_model, get_preset, preset_layers
from cnn_lab.engine.models.builder import build_layers
from cnn_lab.engine.models.layers import CATEGORIES, find_layer_kind, layer_kinds
from cnn_lab.engine.specs import ArchitectureSpec, LayerSpec, RunSpec

SHAPE = InputShape(channels=3, height=16, width=16, classes=5)
KINDS = [k.kind for k in layer_kinds()]


def layer(kind: str, *inner: LayerSpec, **params: object) -> LayerSpec:
    return LayerSpec(kind=kind, params=params, layers=inner)


def custom(*layers: LayerSpec) -> ArchitectureSpec:
    return ArchitectureSpec(preset="custom", layers=layers)


def params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _net_around(kind: str) -> tuple[LayerSpec, ...]:
    """The layer under test with what it needs before and after to make a classifier.

    Decided by asking the builder, not by a table, so a newly registered kind is covered
    without touching this test.
    """
    inner = (layer("conv2d", out_channels=8), layer("batchnorm"))
    under_test = layer(kind, *inner) if find_layer_kind(kind).container else layer(kind)
    for before in ((layer("conv2d", out_channels=8),), (layer("global_avg_pool"),)):
        try:
            with torch.device("meta"):
                body = build_layers((*before, under_test, layer("flatten"), layer("linear")), SHAPE)
        except ModelError:
            continue
        del body
        return (*before, under_test, layer("flatten"), layer("linear"))
    raise AssertionError(f"no simple net can hold a {kind} layer")


@pytest.mark.parametrize("kind", KINDS)
def test_every_layer_kind_trains_forward_and_backward(kind: str) -> None:
    torch.manual_seed(0)
    model = build_model(custom(*_net_around(kind)), SHAPE)
    x = torch.randn(2, 3, 16, 16)
    out = model(x)
    assert out.shape == (2, 5)
    assert torch.isfinite(out).all()
    out.logsumexp(1).mean().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)


def test_every_kind_is_described_for_the_palette() -> None:
    for kind in layer_kinds():
        assert kind.category in CATEGORIES
        assert kind.description.endswith(".") and len(kind.description) > 20
        for name, field in kind.params.model_fields.items():
            assert field.description, f"{kind.kind}.{name} needs a tooltip"
        kind.parse(kind.default_params())  # the defaults are valid


@pytest.mark.parametrize(
    ("layers", "path", "words"),
    [
        (
            (
                layer("conv2d"),
                layer("max_pool", kernel=4),
                layer("max_pool", kernel=4),
                layer("max_pool", kernel=4),
            ),
            (3,),  # 16 → 4 → 1, and the third pool has nothing left
            "Layer 4 (MaxPool): the spatial size collapses to zero",
        ),
        (
            (layer("conv2d", out_channels=8, groups=3),),
            (0,),
            "Layer 1 (Conv2d): the channels do not match: 8 output channels cannot be split",
        ),
        (
            (layer("conv2d"), layer("groupnorm", groups=5)),
            (1,),
            "the channels do not match: 32 channels cannot be split into 5 groups",
        ),
        (
            (layer("residual", layer("conv2d", kernel=4, padding=0)),),
            (0,),
            "the block cannot be built: its inner layers turn [3, 16, 16] into [32, 13, 13]",
        ),
        (
            (layer("residual", layer("conv2d"), layer("global_avg_pool")),),
            (0,),
            "a shortcut cannot add a vector to a feature map",
        ),
        ((layer("linear"),), (0,), "needs a flat vector but gets the feature map [3, 16, 16]"),
        (
            (layer("global_avg_pool"), layer("conv2d")),
            (1,),
            "needs a feature map [channels, height, width] but gets the vector [3]",
        ),
        (
            (layer("residual", layer("relu"), layer("conv2d", kernal=3)),),
            (0, 1),
            "Layer 1.2 (Conv2d): 'kernal' is not one of its parameters",
        ),
        ((layer("conv2d", kernel=0),), (0,), "kernel must be greater than or equal to 1"),
        ((layer("relu", layer("relu")),), (0,), "only a residual block can"),
        ((layer("residual"),), (0,), "needs at least one inner layer"),
        ((layer("warp_drive"),), (0,), "there is no layer kind called 'warp_drive'"),
        (
            (layer("conv2d"), layer("global_avg_pool")),
            (1,),
            "the network ends with [32], but it must end with one score per class, [5]",
        ),
        (
            (layer("conv2d", kernel=31, padding=0),),
            (0,),
            "the spatial size collapses to zero: the kernel spans 31×31 pixels",
        ),
    ],
)
def test_impossible_nets_are_refused_at_their_layer_in_a_sentence(
    layers: tuple[LayerSpec, ...], path: tuple[int, ...], words: str
) -> None:
    with pytest.raises(ModelError) as caught:
        build_model(custom(*layers), SHAPE)
    assert caught.value.path == path
    assert words in str(caught.value)
    assert "Traceback" not in str(caught.value)
    assert caught.value.message.endswith(".")


def test_a_residual_block_projects_its_shortcut_when_the_shape_changes() -> None:
    net = build_model(
        custom(
            layer("basic_block", out_channels=16, stride=2),
            layer("global_avg_pool"),
            layer("linear"),
        ),
        SHAPE,
    )
    block = net[0]
    assert isinstance(block.shortcut[0], torch.nn.Conv2d)
    assert block.shortcut[0].stride == (2, 2)
    assert net.built[0].out_shape == (16, 8, 8)


def test_a_block_opened_as_layers_is_the_same_network() -> None:
    for kind, extra in (("basic_block", {}), ("bottleneck", {"stride": 2}), ("mbconv", {})):
        block = layer(kind, **extra)
        expand = find_layer_kind(kind).expand
        opened = expand(find_layer_kind(kind).parse(block.params), (24, 16, 16))
        head = (layer("global_avg_pool"), layer("linear"))
        torch.manual_seed(0)
        closed_net = build_model(custom(layer("conv2d", out_channels=24), block, *head), SHAPE)
        torch.manual_seed(0)
        opened_net = build_model(custom(layer("conv2d", out_channels=24), *opened, *head), SHAPE)
        assert params(closed_net) == params(opened_net), kind


def test_mbconv_keeps_a_shortcut_only_when_the_shape_is_kept() -> None:
    kind = find_layer_kind("mbconv")
    same = kind.expand(kind.parse({"out_channels": 16}), (16, 8, 8))
    changed = kind.expand(kind.parse({"out_channels": 24, "stride": 2}), (16, 8, 8))
    assert [s.kind for s in same] == ["residual"]
    assert "residual" not in [s.kind for s in changed]


@pytest.mark.parametrize("name", ["small_cnn", "vgg", "resnet9"])
@pytest.mark.parametrize(
    "shape", [InputShape(3, 32, 32, 10), InputShape(1, 28, 28, 4), InputShape(3, 96, 64, 3)]
)
def test_layer_presets_open_as_the_same_editable_network(name: str, shape: InputShape) -> None:
    preset = ArchitectureSpec(preset=name, width=0.5)
    layers = preset_layers(preset, shape)
    assert get_preset(name).editable and layers
    with torch.device("meta"):
        as_preset = build_model(preset, shape)
        as_custom = build_model(custom(*layers), shape)
    assert params(as_preset) == params(as_custom)


def test_layer_presets_adapt_to_tiny_images() -> None:
    # 8×8 cannot be halved five times (VGG's five stages): the pools stop in time.
    for name in ("small_cnn", "vgg", "resnet9"):
        model = build_model(ArchitectureSpec(preset=name, width=0.25), InputShape(1, 8, 8, 3))
        assert model(torch.randn(2, 1, 8, 8)).shape == (2, 3)


def test_depth_multiplies_the_repeated_layers() -> None:
    shape = InputShape(3, 32, 32, 10)
    shallow = preset_layers(ArchitectureSpec(preset="vgg"), shape)
    deep = preset_layers(ArchitectureSpec(preset="vgg", depth=2.0), shape)
    assert sum(s.kind == "conv2d" for s in deep) == 2 * sum(s.kind == "conv2d" for s in shallow)


def test_building_on_meta_costs_no_memory_and_matches_the_real_build() -> None:
    spec = ArchitectureSpec(preset="resnet9")
    with torch.device("meta"):
        meta = build_model(spec, SHAPE)
    assert all(p.device.type == "meta" for p in meta.parameters())
    real = build_model(spec, SHAPE)
    assert all(p.device.type == "cpu" for p in real.parameters())
    assert params(meta) == params(real)


# ------------------------------------------------------------------------ specs and JSON


def test_architecture_specs_round_trip_through_json() -> None:
    spec = custom(
        layer("conv2d", out_channels=16, kernel=5, stride=2, padding=None, bias=True),
        layer("residual", layer("conv2d", out_channels=16), layer("batchnorm"), activation="silu"),
        layer("dropout", p=0.25),
        layer("global_avg_pool"),
        layer("linear"),
    )
    text = spec.model_dump_json()
    assert ArchitectureSpec.model_validate_json(text) == spec
    run = RunSpec(architecture=spec)
    again = RunSpec.from_json(run.to_json())
    assert again == run and again.spec_hash() == run.spec_hash()
    assert json.loads(text)["layers"][1]["layers"][1] == {
        "kind": "batchnorm",
        "params": {},
        "layers": [],
    }


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({"preset": "custom"}, "a custom network needs at least one layer"),
        ({"preset": "vgg", "layers": [{"kind": "relu"}]}, "set preset to 'custom'"),
        (
            {"preset": "custom", "width": 2, "layers": [{"kind": "relu"}]},
            "width, depth and dropout apply to presets",
        ),
        ({"freeze_backbone": True}, "freezing the backbone needs pretrained weights"),
        ({"preset": "custom", "layers": [{"kind": "Conv 2d"}]}, "layers[0].kind"),
        ({"depth": 0}, "depth"),
        (
            {"preset": "custom", "layers": [{"kind": "dropout", "params": {"p": math.nan}}]},
            "layers[0].params.p",
        ),
    ],
)
def test_bad_architecture_specs_are_refused_in_a_sentence(data: dict, words: str) -> None:
    with pytest.raises(SpecError) as caught:
        RunSpec.from_dict({"architecture": data})
    assert words in str(caught.value)


# ------------------------------------------------------------------ random stacks (hypothesis)

_SCALARS = hs.one_of(
    hs.integers(-3, 70),
    hs.sampled_from([0.0, 0.3, 1.5, -1.0, 1e300]),
    hs.booleans(),
    hs.none(),
    hs.sampled_from(["relu", "none", "x", ""]),
)


def _params_for(kind: str) -> hs.SearchStrategy[dict]:
    known = find_layer_kind(kind)
    names = list(known.params.model_fields) if known else []
    names += ["bogus"]
    return hs.dictionaries(hs.sampled_from(names), _SCALARS, max_size=3)


def _layer_strategy(depth: int) -> hs.SearchStrategy[LayerSpec]:
    kinds = hs.sampled_from([*KINDS, "not_a_layer"])

    def build(kind: str) -> hs.SearchStrategy[LayerSpec]:
        inner = hs.lists(_layer_strategy(depth - 1), max_size=3) if depth > 0 else hs.just([])
        return hs.builds(
            lambda p, children: LayerSpec(kind=kind, params=p, layers=tuple(children)),
            _params_for(kind),
            inner if kind == "residual" or (depth > 0 and kind == "relu") else hs.just([]),
        )

    return kinds.flatmap(build)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    hs.lists(_layer_strategy(2), min_size=1, max_size=8),
    hs.sampled_from([(1, 8, 8), (3, 16, 16), (3, 5, 7), (2, 1, 1)]),
    hs.integers(1, 12),
)
def test_random_layer_stacks_are_built_or_refused_with_a_sentence(
    layers: list[LayerSpec], size: tuple[int, int, int], classes: int
) -> None:
    spec = custom(*layers)
    assert ArchitectureSpec.model_validate_json(spec.model_dump_json()) == spec
    shape = InputShape(*size, classes)
    try:
        with torch.device("meta"):
            model = build_model(spec, shape)
    except UserError as exc:
        message = str(exc)
        assert message.endswith("."), message
        assert "Traceback" not in message and "\n" not in message
        if isinstance(exc, ModelError):
            assert exc.path and exc.path[0] < len(layers)
        return
    out = model(torch.zeros((2, *size), device="meta"))
    assert tuple(out.shape) == (2, classes)
