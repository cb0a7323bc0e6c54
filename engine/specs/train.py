"""How a run trains: the recipe, the speed options, when to stop, and the device.

Options that depend on the device (fp16 needs a GPU, cudnn.benchmark needs cuDNN) are checked
against the device actually chosen when training starts (engine/train/options.py), because
``auto`` is only resolved then; a spec that asks for something the device cannot do is refused
with a sentence, never silently ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from cnn_lab.engine.specs.base import Spec

if TYPE_CHECKING:  # run.py imports this module
    from cnn_lab.engine.specs.run import RunSpec

DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d{1,3})?)$")

Precision = Literal["fp32", "bf16", "fp16"]
FusedMode = Literal["auto", "fused", "foreach", "off"]
DataPlacement = Literal["auto", "device", "host"]
Monitor = Literal["val.accuracy", "val.loss"]
FineTuneMode = Literal["auto", "on", "off"]


class FineTuneSpec(Spec):
    """The fine-tuning recipe (fastai's ``fine_tune``): the head alone first, then every layer
    with lower rates for earlier layers.

    Phase 1 trains only the classifier head for ``head_epochs`` (the rest frozen, BatchNorm
    statistics included), so a freshly initialised head does not send large, random gradients
    into pretrained features. Phase 2 trains every layer, the network split into ``groups``
    in module order (the head is the last), with rates spaced geometrically from
    ``lr / lr_ratio`` (earliest layers) to ``lr`` (head): early layers hold generic edges
    and textures that need little change, later ones the task-specific features. Each phase
    runs the spec's schedule from its start, as fastai runs one one-cycle per phase.

    ``lr_ratio`` 100 is fastai's ``lr_mult`` (``slice(lr/100, lr)``) and ``groups`` 3 its
    split of a CNN (two body groups and the head): defaults that transfer ImageNet features to
    most image datasets. ``head_epochs`` counts within TrainSpec.epochs.
    """

    mode: FineTuneMode = "auto"
    """auto: on when the network starts from pretrained weights; on; off (one phase, one rate)."""
    head_epochs: Annotated[int, Field(ge=1, le=10_000)] = 1
    lr_ratio: Annotated[float, Field(ge=1.0, le=1e6)] = 100.0
    groups: Annotated[int, Field(ge=2, le=64)] = 3

    what: ClassVar[str] = "fine-tuning recipe"


class TrainSpec(Spec):
    """The training recipe. Defaults are the ones that train the sample quickly on a CPU."""

    # ---- recipe
    epochs: Annotated[int, Field(ge=1, le=100_000)] = 3
    batch_size: Annotated[int, Field(ge=1, le=65_536)] = 64
    lr: Annotated[float, Field(gt=0.0, le=10.0)] = 0.01
    optimizer: Annotated[str, Field(min_length=1, max_length=40)] = "adamw"
    momentum: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.9
    """SGD and RMSprop momentum; the form shows it only for optimizers that use it."""
    nesterov: bool = True
    """Nesterov momentum for SGD (ignored by the form for other optimizers)."""
    weight_decay: Annotated[float, Field(ge=0.0, le=1.0)] = 5e-4
    schedule: Annotated[str, Field(min_length=1, max_length=40)] = "onecycle"
    warmup_epochs: Annotated[float, Field(ge=0.0, le=1000.0)] = 0.0
    """Linear warm-up from 1% of the rate before the schedule starts (0 = none)."""
    lr_decay: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.1
    """Factor for the step schedule (at 50% and 75% of training) and ReduceLROnPlateau."""
    plateau_patience: Annotated[int, Field(ge=0, le=1000)] = 2
    """Epochs without improvement before ReduceLROnPlateau lowers the rate."""
    label_smoothing: Annotated[float, Field(ge=0.0, le=0.5)] = 0.0
    grad_clip: Annotated[float | None, Field(gt=0.0, le=1e6)] = None
    """Clip the gradients' global norm to this value (None = no clipping)."""
    ema_decay: Annotated[float | None, Field(gt=0.0, lt=1.0)] = None
    """Keep an exponential moving average of the weights and evaluate it (e.g. 0.999)."""
    tta_flip: bool = False
    """Evaluate on each image and its mirror image, averaging the two predictions."""
    fine_tune: FineTuneSpec = FineTuneSpec()
    """Head first, then all layers with discriminative rates (see FineTuneSpec); whether it
    is on for a run is ``fine_tuning(run_spec)``."""

    # ---- speed
    precision: Precision = "fp32"
    """Autocast precision: bf16 (CPUs and Ampere+ GPUs) or fp16 with a gradient scaler (GPUs)."""
    channels_last: bool = True
    """NHWC memory layout: faster convolutions on CPUs and tensor-core GPUs."""
    cudnn_benchmark: bool | None = None
    """Let cuDNN time its kernels for the first batches and keep the fastest (None: on for
    CUDA). Only meaningful on CUDA."""
    compile: bool = False
    """torch.compile the model; its compile time is measured and reported apart."""
    deterministic: bool = False
    """Deterministic kernels (torch.use_deterministic_algorithms, cuDNN's deterministic
    algorithms without autotuning, cuBLAS's fixed workspace), so that a run and its resume are
    bit-exact on a GPU too, at some cost in speed. Off, a resumed run is bit-exact on the CPU;
    on a GPU it continues from the same weights, optimizer state, schedule, RNG states and
    batch order, but cuDNN's autotuned kernels and atomic adds round differently from one
    process to the next, so its numbers drift apart at the level of float rounding."""
    fused_optimizer: FusedMode = "auto"
    """Fused or foreach optimizer kernels (auto: fused where torch supports it)."""
    grad_accumulation: Annotated[int, Field(ge=1, le=1024)] = 1
    """Optimizer step every N batches: the effective batch is batch_size × N."""
    world_size: Annotated[int, Field(ge=1, le=1024)] = 1
    """Data-parallel processes (DDP): one per GPU on CUDA, or gloo processes on the CPU."""
    data_placement: DataPlacement = "auto"
    """Where the training images live: copied once to the device as uint8 ("device": a batch
    is an index), streamed from host memory by a prefetch thread ("host"), or "auto" (on the
    device when the split takes at most half its free memory)."""

    # ---- stopping
    max_steps: Annotated[int | None, Field(ge=1)] = None
    """Stop after this many optimiser steps in all (for quick probes and tests)."""
    early_stopping: Annotated[int | None, Field(ge=1, le=10_000)] = None
    """Stop after this many epochs without improvement of ``monitor`` (None = never)."""
    monitor: Monitor = "val.accuracy"
    """The validation metric that early stopping, the plateau schedule and 'best' follow."""
    min_delta: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0
    """How much ``monitor`` must improve to count as better."""

    time_limit_s: Annotated[float | None, Field(gt=0.0, le=1e7)] = None
    """Seconds of training, validation included, counted from the first step: the schedule
    follows the larger of its step progress and its time progress, so the rate has annealed
    when the time is up, and the run then validates once more and completes. For a run that
    must end on time (optimize's final run), where an epoch count from estimated epoch times
    would end early or be cut off with the rate still high. A resumed run counts it afresh."""
    stop_at_accuracy: Annotated[float | None, Field(gt=0.0, le=1.0)] = None
    """Complete the run after the first validation whose accuracy reaches this (a target
    accuracy: reaching it is the run's purpose fulfilled, so it ends as completed)."""

    # ---- where
    device: str = "auto"
    seed: Annotated[int, Field(ge=0, le=2**31 - 1)] = 0

    what: ClassVar[str] = "training recipe"

    @field_validator("device")
    @classmethod
    def _device_is_known(cls, value: str) -> str:
        value = value.strip().lower()
        if not DEVICE_PATTERN.match(value):
            raise ValueError("must be one of auto, cpu, cuda, cuda:N or mps")
        return value

    @field_validator("optimizer", "schedule")
    @classmethod
    def _lower(cls, value: str) -> str:
        # Checked against the registries when training starts (they build with torch).
        return value.strip().lower()

    @model_validator(mode="after")
    def _consistent(self) -> TrainSpec:
        if self.world_size > 1 and ":" in self.device:
            raise ValueError(
                "a data-parallel run uses cuda:0 to cuda:N-1 (or the CPU); set device to "
                "cuda or cpu, not one GPU"
            )
        if self.deterministic and self.cudnn_benchmark:
            raise ValueError(
                "deterministic training needs cudnn_benchmark off (autotuning picks kernels "
                "by their timing, which differs from run to run)"
            )
        if self.world_size > 1 and self.batch_size < self.world_size:
            raise ValueError(
                f"a batch of {self.batch_size} cannot be split over {self.world_size} "
                "processes; each needs at least one image"
            )
        if self.fine_tune.mode == "on" and self.fine_tune.head_epochs >= self.epochs:
            raise ValueError(
                f"fine-tuning trains the head alone for {self.fine_tune.head_epochs} "
                f"epoch(s), so the run needs more than that ({self.epochs} epochs leave none "
                "for all layers); raise the epochs or lower the head epochs"
            )
        return self

    @property
    def effective_batch(self) -> int:
        return self.batch_size * self.grad_accumulation


@dataclass(frozen=True)
class FineTuneDecision:
    """Whether a run fine-tunes in two phases, and the sentence that says why (or why not).

    ``problem`` is set when the person asked for fine-tuning ("on") in a run that cannot do
    it; training refuses such a run with that sentence, and the form shows it.
    """

    on: bool
    reason: str
    problem: str = ""


def fine_tuning(spec: RunSpec) -> FineTuneDecision:
    """The one rule for whether ``spec`` fine-tunes (the loop, the LR finder, the form).

    auto is on when the network starts from pretrained weights (published or a file), unless
    the architecture freezes its backbone for the whole run, the run is data-parallel (the
    phases do not run under DDP yet), or it is too short for a second phase.
    """
    recipe, architecture, t = spec.train.fine_tune, spec.architecture, spec.train
    if recipe.mode == "off":
        return FineTuneDecision(False, "Fine-tuning is off: every layer trains at one rate.")
    blocker = ""
    if architecture.freeze_backbone:
        blocker = "the architecture freezes the backbone for the whole run"
    elif t.world_size > 1:
        blocker = "the two phases do not run data-parallel (world size above 1) yet"
    elif t.epochs <= recipe.head_epochs:
        blocker = f"{t.epochs} epoch(s) leave no epoch after the head's {recipe.head_epochs}"
    if recipe.mode == "on":
        if blocker:
            problem = f"Fine-tuning is on, but {blocker}: turn one of them off."
            return FineTuneDecision(False, problem, problem)
        return FineTuneDecision(True, "Fine-tuning is on.")
    if not architecture.starts_pretrained:
        return FineTuneDecision(
            False, "Automatic: off, because the network starts from random weights."
        )
    if blocker:
        return FineTuneDecision(False, f"Automatic: off, because {blocker}.")
    return FineTuneDecision(True, "Automatic: on, because the network starts from trained weights.")


def fine_tuning_on(spec: RunSpec) -> bool:
    """Whether ``spec`` trains in two phases (see ``fine_tuning``)."""
    return fine_tuning(spec).on
