"""Layer kinds for hand-built networks: a registry, and one module per family of layers."""

from cnn_lab.engine.models.layers.registry import (
    CATEGORIES,
    LayerKind,
    LayerParams,
    LayerProblem,
    Shape,
    find_layer_kind,
    layer_kinds,
    register_layer,
)

__all__ = [
    "CATEGORIES",
    "LayerKind",
    "LayerParams",
    "LayerProblem",
    "Shape",
    "find_layer_kind",
    "layer_kinds",
    "register_layer",
]
