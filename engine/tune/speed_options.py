"""The speed options the advisor measures: what each one changes, and which values to try here.

Each option is one TrainSpec field with a sentence saying why it can help and a function that
lists the values worth measuring on this device for this spec (fp16 only where a GPU can run
it, larger batches only while the memory estimate fits). Adding an option is one decorated
function; the advisor's search order is the registry's order, cheapest and most independent
first and ``compile`` last, because compiling is slow and what it gains depends on the rest.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from cnn_lab.engine.data.loader import RESIDENT_SHARE, free_bytes
from cnn_lab.engine.data.prepare import PreparedDataset
from cnn_lab.engine.errors import UserError
from cnn_lab.engine.models import InputShape
from cnn_lab.engine.specs import RunSpec, TrainSpec

BATCH_FACTORS = (2, 4)
"""Larger batches tried against the person's own: bigger ones rarely pay on top of x4."""
MEMORY_SHARE = 0.5
"""Share of the free device memory a tried batch's estimated training footprint may take."""
MIN_FULL_BATCHES = 2
"""A tried batch leaves at least this many full batches per epoch, so a probe times full ones."""
MAX_BATCH = 65_536
"""TrainSpec's own upper bound on batch_size."""


@dataclass(frozen=True)
class OptionContext:
    """What the candidate lists depend on, worked out once per advice (and easy to fake)."""

    device: torch.device
    spec: RunSpec
    train_images: int
    """Images in the training split."""
    auto_placement: str
    """What ``data_placement="auto"`` resolves to here: "device" or "host"."""
    memory_for_batch: Callable[[int], int] | None = None
    """Estimated device bytes of one training step at a batch size (None: unknown)."""
    memory_budget: int | None = None
    """Bytes a tried batch may take (None: no cap)."""

    @property
    def train(self) -> TrainSpec:
        return self.spec.train

    def fits(self, batch: int) -> bool:
        """Whether the memory estimate of a step at ``batch`` fits the budget (True if unknown)."""
        if self.memory_for_batch is None or self.memory_budget is None:
            return True
        return self.memory_for_batch(batch) <= self.memory_budget


Candidates = Callable[[OptionContext], list[Any]]
Note = Callable[[Any, OptionContext], str]


@dataclass(frozen=True)
class SpeedOption:
    """One speed option: a TrainSpec field, the values to try, and why it may help."""

    name: str
    field: str
    candidates: Candidates
    """Values to measure besides the current one (the advisor drops the current one)."""
    why: str
    cost: int = 1
    """Relative cost of one probe of it (1 cheap; compile is the costly one)."""
    note: Note | None = None
    """An extra sentence for a measured value (e.g. the learning rate for a larger batch)."""

    def note_for(self, value: Any, ctx: OptionContext) -> str:
        extra = self.note(value, ctx) if self.note else ""
        return f"{self.why} {extra}".strip()


SPEED_OPTIONS: dict[str, SpeedOption] = {}


def speed_option(
    name: str, *, field: str | None = None, why: str, cost: int = 1, note: Note | None = None
) -> Callable[[Candidates], Candidates]:
    """Register ``candidates`` as the option ``name`` (searched in registration order)."""

    def register(candidates: Candidates) -> Candidates:
        SPEED_OPTIONS[name] = SpeedOption(name, field or name, candidates, why, cost, note)
        return candidates

    return register


def select_options(names: list[str] | tuple[str, ...] | None) -> list[SpeedOption]:
    """The options named (all of them for None), in the registry's search order."""
    if names is None:
        return list(SPEED_OPTIONS.values())
    unknown = [name for name in names if name not in SPEED_OPTIONS]
    if unknown:
        raise UserError(
            f"Unknown speed option {unknown[0]!r}.",
            hint="Choose from " + ", ".join(SPEED_OPTIONS) + ".",
        )
    return [option for name, option in SPEED_OPTIONS.items() if name in names]


# ---- the options, in search order -------------------------------------------------------


@speed_option(
    "data_placement",
    why="Where the training images live: a uint8 copy on the device makes a batch one index; "
    "streaming from host memory leaves device memory to the model.",
)
def _placements(ctx: OptionContext) -> list[str]:
    current = ctx.train.data_placement
    effective = ctx.auto_placement if current == "auto" else current
    return [value for value in ("device", "host") if value != effective]


@speed_option(
    "precision",
    why="Mixed precision runs convolutions in 16-bit floats, which tensor cores and recent "
    "CPUs run faster.",
)
def _precisions(ctx: OptionContext) -> list[str]:
    values = ["fp32"]
    if ctx.device.type == "cuda":
        if torch.cuda.is_bf16_supported():
            values.append("bf16")
        values.append("fp16")
    elif ctx.device.type == "cpu":
        values.append("bf16")
    else:  # MPS and others: fp16 autocast is what they offer
        values.append("fp16")
    return values


@speed_option(
    "channels_last",
    why="The NHWC layout lets convolutions use faster kernels on CPUs and tensor-core GPUs.",
)
def _layouts(ctx: OptionContext) -> list[bool]:
    return [True, False]


@speed_option(
    "cudnn_benchmark",
    why="cuDNN times its kernels on the first batches and keeps the fastest.",
)
def _cudnn(ctx: OptionContext) -> list[bool]:
    if ctx.device.type != "cuda":
        return []
    effective = ctx.train.cudnn_benchmark is not False  # None means on for CUDA
    return [not effective]


def _batch_note(value: Any, ctx: OptionContext) -> str:
    factor = value / ctx.train.batch_size
    if factor <= 1:
        return ""
    return (
        f"A batch {factor:g}x larger may want a larger learning rate (about {factor:g}x for "
        f"SGD, {factor**0.5:.2g}x for Adam) to train as well per epoch."
    )


@speed_option(
    "batch_size",
    why="Larger batches keep the device busier per step.",
    note=_batch_note,
)
def _batches(ctx: OptionContext) -> list[int]:
    current = ctx.train.batch_size
    values = []
    for factor in BATCH_FACTORS:
        batch = current * factor
        if batch > MAX_BATCH or batch * MIN_FULL_BATCHES > ctx.train_images:
            break
        if not ctx.fits(batch):
            break
        values.append(batch)
    return values


def _compile_note(value: Any, ctx: OptionContext) -> str:
    return "Compiling costs time once at the start; it is reported apart." if value else ""


@speed_option(
    "compile",
    why="torch.compile fuses the model's small operations into fewer kernels.",
    cost=10,
    note=_compile_note,
)
def _compile(ctx: OptionContext) -> list[bool]:
    return [True, False]


# ---- the context --------------------------------------------------------------------------


def option_context(spec: RunSpec, device: torch.device, prepared: PreparedDataset) -> OptionContext:
    """Work out the candidate lists' inputs for ``spec`` on ``device`` from its data."""
    train_rows = prepared.split(spec.dataset).train
    _, height, width, channels = prepared.images.shape
    shape = InputShape(channels, height, width, len(prepared.classes))
    free = free_bytes(device)
    needed = len(train_rows) * int(np.prod(prepared.images.shape[1:]))
    auto = "device" if needed <= RESIDENT_SHARE * free else "host"
    return OptionContext(
        device=device,
        spec=spec,
        train_images=len(train_rows),
        auto_placement=auto,
        memory_for_batch=_memory_estimator(spec, shape),
        memory_budget=int(MEMORY_SHARE * free),
    )


def _memory_estimator(spec: RunSpec, shape: InputShape) -> Callable[[int], int] | None:
    """The summary's training-memory estimate at a batch size (None if it cannot be made)."""
    from cnn_lab.engine.models.architecture_summary import summarize_architecture

    try:
        summary = summarize_architecture(spec.architecture, shape)
    except UserError:  # the probe will say why the model cannot be built
        return None
    optimizer = spec.train.optimizer

    def estimate(batch: int) -> int:
        return summary.training_memory_bytes(batch, optimizer)

    return estimate
