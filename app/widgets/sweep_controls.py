"""The Sweep panel's left column: what to sweep, what it will cost, and the launcher.

From the top: the past sweeps of the database (app/widgets/past_sweeps.py), the parameter
grid (param_grid_editor.py), the strategy, pruner and budget (sweep_settings.py), the trial
count and time estimate beside "Measure an epoch", Launch and Stop, the trials' progress,
and the lines that say where trials train and what went wrong. The panel fills the texts;
this column only holds the widgets and says which are usable while a sweep runs.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QPushButton, QVBoxLayout, QWidget

from cnn_lab.app.widgets.param_grid_editor import ParamGridEditor
from cnn_lab.app.widgets.past_sweeps import PastSweepsRow
from cnn_lab.app.widgets.plain_label import plain_label
from cnn_lab.app.widgets.sweep_settings import SweepSettings
from cnn_lab.app.widgets.task_progress import TaskProgress
from cnn_lab.app.widgets.tuner_section import ERROR_STYLE, NOTE_STYLE

INTRO = (
    "Vary fields of the current Data, Architecture and Hyperparameters choices. Each trial "
    "is a normal run; running the same sweep again resumes it."
)


class SweepControls(QWidget):
    """The editor, settings, estimate and launcher of a sweep, top to bottom."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.saved_row = PastSweepsRow()
        self.editor = ParamGridEditor()
        self.settings = SweepSettings()
        self.count_label = plain_label()
        self.count_label.setStyleSheet(NOTE_STYLE)
        self.measure_button = QPushButton("Measure an epoch")
        self.measure_button.setToolTip(
            "Time a few training steps and a validation pass of the current choices on this "
            "machine (seconds), for the sweep's time estimate"
        )
        self.measure_progress = TaskProgress()
        self.launch_button = QPushButton("Launch sweep")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setEnabled(False)
        self.trials_progress = TaskProgress()
        self.progress_label = plain_label()
        self.where_label = plain_label()
        self.where_label.setStyleSheet(NOTE_STYLE)
        self.error = plain_label()
        self.error.setStyleSheet(ERROR_STYLE)
        self.error.setVisible(False)

        column = QVBoxLayout(self)
        intro = plain_label(INTRO)
        intro.setStyleSheet(NOTE_STYLE)
        column.addWidget(intro)
        column.addWidget(self.saved_row)
        column.addWidget(self.editor, 1)
        column.addWidget(self.settings)
        estimate = QHBoxLayout()
        estimate.addWidget(self.count_label, 1)
        estimate.addWidget(self.measure_button, 0, Qt.AlignmentFlag.AlignTop)
        column.addLayout(estimate)
        column.addWidget(self.measure_progress)
        buttons = QHBoxLayout()
        buttons.addWidget(self.launch_button)
        buttons.addWidget(self.stop_button)
        buttons.addStretch(1)
        column.addLayout(buttons)
        for widget in (self.trials_progress, self.progress_label, self.where_label, self.error):
            column.addWidget(widget)

    def set_running(self, running: bool) -> None:
        """While a sweep runs, its grid and where it trains are fixed; only Stop acts on it."""
        self.launch_button.setEnabled(not running)
        self.stop_button.setEnabled(running)
        self.editor.setEnabled(not running)
        self.settings.cpu_too.setEnabled(not running)

    def set_measuring(self, measuring: bool) -> None:
        """One probe at a time: the button waits while the bar shows the probe's steps."""
        self.measure_button.setEnabled(not measuring)
        if measuring:
            self.count_label.setText("Measuring an epoch…")
            self.measure_progress.start("Starting")
        else:
            self.measure_progress.finish()

    def follow_probe(self, probe: Any) -> None:
        """Show the epoch probe's steps (a TuneRunner), and its failure in the count's place."""
        probe.finished.connect(lambda _result: self.set_measuring(False))
        probe.failed.connect(self._probe_failed)
        probe.cancelled.connect(lambda: self.set_measuring(False))
        if hasattr(probe, "progress"):  # a test's fake probe may have none
            probe.progress.connect(self._show_probe_progress)

    def _show_probe_progress(self, stage: str, done: int, total: int) -> None:
        self.measure_progress.update_progress(stage[:1].upper() + stage[1:], done, total)

    def _probe_failed(self, message: str) -> None:
        self.set_measuring(False)
        self.count_label.setText(f"The epoch could not be measured: {message}")

    def clear_notes(self) -> None:
        """No progress, placement or error line (the results side was emptied)."""
        self.error.setVisible(False)
        self.progress_label.setText("")
        self.where_label.setText("")

    def show_error(self, text: str) -> None:
        self.error.setText(text)
        self.error.setVisible(True)

    def show_failure(self, text: str) -> None:
        """What was under way (a sweep, a read of a past one) failed: no progress line, why."""
        self.progress_label.setText("")
        self.show_error(text)
