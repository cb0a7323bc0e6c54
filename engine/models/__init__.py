"""Networks: the preset registry and the builder. Listing presets does not load torch."""

from cnn_lab.engine.models.registry import (
    InputShape,
    Preset,
    build_model,
    get_preset,
    preset_names,
    register_preset,
)

__all__ = ["InputShape", "Preset", "build_model", "get_preset", "preset_names", "register_preset"]
