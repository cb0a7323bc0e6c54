"""The model preset registry: one decorator to add a network, one factory to build it.

Presets receive the dataset's shape (channels, classes, resolution) and the architecture
spec, so the same name adapts to any dataset. Following timm, every registered preset gets
the same parametrised forward/backward test (tests/engine/test_models.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cnn_lab.engine.errors import UserError
from cnn_lab.engine.specs import ArchitectureSpec

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


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    factory: PresetFactory


_PRESETS: dict[str, Preset] = {}


def register_preset(name: str, description: str) -> Callable[[PresetFactory], PresetFactory]:
    def decorate(factory: PresetFactory) -> PresetFactory:
        if name in _PRESETS:
            raise ValueError(f"preset {name!r} is registered twice")
        _PRESETS[name] = Preset(name, description, factory)
        return factory

    return decorate


def preset_names() -> list[str]:
    _load_builtin_presets()
    return sorted(_PRESETS)


def get_preset(name: str) -> Preset:
    _load_builtin_presets()
    try:
        return _PRESETS[name]
    except KeyError:
        known = ", ".join(sorted(_PRESETS))
        raise UserError(
            f"There is no model preset called {name!r}. Known presets: {known}."
        ) from None


def build_model(spec: ArchitectureSpec, shape: InputShape) -> nn.Module:
    """Build the preset that ``spec`` names for inputs of ``shape``."""
    return get_preset(spec.preset).factory(spec, shape)


def _load_builtin_presets() -> None:
    # Importing the module runs its @register_preset decorators.
    from cnn_lab.engine.models import presets  # noqa: F401
