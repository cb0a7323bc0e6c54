"""The Optimize panel: one action for "how do I train this fast and well?" within a budget.

The person gives a time budget, a goal and optionally candidate widths; the current Data and
Architecture (``AppState``) are what is optimized. Start runs the engine's ``optimize`` in a
child process through one runner (app/bridge/optimize_runner.py), so training never holds
the GUI's interpreter lock; the panel shows each phase (speed, rate, search, final) with its
planned share of the budget and the time left. Stop keeps the best run so far: the engine
returns it, and it arrives as a result like any other. The result card lists every decision
with its evidence, what was rejected, each phase's time against its allotment and whether
the budget held; its rules and texts live in app/models/optimize_form.py.

Apply puts the chosen recipe into ``AppState`` (the Data, Architecture and Hyperparameters
panels show it); Keep the run archives the search's trials and asks the window, through
``run_kept``, to select the final run in Runs. ``runner_factory`` lets tests give the panel
a runner with planted tuners.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from cnn_lab.app.bridge.optimize_runner import OptimizeRunner
from cnn_lab.app.models import optimize_form as form
from cnn_lab.app.state import AppState
from cnn_lab.app.widgets.empty_state import EmptyState
from cnn_lab.app.widgets.tuner_section import note_label
from cnn_lab.engine.errors import UserError
from cnn_lab.engine.specs.network_name import network_name

if TYPE_CHECKING:  # the package loads optuna: imported when a result arrives
    from cnn_lab.engine.optimize.decisions import OptimizeResult

RunnerFactory = Callable[[QObject], Any]
"""Makes the runner: a QObject with ``phase_started(str)``, ``progress(tuple)``,
``finished(dict)``, ``failed(str)``, ``cancelled()`` and ``start(request, db_path)``,
``stop()``, ``shutdown()``, as OptimizeRunner has."""

EMPTY_TITLE = "No optimization has run yet"
EMPTY_TEXT = (
    "Give a time budget and a goal, then Start. cnn-lab measures the fastest settings on this "
    "device, finds a learning rate, searches briefly and trains the best recipe so that it "
    "ends in time, and explains each choice with its measurement. Nothing in the other "
    "panels changes until you press Apply."
)
PROBLEM_STYLE = "color: #b00020;"
LEFT_WIDTH = 430


class OptimizePanel(QWidget):
    """The request, the phases' progress, and the result card with Apply and Keep the run."""

    title = "Optimize"
    optimize_started = Signal()
    optimize_ended = Signal(str)  # "finished" | "failed" | "cancelled"
    run_kept = Signal(int)  # the run to show in Runs

    def __init__(
        self,
        state: AppState,
        parent: QWidget | None = None,
        *,
        runner_factory: RunnerFactory | None = None,
    ) -> None:
        super().__init__(parent)
        self.state = state
        self.result: OptimizeResult | None = None
        self.phases_seen: list[str] = []
        self._running = False
        self._budget_s = 0.0
        self.runner = (runner_factory or OptimizeRunner)(self)
        self.runner.phase_started.connect(self._on_phase)
        self.runner.progress.connect(self._on_progress)
        self.runner.finished.connect(self._on_finished)
        self.runner.failed.connect(self._on_failed)
        self.runner.cancelled.connect(self._on_cancelled)
        self._build()
        state.changed.connect(self._show_choices)
        self._show_choices()

    # ------------------------------------------------------------------ layout

    def _build(self) -> None:
        self.data_label, self.network_label = QLabel(), QLabel()
        self.widths_edit = QLineEdit()
        self.widths_edit.setPlaceholderText("e.g. 0.5, 1 (empty: the network's own)")
        self.widths_edit.setToolTip("Widths the search may choose among")
        self.budget_spin = QDoubleSpinBox()
        self.budget_spin.setRange(0.0, 24 * 60.0)
        self.budget_spin.setDecimals(1)
        self.budget_spin.setSuffix(" min")
        self.budget_spin.setValue(form.DEFAULT_BUDGET_MIN)
        self.budget_spin.setToolTip("The whole optimization ends within 10% of this")
        self.goal_box = QComboBox()
        for goal, label in form.GOAL_LABELS.items():
            self.goal_box.addItem(label, goal)
        self.target_spin = QDoubleSpinBox()
        self.target_spin.setRange(1.0, 100.0)
        self.target_spin.setSuffix(" %")
        self.target_spin.setValue(form.DEFAULT_TARGET_PERCENT)
        self.target_spin.setToolTip("The validation accuracy the fastest run must reach")
        self.goal_box.currentIndexChanged.connect(self._sync_buttons)
        self.start_button = QPushButton("Start")
        self.start_button.setToolTip("Optimize the current Data and Architecture in the budget")
        self.start_button.clicked.connect(self.start)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop now and keep the best run so far")
        self.stop_button.clicked.connect(self.stop)
        self.problem_label = note_label("", PROBLEM_STYLE)
        self.problem_label.setVisible(False)
        fields = QFormLayout()
        fields.addRow("Data", self.data_label)
        fields.addRow("Network", self.network_label)
        fields.addRow("Candidate widths", self.widths_edit)
        fields.addRow("Time budget", self.budget_spin)
        fields.addRow("Goal", self.goal_box)
        fields.addRow("Target accuracy", self.target_spin)
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.stop_button)
        buttons.addStretch(1)
        request = QGroupBox("What to optimize")
        request_column = QVBoxLayout(request)
        request_column.addLayout(fields)
        request_column.addLayout(buttons)
        request_column.addWidget(self.problem_label)

        progress = QGroupBox("Phases")
        grid = QGridLayout(progress)
        self.phase_titles: dict[str, QLabel] = {}
        self.phase_bars: dict[str, QProgressBar] = {}
        self.phase_notes: dict[str, QLabel] = {}
        for row, phase in enumerate(form.PHASES):
            title, bar, note = QLabel(), QProgressBar(), QLabel(form.PHASE_STAGES[phase])
            bar.setRange(0, 100)
            bar.setMaximumHeight(14)
            bar.setTextVisible(False)
            note.setStyleSheet("color: palette(mid);")
            grid.addWidget(title, 2 * row, 0)
            grid.addWidget(bar, 2 * row, 1)
            grid.addWidget(note, 2 * row + 1, 0, 1, 2)
            self.phase_titles[phase], self.phase_bars[phase] = title, bar
            self.phase_notes[phase] = note
        self.time_label = QLabel("")
        grid.addWidget(self.time_label, 2 * len(form.PHASES), 0, 1, 2)

        left_widget = QWidget()
        left_widget.setFixedWidth(LEFT_WIDTH)
        left = QVBoxLayout(left_widget)
        left.setContentsMargins(0, 0, 0, 0)
        left.addWidget(request)
        left.addWidget(progress)
        left.addStretch(1)

        self.card = QTextBrowser()
        self.card.setOpenLinks(False)
        self.apply_button = QPushButton("Apply")
        self.apply_button.setToolTip(
            "Put the chosen recipe into Data, Architecture and Hyperparameters"
        )
        self.apply_button.clicked.connect(self.apply)
        self.keep_button = QPushButton("Keep the run")
        self.keep_button.setToolTip(
            "Keep the final run's model: select it in Runs and archive the search's trials"
        )
        self.keep_button.clicked.connect(self.keep_run)
        self.outcome_label = note_label("")
        actions = QHBoxLayout()
        actions.addWidget(self.apply_button)
        actions.addWidget(self.keep_button)
        actions.addWidget(self.outcome_label, 1)
        self.card_box = QGroupBox("Result")
        card_column = QVBoxLayout(self.card_box)
        card_column.addWidget(self.card, 1)
        card_column.addLayout(actions)
        self.empty_state = EmptyState(EMPTY_TITLE, EMPTY_TEXT, replaces=[self.card_box])
        self.empty_state.set_empty(True)
        right = QVBoxLayout()
        right.addWidget(self.empty_state)
        right.addWidget(self.card_box, 1)

        layout = QHBoxLayout(self)
        layout.addWidget(left_widget, 0, Qt.AlignmentFlag.AlignTop)
        layout.addLayout(right, 1)
        self._reset_phases(form.DEFAULT_BUDGET_MIN * 60.0)
        self._sync_buttons()

    def _show_choices(self) -> None:
        self.data_label.setText(self.state.dataset.source or "none chosen (Data panel)")
        self.network_label.setText(
            f"{network_name(self.state.architecture)}, width {self.state.architecture.width:g}"
        )

    def _sync_buttons(self) -> None:
        self.start_button.setEnabled(not self._running)
        self.stop_button.setEnabled(self._running)
        self.target_spin.setEnabled(self.goal_box.currentData() == "target")
        for widget in (self.widths_edit, self.budget_spin, self.goal_box):
            widget.setEnabled(not self._running)
        has_result = self.result is not None and not self._running
        self.apply_button.setEnabled(has_result)
        self.keep_button.setEnabled(has_result)

    def _reset_phases(self, budget_s: float) -> None:
        self.phases_seen = []
        for phase in form.PHASES:
            self.phase_titles[phase].setText(form.share_text(phase, budget_s))
            self.phase_bars[phase].setValue(0)
            self.phase_notes[phase].setText(form.PHASE_STAGES[phase])
        self.time_label.setText("")

    def _say(self, text: str) -> None:
        self.problem_label.setText(text)
        self.problem_label.setVisible(bool(text))

    # ------------------------------------------------------------------ running

    def is_empty(self) -> bool:
        """Whether no result is shown yet (the panel explains itself instead)."""
        return self.empty_state.is_shown()

    @property
    def running(self) -> bool:
        return self._running

    def start(self) -> bool:
        """Start optimizing the current choices; False (with the sentence shown) if refused."""
        if self._running:
            return False
        try:
            request = form.make_request(
                self.state.run_spec(),
                self.budget_spin.value(),
                str(self.goal_box.currentData()),
                self.target_spin.value(),
                self.widths_edit.text(),
            )
        except UserError as exc:
            self._say(str(exc))
            return False
        self._say("")
        self._budget_s = request.budget_s
        self._reset_phases(request.budget_s)
        self._running = True
        self._sync_buttons()
        self.optimize_started.emit()
        try:
            self.runner.start(request.to_dict(), self.state.db_path)
        except Exception as exc:  # the runner could not start at all: say so, keep going
            self._on_failed(f"Optimize could not start: {exc}.")
            return False
        return True

    def stop(self) -> None:
        """Ask the optimization to stop; the best run so far comes back as the result."""
        if self._running:
            self.time_label.setText("Stopping: finishing the step and keeping the best so far…")
            self.runner.stop()

    def shutdown(self) -> None:
        """End the optimization and its process now (the window is closing)."""
        self.runner.shutdown()
        self._on_cancelled()

    def _on_phase(self, phase: str) -> None:
        if phase not in self.phases_seen:
            self.phases_seen.append(phase)
        for earlier in form.PHASES[: form.PHASES.index(phase)] if phase in form.PHASES else ():
            self.phase_bars[earlier].setValue(100)

    def _on_progress(self, message: tuple[Any, ...]) -> None:
        phase, stage, done, total, elapsed_s, budget_s = message
        if phase not in form.PHASES:
            return
        self._on_phase(phase)
        self.phase_bars[phase].setValue(form.percent(done, total))
        self.phase_notes[phase].setText(stage)
        self.time_label.setText(form.progress_text(stage, done, total, elapsed_s, budget_s))

    def _end(self, outcome: str) -> None:
        self._running = False
        self._sync_buttons()
        self.optimize_ended.emit(outcome)

    def _on_finished(self, data: dict[str, Any]) -> None:
        if not self._running:
            return
        from cnn_lab.engine.optimize.decisions import OptimizeResult

        try:
            result = OptimizeResult.from_dict(data)
        except Exception as exc:  # a result this window cannot read: say so
            self._on_failed(f"The result could not be read: {exc}.")
            return
        self.show_result(result)
        self._end("finished")

    def show_result(self, result: OptimizeResult) -> None:
        """Fill the card with ``result`` (also for a result read back from the store)."""
        self.result = result
        for phase in result.phases:
            if phase.phase in self.phase_bars and phase.outcome == "done":
                self.phase_bars[phase.phase].setValue(100)
        self.time_label.setText(form.budget_text(result))
        self.card.setHtml(form.card_html(result))
        self.outcome_label.setText("")
        self.empty_state.set_empty(False)
        self._sync_buttons()

    def _on_failed(self, message: str) -> None:
        if self._running:
            self._say(message)
            self.time_label.setText("")
            self._end("failed")

    def _on_cancelled(self) -> None:
        if self._running:
            self.time_label.setText("Stopped before anything was recorded.")
            self._end("cancelled")

    # ------------------------------------------------------------------ the card's actions

    def apply(self) -> bool:
        """Put the chosen recipe into the panels (through AppState); False with no result."""
        if self.result is None:
            return False
        chosen = self.result.chosen
        self.outcome_label.setText(form.applied_text(self.state.run_spec(), chosen))
        self.state.update(
            dataset=chosen.dataset, architecture=chosen.architecture, train=chosen.train
        )
        return True

    def keep_run(self) -> int | None:
        """Keep the final run: archive the trials (off the GUI thread), then ask for it to
        be shown in Runs; the run kept, at once."""
        if self.result is None:
            return None
        keep, others = form.kept_runs(self.result)

        def kept(_result: object = None) -> None:
            self.outcome_label.setText(form.keep_text(keep, len(others)))
            if keep is not None:
                self.run_kept.emit(keep)

        if others:
            self.state.store.call(
                lambda store: store.set_archived(others, True),
                kept,
                self.outcome_label.setText,
                what="archiving the trials",
            )
        else:
            kept()
        return keep


if __name__ == "__main__":
    from cnn_lab.app.panels._standalone import run_standalone

    sys.exit(run_standalone(OptimizePanel))
