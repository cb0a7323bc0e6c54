"""Which network a run trains."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from cnn_lab.engine.specs.base import Spec


class ArchitectureSpec(Spec):
    """A preset network, adapted to the dataset's channels, classes and resolution.

    ``width`` scales every layer's channel count. The preset name is checked against the
    model registry when the model is built, so that adding a preset needs no spec change.
    """

    preset: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_\-.]+$")] = (
        "small_cnn"
    )
    width: Annotated[float, Field(gt=0.0, le=16.0)] = 1.0
    dropout: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0
