"""A progress bar with what is being done and the time left: shown by every long task.

Feed it a Task's ``progress(stage, done, total)``. A total of 0 means the length is not known
yet (a busy bar, no ETA); the ETA appears once ``EtaEstimator`` has enough to go on, so a
short task never shows a wild guess.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QWidget

from cnn_lab.engine.util.progress_eta import EtaEstimator, progress_text


class TaskProgress(QWidget):
    """A bar and a label; hidden until ``start`` and after ``finish``."""

    def __init__(
        self,
        parent: QWidget | None = None,
        *,
        bar_width: int = 200,
        clock: Callable[[], float] | None = None,
    ) -> None:
        super().__init__(parent)
        self.eta = EtaEstimator(clock) if clock is not None else EtaEstimator()
        self.bar = QProgressBar()
        self.bar.setMaximumWidth(bar_width)
        self.bar.setTextVisible(False)
        self.label = QLabel("")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.bar)
        layout.addWidget(self.label)
        self.setVisible(False)
        self._stage = ""

    def start(self, stage: str = "") -> None:
        """Show a busy bar for a task whose length is not known yet."""
        self.eta.reset()
        self._stage = stage
        self.bar.setRange(0, 0)
        self.label.setText(stage)
        self.setVisible(True)

    def update_progress(self, stage: str, done: int, total: int) -> None:
        """A Task's progress signal: ``done`` of ``total`` (``total`` 0: not known)."""
        if stage != self._stage:
            self.eta.reset()
            self._stage = stage
        if total > 0:
            self.eta.update(done, total)
            self.bar.setRange(0, total)
            self.bar.setValue(min(done, total))
            left = self.eta.seconds_left()
        else:
            self.bar.setRange(0, 0)
            left = None
        self.label.setText(progress_text(stage, done, total, left))
        self.setVisible(True)

    def seconds_left(self) -> float | None:
        return self.eta.seconds_left()

    def finish(self) -> None:
        self.setVisible(False)
        self.label.setText("")
