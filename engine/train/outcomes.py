"""How a run ends, as values: the loop raises one of these and ``train_events`` records it.

Each outcome carries the run's final status and the sentence a person reads. Raising them
from deep in the loop (a stop noticed after a step, a loss that stayed non-finite, memory that
ran out) replaces the flag variables and double breaks a loop would otherwise need.
"""

from __future__ import annotations

from typing import Any

from cnn_lab.engine.store import status as st


class RunEnded(Exception):
    """The run ends here with ``status``; ``extra`` goes into the run's summary."""

    status: str = st.COMPLETED

    def __init__(self, reason: str | None = None, hint: str | None = None, **extra: Any) -> None:
        super().__init__(reason or self.status)
        self.reason = reason
        self.hint = hint
        self.extra = extra


class Completed(RunEnded):
    """Every epoch trained, ``max_steps`` or ``time_limit_s`` reached, the target accuracy
    reached (``stop_at_accuracy``), or early stopping: each with its reason."""

    status = st.COMPLETED


class Stopped(RunEnded):
    """Stopped by request (the last checkpoint was written first, when there is a folder)."""

    status = st.STOPPED


class Diverged(RunEnded):
    """The loss stayed non-finite for ``MAX_BAD_STEPS`` steps in a row."""

    status = st.FAILED


class RanOutOfMemory(RunEnded):
    """The device ran out of memory; ``extra`` holds the batch size that fits, if any."""

    status = st.FAILED
