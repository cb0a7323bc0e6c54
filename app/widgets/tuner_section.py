"""One tuner's box in the Tune panel: its fields, Run and Stop, progress, and what it found.

The section is a view: it says what the person asked for (``run_requested(options)``,
``stop_requested()``, ``apply_requested(changes)``) and shows what it is told. The panel
owns the runner and the app state, so a section never starts a process or edits the
recipe itself, and tests can feed it results directly.

What a section shows survives everything except its own next result: a failed or
stopped re-run puts a sentence above the last result rather than wiping it out.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from cnn_lab.app.widgets.task_progress import TaskProgress

ERROR_STYLE = "color: #c62828;"
NOTE_STYLE = "color: palette(mid);"
ADVICE_STYLE = "color: #9a6700;"
HEADLINE_STYLE = "font-weight: 600;"
STAGE_NAMES = {
    "lr range test": "LR range test",
    "batch-size probe": "Batch-size probes",
}
"""The engine's stage words as a person reads them beside the bar; others get a capital."""


def stage_name(stage: str) -> str:
    return STAGE_NAMES.get(stage, stage[:1].upper() + stage[1:])


def note_label(text: str = "", style: str = NOTE_STYLE) -> QLabel:
    """A wrapped label for sentences (messages, warnings, empty states)."""
    label = QLabel(text)
    label.setWordWrap(True)
    label.setStyleSheet(style)
    return label


class TunerSection(QGroupBox):
    """The common frame of the three tuner boxes; subclasses add fields and a result view."""

    run_requested = Signal(dict)  # the tuner's keyword options
    stop_requested = Signal()
    apply_requested = Signal(dict)  # TrainSpec field -> value

    def __init__(self, title: str, about: str, parent: QWidget | None = None) -> None:
        super().__init__(title, parent)
        self.setToolTip(about)
        self.running = False
        self.run_button = QPushButton("Run")
        self.run_button.setToolTip(about)
        self.run_button.clicked.connect(self._run_clicked)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop this tuner; what it has not finished is discarded.")
        self.stop_button.setVisible(False)
        self.stop_button.clicked.connect(self.stop_requested)
        self.progress = TaskProgress(bar_width=180)  # "LR range test · 40 of 100 · 0:12 left"
        self.stage = note_label()  # on its own line: "Starting…", "Stopped", "Batch size set…"
        self.stage.setVisible(False)
        self.error = note_label(style=ERROR_STYLE)
        self.error.setVisible(False)

        self.controls = QHBoxLayout()
        self.controls.setContentsMargins(0, 0, 0, 0)
        self._fields_end = 0  # fields go before the buttons
        self.controls.addWidget(self.run_button)
        self.controls.addWidget(self.stop_button)
        self.controls.addStretch(1)
        self.body = QVBoxLayout(self)
        self.body.addLayout(self.controls)
        # On its own line: beside the fields, its growing label widened the section and
        # made the panel's two columns jump while a tuner ran.
        self.body.addWidget(self.progress)
        self.body.addWidget(self.stage)
        self.body.addWidget(self.error)

    # ------------------------------------------------------------------ building

    def add_field(self, label: str, widget: QWidget, tooltip: str) -> None:
        """A labelled field in the controls row, before Run."""
        caption = QLabel(label)
        caption.setToolTip(tooltip)
        widget.setToolTip(tooltip)
        caption.setBuddy(widget)
        self.controls.insertWidget(self._fields_end, caption)
        self.controls.insertWidget(self._fields_end + 1, widget)
        self._fields_end += 2

    # ------------------------------------------------------------------ what to run

    def options(self) -> dict[str, Any] | None:
        """The tuner's options from the fields; None (with a sentence shown) if they are bad."""
        return {}

    def _run_clicked(self) -> None:
        options = self.options()
        if options is not None:
            self.run_requested.emit(options)

    # ------------------------------------------------------------------ state

    def set_running(self, running: bool) -> None:
        """Run becomes Stop and a progress bar while this section's tuner runs."""
        self.running = running
        self.run_button.setVisible(not running)
        self.stop_button.setVisible(running)
        self.stop_button.setEnabled(True)
        if running:
            self.progress.start("Starting the tuning process…")  # busy until the first report
            self.error.setVisible(False)
        else:
            self.progress.finish()
        self._say("")

    def set_available(self, available: bool) -> None:
        """Run is refused while another section's tuner runs: they would share the device
        and each would measure the other's load."""
        self.run_button.setEnabled(available)
        self.run_button.setToolTip(
            self.toolTip() if available else "Another tuner is running; wait or stop it first."
        )

    def show_progress(self, stage: str, done: int, total: int) -> None:
        """``done`` of ``total`` with the time left beside the bar (a busy bar at total 0)."""
        self._say("")
        self.progress.update_progress(stage_name(stage), done, total)

    def show_stopping(self) -> None:
        self.stop_button.setEnabled(False)
        self._say("Stopping…")

    def show_failure(self, message: str) -> None:
        """The tuner failed: a sentence in red above whatever result is shown."""
        self.set_running(False)
        self.show_problem(message)

    def show_problem(self, message: str) -> None:
        """A sentence in red (never a dialog), e.g. bad fields or a value the recipe refused."""
        self.error.setText(message)
        self.error.setVisible(True)

    def show_cancelled(self) -> None:
        self.set_running(False)
        self._say("Stopped; nothing new to show.")

    def show_result(self, result: dict[str, Any]) -> None:
        self.set_running(False)
        self.error.setVisible(False)
        self._show_result(result)

    def _show_result(self, result: dict[str, Any]) -> None:
        raise NotImplementedError

    def show_applied(self, sentence: str) -> None:
        """Confirm that a result went into the recipe."""
        self.error.setVisible(False)
        self._say(sentence)

    def _say(self, sentence: str) -> None:
        """The line under the controls; hidden when there is nothing to say."""
        self.stage.setText(sentence)
        self.stage.setVisible(bool(sentence))
