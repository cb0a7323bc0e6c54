"""The model preset registry: one decorator to add a network, one factory to build it.

Presets receive the dataset's shape (channels, classes, resolution) and the architecture
spec, so the same name adapts to any dataset. A preset is either written as layers (then the
panel can open it as an editable layer list) or built by a factory (torchvision's nets).
Following timm, every registered preset gets the same parametrised forward/backward test
(tests/engine/test_presets.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cnn_lab.engine.errors import UserError
from cnn_lab.engine.specs import ArchitectureSpec, LayerSpec
from cnn_lab.engine.specs.architecture import MODULE, TIMM

if TYPE_CHECKING:  # presets import torch inside their bodies, so names list without it
    from torch import nn


@dataclass(frozen=True)
class InputShape:
    """What the dataset feeds the network."""

    channels: int
    height: int
    width: int
    classes: int


PresetFactory = Callable[[ArchitectureSpec, InputShape], "nn.Module"]
LayersFactory = Callable[[ArchitectureSpec, InputShape], tuple[LayerSpec, ...]]


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    factory: PresetFactory | None = None
    layers: LayersFactory | None = None
    """Set for presets written as layers: they can be opened for editing."""
    family: str = "cnn-lab"
    supports_width: bool = True
    supports_depth: bool = True

    @property
    def editable(self) -> bool:
        return self.layers is not None


_PRESETS: dict[str, Preset] = {}


def _add(preset: Preset) -> None:
    if preset.name in _PRESETS:
        raise ValueError(f"preset {preset.name!r} is registered twice")
    _PRESETS[preset.name] = preset


def register_preset(
    name: str,
    description: str,
    *,
    family: str = "cnn-lab",
    supports_width: bool = True,
    supports_depth: bool = True,
) -> Callable[[PresetFactory], PresetFactory]:
    """Register a factory that builds an nn.Module for a spec and an input shape."""

    def decorate(factory: PresetFactory) -> PresetFactory:
        _add(Preset(name, description, factory, None, family, supports_width, supports_depth))
        return factory

    return decorate


def register_layer_preset(
    name: str, description: str, *, supports_depth: bool = True
) -> Callable[[LayersFactory], LayersFactory]:
    """Register a preset written as a list of LayerSpecs (editable in the panel)."""

    def decorate(layers: LayersFactory) -> LayersFactory:
        _add(Preset(name, description, None, layers, "cnn-lab", True, supports_depth))
        return layers

    return decorate


def preset_names() -> list[str]:
    _load_builtin_presets()
    return sorted(_PRESETS)


def all_presets() -> list[Preset]:
    """Every preset, ours first, then by name."""
    _load_builtin_presets()
    return sorted(_PRESETS.values(), key=lambda p: (p.family != "cnn-lab", p.name))


def get_preset(name: str) -> Preset:
    _load_builtin_presets()
    try:
        return _PRESETS[name]
    except KeyError:
        known = ", ".join(sorted(_PRESETS))
        raise UserError(
            f"There is no model preset called {name!r}. Known presets: {known}."
        ) from None


def preset_layers(spec: ArchitectureSpec, shape: InputShape) -> tuple[LayerSpec, ...] | None:
    """The layers a preset is made of, for editing; None for presets built by a factory."""
    preset = get_preset(spec.preset)
    return preset.layers(spec, shape) if preset.layers is not None else None


def _check_multipliers(spec: ArchitectureSpec, preset: Preset) -> None:
    if spec.depth != 1.0 and not preset.supports_depth:
        raise UserError(
            f"The preset {preset.name} has no repeated blocks to scale, so its depth "
            f"multiplier must be 1 (got {spec.depth:g})."
        )
    if spec.width != 1.0 and not preset.supports_width:
        raise UserError(
            f"The preset {preset.name} cannot be scaled in width, so its width multiplier "
            f"must be 1 (got {spec.width:g})."
        )


def build_model(spec: ArchitectureSpec, shape: InputShape) -> nn.Module:
    """Build the network ``spec`` describes for inputs of ``shape``, from its weights.

    Builds on the ambient default device, so ``with torch.device("meta")`` gives a free
    shape-only model for summaries. Pretrained weights, when named, are loaded and the
    backbone frozen as asked.
    """
    model = build_network(spec, shape)
    start_from_weights(model, spec)
    return model


def _build_timm(spec: ArchitectureSpec, shape: InputShape) -> nn.Module:
    from cnn_lab.engine.models.timm_source import build_timm

    return build_timm(spec, shape)


def _build_module(spec: ArchitectureSpec, shape: InputShape) -> nn.Module:
    from cnn_lab.engine.models.module_source import build_module

    assert spec.module is not None  # the spec's own check: preset "module" has a module
    return build_module(spec.module, shape)


_SOURCES: dict[str, PresetFactory] = {TIMM: _build_timm, MODULE: _build_module}
"""Architecture sources other than presets, by the ``preset`` marker that names them."""


def build_network(spec: ArchitectureSpec, shape: InputShape) -> nn.Module:
    """The network's structure, freshly initialised: which code builds it."""
    from cnn_lab.engine.models.builder import build_layers

    source = _SOURCES.get(spec.preset)
    if source is not None:
        return source(spec, shape)
    if spec.is_custom:
        return build_layers(spec.layers, shape)
    preset = get_preset(spec.preset)
    _check_multipliers(spec, preset)
    if preset.layers is not None:
        return build_layers(preset.layers(spec, shape), shape)
    assert preset.factory is not None
    return preset.factory(spec, shape)


def start_from_weights(model: nn.Module, spec: ArchitectureSpec) -> None:
    """Load the weights the spec starts from (if any) into ``model``, and freeze as asked.

    Published weights (``spec.weights``) come from torch.hub's cache only: the job downloads
    them before building (engine/jobs/job.py), so building never touches the network, and a
    file not downloaded yet is a sentence saying how to get it.
    """
    if not spec.starts_pretrained:
        return
    from cnn_lab.engine.models.weights import freeze_backbone, load_pretrained

    if spec.weights:
        from cnn_lab.engine.models.published_weights import find_weights, load_published

        report = load_published(model, spec)
        what = f"{find_weights(spec).name} weights: "  # DEFAULT named as what it resolved to
    else:
        report = load_pretrained(model, spec.pretrained)
        what = ""
    # Kept on the model so the training loop can say in the run what was loaded.
    model.pretrained_report = what + report.sentence()
    if spec.freeze_backbone:
        freeze_backbone(model)


def _load_builtin_presets() -> None:
    # Importing the modules runs their registration decorators. By module path, because the
    # package exports a function called ``presets`` that would shadow the module.
    import importlib

    for module in ("presets", "torchvision_presets"):
        importlib.import_module(f"cnn_lab.engine.models.{module}")
