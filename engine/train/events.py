"""The events a training run produces. Frozen, picklable, and free of torch objects.

They travel from the training loop to the job layer (which stores them) and over a pipe
to the GUI (which draws them), so every field is a plain number, string or tuple.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar


@dataclass(frozen=True)
class Event:
    kind: ClassVar[str] = "event"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **asdict(self)}


@dataclass(frozen=True)
class RunStarted(Event):
    kind: ClassVar[str] = "started"
    run_id: int | None
    device: str
    epochs: int
    steps_per_epoch: int
    total_steps: int
    train_images: int
    val_images: int
    classes: tuple[str, ...]
    params: int
    start_step: int = 0
    """0 for a new run; the checkpoint's step when a run resumes."""
    data_on_device: bool = False
    """Whether the training images were copied to the device once (a batch is an index)."""
    batch_size: int = 0
    macs_per_image: int = 0
    """Multiply-adds of one forward pass (0 when the summary could not trace the network)."""
    activation_bytes_per_image: int = 0
    nvml_index: int | None = None
    """NVML's number for the run's GPU, so its samples (``gpu{i}.*``) can be told apart."""
    augment: str = ""
    """The augmentation as ``name=strength,…`` (empty for none)."""
    input_shape: tuple[int, int, int] = (0, 0, 0)
    """(channels, height, width) the images were prepared at: what auto chose, recorded so
    evaluating, predicting or resuming the run rebuilds the same input."""
    preprocess: str = ""
    """Why that size and those channels (the import report's sentence)."""
    fine_tune: tuple[str, ...] = ()
    """The fine-tuning recipe's phases in words, one line each (empty when it is off)."""


@dataclass(frozen=True)
class StepEnd(Event):
    kind: ClassVar[str] = "step"
    step: int
    epoch: int
    loss: float
    lr: float
    images_per_s: float
    elapsed_s: float
    progress: float
    """Fraction of the run's steps done, 0..1."""
    eta_s: float


@dataclass(frozen=True)
class EpochEnd(Event):
    kind: ClassVar[str] = "epoch"
    epoch: int
    step: int
    train_loss: float
    train_accuracy: float
    val_loss: float
    val_accuracy: float
    epoch_s: float
    images_per_s: float
    eval_s: float = 0.0
    """Seconds spent evaluating the validation split at the end of the epoch."""
    phase: str = ""
    """What a fine-tuning run trained this epoch ("head only, rate 0.001"; empty when off)."""


@dataclass(frozen=True)
class StepTiming(Event):
    """Where the wall time of the last few optimizer steps went, as means per step (ms).

    ``data_ms`` waiting for the loader, ``copy_ms`` the host-to-device copy (measured with a
    device synchronisation on a sample of steps; 0 on the CPU and for data on the device),
    ``compute_ms`` forward, backward and optimizer step up to the loss reaching the host,
    ``other_ms`` the rest (recording, events, the stop check). They add up to ``step_ms``.
    """

    kind: ClassVar[str] = "timing"
    step: int
    steps: int
    """How many steps these means cover."""
    data_ms: float
    copy_ms: float
    compute_ms: float
    other_ms: float
    step_ms: float
    images_per_s: float
    batch_size: int


@dataclass(frozen=True)
class BottleneckReport(Event):
    """The bottleneck verdict so far: ``engine.monitor.diagnosis.Diagnosis.to_dict()``."""

    kind: ClassVar[str] = "bottleneck"
    diagnosis: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SystemSampled(Event):
    kind: ClassVar[str] = "system"
    time: float
    values: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class DataProgress(Event):
    """Preparing the data before training: a folder that was never imported is listed and
    decoded into the cache first, which can take minutes; the window shows it like any
    other long task (stage, count and, once known, time left)."""

    kind: ClassVar[str] = "preparing"
    stage: str
    done: int
    total: int
    """0 when the length is not known yet."""


@dataclass(frozen=True)
class RunFinished(Event):
    kind: ClassVar[str] = "finished"
    run_id: int | None
    status: str
    reason: str | None = None
    hint: str | None = None
    summary: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class WeightsSaved(Event):
    """The trained weights were written; the job records them as the run's artifact."""

    kind: ClassVar[str] = "weights"
    path: str
    sha256: str
    bytes: int


@dataclass(frozen=True)
class CheckpointSaved(Event):
    """A checkpoint ("last" or "best") was written; the job records it with its hash."""

    kind: ClassVar[str] = "checkpoint"
    which: str
    path: str
    sha256: str
    bytes: int
    epoch: int
    step: int
