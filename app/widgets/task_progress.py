"""A progress bar with what is being done and the time left: shown by every long task.

Feed it a Task's ``progress(stage, done, total)``. A total of 0 means the length is not known
yet (a busy bar, no ETA); the ETA appears once ``EtaEstimator`` has enough to go on, so a
short task never shows a wild guess.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QWidget

from cnn_lab.engine.util.progress_eta import EtaEstimator, StageProgress


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
        # The words and the ETA (restarting with each stage) are the engine's StageProgress,
        # the same text a job's data preparation shows in the Monitor and the Jobs view.
        self._words = StageProgress(clock) if clock is not None else StageProgress()
        self.bar = QProgressBar()
        self.bar.setMaximumWidth(bar_width)
        self.bar.setTextVisible(False)
        self.label = QLabel("")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.bar)
        layout.addWidget(self.label)
        self.setVisible(False)

    @property
    def eta(self) -> EtaEstimator:
        return self._words.eta

    @eta.setter
    def eta(self, estimator: EtaEstimator) -> None:
        self._words.eta = estimator

    def start(self, stage: str = "") -> None:
        """Show a busy bar for a task whose length is not known yet."""
        self._words.start(stage)
        self.bar.setRange(0, 0)
        self.label.setText(stage)
        self.setVisible(True)

    def update_progress(self, stage: str, done: int, total: int) -> None:
        """A Task's progress signal: ``done`` of ``total`` (``total`` 0: not known)."""
        text = self._words.update(stage, done, total)
        if total > 0:
            self.bar.setRange(0, total)
            self.bar.setValue(min(done, total))
        else:
            self.bar.setRange(0, 0)
        self.label.setText(text)
        self.setVisible(True)

    def seconds_left(self) -> float | None:
        return self.eta.seconds_left()

    def finish(self) -> None:
        self.setVisible(False)
        self.label.setText("")
