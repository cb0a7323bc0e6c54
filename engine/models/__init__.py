"""Networks: layer kinds, presets, the builder and the summary. Listing does not load torch."""

from cnn_lab.engine.models.registry import (
    InputShape,
    Preset,
    all_presets,
    build_model,
    get_preset,
    preset_layers,
    preset_names,
    register_layer_preset,
    register_preset,
)

__all__ = [
    "InputShape",
    "Preset",
    "all_presets",
    "build_model",
    "get_preset",
    "preset_layers",
    "preset_names",
    "register_layer_preset",
    "register_preset",
]
