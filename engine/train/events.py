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


@dataclass(frozen=True)
class SystemSampled(Event):
    kind: ClassVar[str] = "system"
    time: float
    values: dict[str, float] = field(default_factory=dict)


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
