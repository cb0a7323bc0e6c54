"""Which network a run trains: a preset, or a stack of layers built by hand."""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import Field, field_validator, model_validator

from cnn_lab.engine.specs.base import Spec
from cnn_lab.engine.specs.layers import MAX_LAYERS, LayerSpec

CUSTOM = "custom"


class ArchitectureSpec(Spec):
    """A preset network or a custom layer stack, adapted to the dataset's shape.

    Presets adapt to the dataset's channels, classes and resolution; ``width`` scales their
    channel counts and ``depth`` their number of blocks (where a preset has repeated
    blocks). ``preset == "custom"`` means the network is ``layers``, built as written.
    Names are checked against the model registry when the model is built, so that adding a
    preset or a layer kind needs no spec change.

    ``pretrained`` is a weights file the person picked (safetensors, or a PyTorch file read
    with weights-only loading); nothing is ever downloaded. ``freeze_backbone`` then trains
    only the classifier.
    """

    preset: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_\-.]+$")] = (
        "small_cnn"
    )
    width: Annotated[float, Field(gt=0.0, le=16.0)] = 1.0
    depth: Annotated[float, Field(gt=0.0, le=8.0)] = 1.0
    dropout: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0
    layers: tuple[LayerSpec, ...] = ()
    pretrained: Annotated[str, Field(max_length=4096)] = ""
    freeze_backbone: bool = False

    what: ClassVar[str] = "architecture spec"

    @field_validator("layers")
    @classmethod
    def _bounded(cls, layers: tuple[LayerSpec, ...]) -> tuple[LayerSpec, ...]:
        if len(layers) > MAX_LAYERS:
            raise ValueError(f"a network holds at most {MAX_LAYERS} top-level layers")
        return layers

    @model_validator(mode="after")
    def _custom_has_layers(self) -> ArchitectureSpec:
        if self.preset == CUSTOM:
            if not self.layers:
                raise ValueError("a custom network needs at least one layer")
            if self.width != 1.0 or self.depth != 1.0 or self.dropout != 0.0:
                raise ValueError(
                    "width, depth and dropout apply to presets; a custom network is built "
                    "as its layers say, so leave them at their defaults (add a Dropout layer "
                    "for dropout)"
                )
        elif self.layers:
            raise ValueError(
                f"layers are given but the preset is {self.preset!r}; set preset to 'custom' "
                "to build the layers"
            )
        if self.freeze_backbone and not self.pretrained:
            raise ValueError("freezing the backbone needs pretrained weights to keep")
        return self

    @property
    def is_custom(self) -> bool:
        return self.preset == CUSTOM
