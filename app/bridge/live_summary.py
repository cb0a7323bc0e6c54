"""The Architecture panel's live summary: recomputed on every edit, latest request wins.

Summarising builds the network on torch's meta device (10–500 ms, and the first call imports
torch), so it runs on the thread pool. Edits arrive faster than that, and only the newest
one matters: while one summary computes, newer requests overwrite a single pending slot, so
the pool never works through a queue of stale specs, and a result that is no longer the
newest request is dropped instead of flashing on screen.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, Signal

from cnn_lab.app.bridge.task import run_task
from cnn_lab.engine.errors import UserError
from cnn_lab.engine.models.registry import InputShape
from cnn_lab.engine.specs import ArchitectureSpec

Compute = Callable[[ArchitectureSpec, InputShape], Any]


def _summarize(spec: ArchitectureSpec, shape: InputShape) -> Any:
    # Imported here, on the worker thread: the module pulls in torch.
    from cnn_lab.engine.models.architecture_summary import summarize_architecture

    return summarize_architecture(spec, shape)


@dataclass(frozen=True)
class _Outcome:
    """What one request gave, carried back to the GUI thread as one frozen value."""

    number: int
    spec: ArchitectureSpec
    summary: Any = None
    message: str = ""
    path: tuple[int, ...] | None = None


class LiveSummary(QObject):
    """Summaries of architecture specs, computed off the GUI thread, newest request only.

    ``ready(summary, spec)`` and ``failed(message, path)`` fire only for the newest request;
    ``path`` is the failing layer's place (a tuple of 0-based indices) or None when the
    error is not about one layer. ``busy(bool)`` says whether anything is computing.
    """

    ready = Signal(object, object)
    failed = Signal(str, object)
    busy = Signal(bool)

    def __init__(self, compute: Compute = _summarize, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._compute = compute
        self._latest = 0
        self._running = False
        self._pending: tuple[int, ArchitectureSpec, InputShape] | None = None

    @property
    def is_busy(self) -> bool:
        return self._running

    def request(self, spec: ArchitectureSpec, shape: InputShape) -> int:
        """Ask for ``spec``'s summary at ``shape``; returns the request's number."""
        self._latest += 1
        job = (self._latest, spec, shape)
        if self._running:
            self._pending = job  # replaces any older pending request
        else:
            self._start(job)
            self.busy.emit(True)
        return self._latest

    def _start(self, job: tuple[int, ArchitectureSpec, InputShape]) -> None:
        self._running = True
        number, spec, shape = job
        compute = self._compute

        def work(_progress: object, _should_stop: object) -> _Outcome:
            try:
                return _Outcome(number, spec, summary=compute(spec, shape))
            except UserError as exc:
                text = exc.message if not exc.hint else f"{exc.message} {exc.hint}"
                return _Outcome(number, spec, message=text, path=getattr(exc, "path", None))
            except Exception as exc:  # a bug, not the person's doing: still a sentence
                name = type(exc).__name__
                text = f"The summary could not be computed ({name}: {exc})."
                return _Outcome(number, spec, message=text)

        run_task(work, parent=self, on_done=self._finished, on_error=self._crashed)

    def cancel(self) -> None:
        """Forget every request so far: nothing computing now will be delivered."""
        self._latest += 1
        self._pending = None

    def _finished(self, outcome: _Outcome) -> None:
        self._running = False
        if self._pending is not None:
            job, self._pending = self._pending, None
            self._start(job)
        if not self._running:
            self.busy.emit(False)
        if outcome.number != self._latest:
            return  # a newer request exists (or was cancelled): this result is stale
        if outcome.summary is not None:
            self.ready.emit(outcome.summary, outcome.spec)
        else:
            self.failed.emit(outcome.message, outcome.path or None)

    def _crashed(self, text: str) -> None:
        # Only reached if the wrapper itself failed; keep the first line, never a traceback.
        first = text.splitlines()[0] if text else "unknown error"
        message = f"The summary could not be computed ({first})."
        self._finished(_Outcome(self._latest, ArchitectureSpec(), message=message))
