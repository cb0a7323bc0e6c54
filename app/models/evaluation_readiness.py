"""Whether a trained run can be used (scored by Evaluate, or asked by Predict), and what to say.

Both panels read the same three facts of the chosen run (its status, whether it saved its
weights, its summary) from the store at once, and both say what the person can do with it:
as a status line, and as the empty state's heading and text while nothing shows. The rules
that differ between them (Evaluate wants a finished run, Predict only its weights) are
each panel's model's; the reading and the shape of the answer are here, written once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cnn_lab.engine.errors import UserError
from cnn_lab.engine.store import RunRepository, artifact_kinds

EmptyText = tuple[str, str]
"""An empty state's heading and text, with ``{run_id}`` and ``{status}`` to fill in."""

UNREADABLE: EmptyText = ("Run {run_id} cannot be read", "Select another run in Runs.")


@dataclass(frozen=True)
class RunReading:
    """What the store holds of the chosen run, read in one call on the store's thread."""

    run_id: int | None
    status: str = ""
    has_weights: bool = False
    summary: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    """Why the run could not be read (the store's sentence); empty when it was."""


def read_run(store: RunRepository, run_id: int) -> RunReading:
    """Read ``run_id``'s status, weights and summary (the store's sentence if it cannot)."""
    try:
        record = store.get_run(run_id)
        has_weights = store.has_artifact(run_id, artifact_kinds.WEIGHTS)
    except UserError as exc:
        return RunReading(run_id, error=str(exc))
    return RunReading(run_id, record.status, has_weights, dict(record.summary))


def ask_run(
    call: Callable[..., None], run_id: int | None, take: Callable[[RunReading], None], owner: str
) -> None:
    """Have the store link's ``call`` read ``run_id`` and give the reading to ``take`` (at
    once, for no run); ``owner`` keys the call, so only a panel's newest question is read."""
    if run_id is None:
        take(RunReading(None))
        return
    call(
        lambda store: read_run(store, run_id),
        take,
        lambda sentence: take(RunReading(run_id, error=sentence)),
        key=owner,
        what=f"run {run_id}",
    )


@dataclass(frozen=True)
class Readiness:
    """What a panel says about its run, and whether its main action may run."""

    message: str
    """The status line's sentence."""
    why_empty: EmptyText
    """The empty state while nothing shows (see ``empty_text``)."""
    usable: bool = False
    error: bool = False
    """Whether ``message`` is an error (shown in red)."""
    run_id: int | None = None
    status: str = ""

    def empty_text(self, busy: EmptyText | None = None) -> tuple[str, str]:
        """The empty state's heading and text for this run (``busy``'s while a task runs)."""
        title, text = busy if busy is not None else self.why_empty
        values = {"run_id": self.run_id, "status": self.status}
        return title.format(**values), text.format(**values)


def answer(
    reading: RunReading, message: str, why_empty: EmptyText, *, usable: bool = False
) -> Readiness:
    """A panel's answer for the run it read (its id and status fill the empty state)."""
    return Readiness(message, why_empty, usable, run_id=reading.run_id, status=reading.status)


def unreadable(reading: RunReading) -> Readiness:
    """The answer for a run the store could not read: its sentence, as an error."""
    return Readiness(reading.error, UNREADABLE, error=True, run_id=reading.run_id)


__all__ = [
    "UNREADABLE",
    "EmptyText",
    "Readiness",
    "RunReading",
    "answer",
    "read_run",
    "unreadable",
]
