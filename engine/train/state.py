"""Everything a run changes as it trains, in one object that saves and restores itself.

The model's weights, the optimizer's moments, the schedule's position, the gradient scaler,
the weight EMA, early stopping's memory, the RNG states and ``Progress`` (where in which
epoch the run is, with the half-finished epoch's sums): exactly what a checkpoint holds, so
that resuming from one continues the run where it stopped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from cnn_lab.engine.errors import UserError
from cnn_lab.engine.models.weights import load_exactly
from cnn_lab.engine.train import checkpoint as ck
from cnn_lab.engine.train.ema import WeightEMA
from cnn_lab.engine.train.fine_tune import PhasedSchedule, check_recipe
from cnn_lab.engine.train.schedules import LRSchedule
from cnn_lab.engine.train.stopping import EarlyStopping


@dataclass
class TrainState:
    model: nn.Module
    optimizer: torch.optim.Optimizer
    schedule: LRSchedule | PhasedSchedule
    """A fine-tuning run's is phased: its state records the phase (head only, all layers)."""
    scaler: torch.amp.GradScaler | None
    ema: WeightEMA | None
    stopping: EarlyStopping
    progress: ck.Progress
    device: torch.device

    @property
    def evaluated(self) -> nn.Module:
        """The network that validation, the test split and the saved weights use."""
        return self.ema.module if self.ema is not None else self.model

    def snapshot(self) -> ck.Checkpoint:
        rng_tensors, rng_plain = ck.rng_state(self.device)
        extra_tensors = {"rng": rng_tensors}
        if self.ema is not None:
            extra_tensors["ema"] = self.ema.state_dict()
        return ck.Checkpoint(
            progress=self.progress,
            model=self.model.state_dict(),
            optimizer=self.optimizer.state_dict(),
            extra_tensors=extra_tensors,
            extra_json={
                "schedule": self.schedule.state_dict(),
                "stopping": self.stopping.state_dict(),
                "scaler": self.scaler.state_dict() if self.scaler is not None else None,
                "rng": rng_plain,
            },
        )

    def save(self, folder: Path, which: str) -> tuple[Path, str, int]:
        """Write the ``which`` checkpoint atomically; (path, sha256, bytes).

        A full disk is a sentence, and the previous checkpoint stays intact.
        """
        path = ck.checkpoint_path(folder, which)
        try:
            sha, size = ck.save_checkpoint(path, self.snapshot())
        except OSError as exc:
            raise UserError(
                f"The {which} checkpoint could not be written: {exc.strerror or exc}.",
                hint="Free some disk space and resume the run; the previous checkpoint is intact.",
            ) from None
        return path, sha, size

    def restore(self, folder: Path) -> None:
        """Load the "last" checkpoint into everything. The run's length stays this run's:
        resuming with more epochs stretches the rest of the schedule over them."""
        path = ck.checkpoint_path(folder, ck.LAST)
        if not path.exists():
            raise UserError(
                "This run has no checkpoint to resume from.",
                hint="A checkpoint is written after each epoch and when a run is stopped.",
            )
        saved = ck.load_checkpoint(path)
        check_recipe(isinstance(self.schedule, PhasedSchedule), saved.extra_json["schedule"])
        load_exactly(
            self.model,
            saved.model,
            what=f"The checkpoint {path.name}",
            hint="Resume with the spec the run was started with.",
        )
        try:
            self.optimizer.load_state_dict(saved.optimizer)
            _match_layouts(self.optimizer)
        except (RuntimeError, KeyError, ValueError) as exc:
            raise UserError(
                f"The checkpoint does not fit this run's network or optimizer: {exc}".split("\n")[
                    0
                ],
                hint="Resume with the spec the run was started with.",
            ) from None
        total_steps = self.progress.total_steps
        self.progress = saved.progress
        self.progress.total_steps = total_steps
        self.schedule.load_state_dict(saved.extra_json["schedule"])
        if self.scaler is not None and saved.extra_json.get("scaler"):
            self.scaler.load_state_dict(saved.extra_json["scaler"])
        if self.ema is not None and "ema" in saved.extra_tensors:
            self.ema.load_state_dict(saved.extra_tensors["ema"])
        self.stopping.load_state_dict(saved.extra_json["stopping"])
        ck.set_rng_state(saved.extra_tensors["rng"], saved.extra_json["rng"], self.device)


def _match_layouts(optimizer: torch.optim.Optimizer) -> None:
    """Give each optimizer state tensor its parameter's memory layout.

    Checkpoints store plain row-major tensors, but a channels-last model's weights are not,
    and fused optimizer kernels walk a parameter and its moments as flat memory: a moment in
    another layout would be updated element-for-wrong-element.
    """
    for group in optimizer.param_groups:
        for param in group["params"]:
            state = optimizer.state.get(param, {})
            for name, value in state.items():
                if isinstance(value, torch.Tensor) and value.shape == param.shape:
                    state[name] = torch.empty_like(param, dtype=value.dtype).copy_(value)
