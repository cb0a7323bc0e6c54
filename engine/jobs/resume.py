"""The one rule for what may be resumed, asked by ``cnn-lab resume``, the window's JobController
and the Runs panel's Resume button alike (they used to answer differently: the CLI took any
ended run, the window only a stopped, failed or crashed one).

A run continues from its last checkpoint, so it must have ended (a queued or running run has a
job that owns it) and have something left to train: a stopped, failed or crashed run has the
rest of its epochs; a completed one only when it is given more epochs (``--epochs``, the new
total, which may not be below the epochs already trained).
"""

from __future__ import annotations

from cnn_lab.engine.store.status import ACTIVE, COMPLETED, CRASHED, FAILED, STOPPED

RESUMABLE: frozenset[str] = frozenset({STOPPED, FAILED, CRASHED})
"""Run statuses that may be queued again as they are to continue from their last checkpoint (a
failed or crashed run keeps its last good one; without a checkpoint the engine says so)."""


def resume_refusal(
    run_id: int, status: str, *, epochs: int | None = None, epochs_done: int = 0
) -> str | None:
    """Why run ``run_id`` (with ``status``) cannot be resumed, as a sentence; None when it can.

    ``epochs`` is the new total number of epochs asked for (None: keep the run's own), and
    ``epochs_done`` those the run has already trained.
    """
    if status in ACTIVE:
        return f"Run {run_id} is {status}; only a run that has ended can be resumed."
    if epochs is not None and epochs < max(epochs_done, 1):
        return (
            f"Run {run_id} has already trained {epochs_done} epochs; --epochs is the new total "
            "and must be at least that."
        )
    if status == COMPLETED and epochs is None:
        return (
            f"Run {run_id} completed; it can be resumed only to train more epochs "
            f"(cnn-lab resume {run_id} --epochs N), or trained again."
        )
    if status not in RESUMABLE and status != COMPLETED:
        return f"Run {run_id} is {status}; only a stopped, failed or crashed run can be resumed."
    return None
