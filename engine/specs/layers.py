"""LayerSpec: one layer of a hand-built network, as plain JSON.

A layer is a ``kind`` from the layer registry (engine/models/layers), the ``params`` that kind
takes, and for blocks such as a residual block the ``layers`` it holds. Parameters are checked
against the registry when the network is built, not here, so that adding a layer kind needs
no spec change and a spec written by a newer cnn-lab still loads (and is refused with a
sentence naming the unknown kind when it is built).
"""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import Field, field_validator

from cnn_lab.engine.specs.base import Spec

# Finite floats only: JSON has no NaN or infinity, so they could not round-trip.
ParamValue = bool | int | Annotated[float, Field(allow_inf_nan=False)] | str | None
MAX_LAYERS = 400
MAX_NESTING = 4


class LayerSpec(Spec):
    """One layer: its kind, its parameters, and the inner layers of a block."""

    kind: Annotated[str, Field(min_length=1, max_length=60, pattern=r"^[a-z][a-z0-9_]*$")]
    params: dict[Annotated[str, Field(max_length=60)], ParamValue] = Field(default_factory=dict)
    layers: tuple[LayerSpec, ...] = ()

    what: ClassVar[str] = "layer spec"

    @field_validator("layers")
    @classmethod
    def _bounded(cls, layers: tuple[LayerSpec, ...]) -> tuple[LayerSpec, ...]:
        if len(layers) > MAX_LAYERS:
            raise ValueError(f"a block holds at most {MAX_LAYERS} layers")
        if layers and max(layer.depth() for layer in layers) >= MAX_NESTING:
            raise ValueError(f"blocks nest at most {MAX_NESTING} deep")
        return layers

    def depth(self) -> int:
        """How many blocks deep this layer nests (0 for a plain layer)."""
        return 1 + max((layer.depth() for layer in self.layers), default=-1) if self.layers else 0

    def with_params(self, **changes: ParamValue) -> LayerSpec:
        return self.model_copy(update={"params": {**self.params, **changes}})


def count_layers(layers: tuple[LayerSpec, ...]) -> int:
    """Every layer, blocks' inner layers included."""
    return sum(1 + count_layers(layer.layers) for layer in layers)
