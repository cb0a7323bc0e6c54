"""How a run trains: the recipe and the device."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import Field, field_validator

from cnn_lab.engine.specs.base import Spec

DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d{1,3})?)$")


class TrainSpec(Spec):
    """The training recipe. Defaults are the ones that train the sample quickly on a CPU."""

    epochs: Annotated[int, Field(ge=1, le=100_000)] = 3
    batch_size: Annotated[int, Field(ge=1, le=65_536)] = 64
    lr: Annotated[float, Field(gt=0.0, le=10.0)] = 0.01
    optimizer: Annotated[str, Field(min_length=1, max_length=40)] = "adamw"
    schedule: Annotated[str, Field(min_length=1, max_length=40)] = "onecycle"
    momentum: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.9
    weight_decay: Annotated[float, Field(ge=0.0, le=1.0)] = 5e-4
    device: str = "auto"
    seed: Annotated[int, Field(ge=0, le=2**31 - 1)] = 0
    channels_last: bool = True
    """NHWC memory layout: faster convolutions on CPUs and tensor-core GPUs."""
    max_steps: Annotated[int | None, Field(ge=1)] = None
    """Stop after this many optimiser steps in all (for quick probes and tests)."""

    @field_validator("device")
    @classmethod
    def _device_is_known(cls, value: str) -> str:
        value = value.strip().lower()
        if not DEVICE_PATTERN.match(value):
            raise ValueError("must be one of auto, cpu, cuda, cuda:N or mps")
        return value

    @field_validator("optimizer", "schedule")
    @classmethod
    def _optimizer_lower(cls, value: str) -> str:
        # Checked against the optimizer registry when training starts (the registry needs torch).
        return value.strip().lower()
