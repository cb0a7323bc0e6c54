"""Early stopping, and which epoch was the best: both follow ``TrainSpec.monitor``.

One object answers both questions so that the "best" checkpoint, the best metric in the run's
record and the stopping decision can never disagree about which epoch was better.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


class EarlyStopping:
    """Follows ``monitor`` over epochs; ``update`` says when to stop.

    ``patience=None`` never stops but still tracks the best epoch (``improved``), which is what
    the loop needs to save the best checkpoint of every run. An epoch improves when its value
    beats the best by more than ``min_delta`` (higher accuracy, lower loss). NaN (or an infinite
    loss) never improves and counts as a bad epoch: a diverged run should stop, not become its
    own best.
    """

    def __init__(self, monitor: str, patience: int | None, min_delta: float = 0.0) -> None:
        if patience is not None and patience < 1:
            raise ValueError(f"patience must be at least 1 epoch (or None), not {patience}")
        if min_delta < 0:
            raise ValueError(f"min_delta must not be negative, not {min_delta}")
        self.monitor = monitor
        self.patience = patience
        self.min_delta = float(min_delta)
        self.mode = "max" if monitor.endswith("accuracy") else "min"
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.bad_epochs = 0
        self.epochs_seen = 0
        self.improved = False

    def is_better(self, value: float) -> bool:
        """Whether ``value`` would be a new best (without recording it)."""
        if not math.isfinite(value):
            return False
        if self.best is None:
            return True
        if self.mode == "max":
            return value > self.best + self.min_delta
        return value < self.best - self.min_delta

    def update(self, metrics: Mapping[str, float], epoch: int | None = None) -> bool:
        """Record one epoch's ``metrics``; True when the run should stop now.

        ``epoch`` numbers the epoch for ``best_epoch``; left out, epochs count from 1.
        """
        if self.monitor not in metrics:
            raise KeyError(f"early stopping follows {self.monitor!r}, not in {dict(metrics)}")
        value = float(metrics[self.monitor])
        self.epochs_seen += 1
        self.improved = self.is_better(value)
        if self.improved:
            self.best = value
            self.best_epoch = self.epochs_seen if epoch is None else epoch
            self.bad_epochs = 0
        else:
            self.bad_epochs += 1
        return self.should_stop

    @property
    def should_stop(self) -> bool:
        return self.patience is not None and self.bad_epochs >= self.patience

    def state_dict(self) -> dict[str, Any]:
        """Plain JSON values (``best`` is finite or None: a non-finite value is never a best)."""
        return {
            "monitor": self.monitor,
            "best": self.best,
            "best_epoch": self.best_epoch,
            "bad_epochs": self.bad_epochs,
            "epochs_seen": self.epochs_seen,
            "improved": self.improved,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue from ``state``; patience and min_delta stay those of this object (the
        resumed run's spec), the record of the past comes from the state."""
        if state["monitor"] != self.monitor:
            # A different metric's best means nothing here: start the record afresh.
            return
        self.best = None if state["best"] is None else float(state["best"])
        self.best_epoch = state["best_epoch"]
        self.bad_epochs = int(state["bad_epochs"])
        self.epochs_seen = int(state["epochs_seen"])
        self.improved = bool(state["improved"])
