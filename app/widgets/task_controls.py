"""A panel's status line, progress bar and Cancel button, following one task at a time.

The Evaluate and Predict panels each run one background Task at a time and show it the same
way: a sentence on the status line (red when it is an error), a bar with the stage, "N of
M" and the time left, and a Cancel button while it runs. Which task is current, and the
sentences for its failure and its cancelling, are kept here once; a panel says what its
task's result means (``finished``) and what to update when any task ends (``ended``).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, Literal, Protocol

from PySide6.QtCore import QObject, Qt
from PySide6.QtWidgets import QLabel, QPushButton, QWidget

from cnn_lab.app.widgets.task_progress import TaskProgress

ERROR_STYLE = "color: #c62828;"
Outcome = Literal["finished", "failed", "cancelled"]


class Task(Protocol):
    """What is followed here of the bridge's Task (widgets sit beside the bridge, not on it)."""

    def connect_outcomes(
        self,
        *,
        progress: Callable[[str, int, int], Any] | None = None,
        finished: Callable[[Any], Any] | None = None,
        failed: Callable[[str], Any] | None = None,
        cancelled: Callable[[], Any] | None = None,
    ) -> Any: ...

    def cancel(self) -> None: ...


class StatusLine(QLabel):
    """A plain, wrapping, selectable label that shows errors in red.

    The text comes from runs and the engine, so it is never read as HTML, and it can be
    selected to copy a reason.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.setWordWrap(True)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

    def say(self, text: str, *, error: bool = False) -> None:
        """Show ``text``; ``error`` shows it in red until the next sentence."""
        self.setText(text)
        self.setStyleSheet(ERROR_STYLE if error else "")


class TaskControls(QObject):
    """The widgets (for the panel to lay out) and the bookkeeping of a panel's current task."""

    def __init__(self, parent: QWidget, *, cancelled_text: str, stage_in_status: bool = False):
        super().__init__(parent)
        self.status = StatusLine()
        self.progress = TaskProgress()
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setVisible(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.task: Task | None = None
        self._cancelled_text = cancelled_text
        self._stage_in_status = stage_in_status
        """Whether the status line also says the stage ("Predicting…") as progress comes."""

    def follow(
        self,
        task: Task,
        *,
        status: str,
        stage: str,
        finished: Callable[[Any], None],
        ended: Callable[[Outcome], None],
    ) -> None:
        """Make ``task`` the current one (not started): ``finished`` gets its result, then
        ``ended`` runs however it ends; a task no longer current is not heard."""
        self.task = task
        task.connect_outcomes(
            progress=partial(self._on_progress, task),
            finished=partial(self._on_finished, task, finished, ended),
            failed=partial(self._on_failed, task, ended),
            cancelled=partial(self._on_cancelled, task, ended),
        )
        self.status.say(status)
        self.progress.start(stage)
        self.cancel_button.setVisible(True)
        self.cancel_button.setEnabled(True)

    def cancel(self) -> None:
        """Ask the current task to stop; it says "cancelled" once it has."""
        if self.task is not None:
            self.task.cancel()
            self.status.say("Cancelling…")
            self.cancel_button.setEnabled(False)

    def drop(self) -> None:
        """Stop the current task and forget it: its result would show nowhere now."""
        if self.task is not None:
            self.task.cancel()
        self._idle()

    def _idle(self) -> None:
        self.task = None
        self.progress.finish()
        self.cancel_button.setVisible(False)
        self.cancel_button.setEnabled(False)

    def _on_progress(self, task: Task, stage: str, done: int, total: int) -> None:
        if task is not self.task:
            return
        # The bar's label says the stage, "N of M" and the time left.
        self.progress.update_progress(stage[:1].upper() + stage[1:], done, total)
        if self._stage_in_status:
            self.status.say(f"{stage}…")

    def _on_finished(
        self,
        task: Task,
        finished: Callable[[Any], None],
        ended: Callable[[Outcome], None],
        result: Any,
    ) -> None:
        if task is self.task:
            self._idle()
            finished(result)
            ended("finished")

    def _on_failed(self, task: Task, ended: Callable[[Outcome], None], message: str) -> None:
        if task is self.task:
            self._idle()
            self.status.say(message, error=True)
            ended("failed")

    def _on_cancelled(self, task: Task, ended: Callable[[Outcome], None]) -> None:
        if task is self.task:
            self._idle()
            self.status.say(self._cancelled_text)
            ended("cancelled")


__all__ = ["ERROR_STYLE", "Outcome", "StatusLine", "TaskControls"]
