"""A sweep's results side: its trials table, best trial, curves, parallel coordinates and
parameter importance, or (before any trial) an empty state that says why there is none.

The Sweep panel fills it from a sweep's child as trials end, or from a past sweep read back
from the database; the texts come from the panel's form model (app/models/sweep_form.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QTabWidget, QVBoxLayout, QWidget

from cnn_lab.app.models.sweep_form import (
    CURVE_KEY,
    IMPORTANCE_LATER,
    IMPORTANCE_NEEDS_STUDY,
    NO_SWEEP,
    best_text,
    importance_text,
)
from cnn_lab.app.widgets.charts import LiveChart
from cnn_lab.app.widgets.empty_state import EmptyState
from cnn_lab.app.widgets.parallel_coordinates import ParallelCoordinates
from cnn_lab.app.widgets.plain_label import plain_label
from cnn_lab.app.widgets.trials_table import TrialsTable
from cnn_lab.engine.search.spec import SearchSpec


class SweepResults(QWidget):
    """The trials and their plots; ``table.runs_selected`` asks for the selected runs' curves."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.table = TrialsTable()
        self.curves = LiveChart(
            "Validation accuracy of the selected trials",
            x_label="epoch",
            y_label="accuracy",
            legend_at="bottom-right",
        )
        self.parallel = ParallelCoordinates()
        self.importance = plain_label(IMPORTANCE_LATER)
        self.importance.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.importance.setMargin(12)
        self.best_label = plain_label()
        self.train_best_button = QPushButton("Train the best on all the data")
        self.train_best_button.setToolTip(
            "Put the best trial's parameters into the recipe, lift the dataset's limit, "
            "and queue a run"
        )
        self.train_best_button.setEnabled(False)
        self.report_button = QPushButton("Report…")
        self.report_button.setToolTip(
            "Write this sweep's report: its trials table, parallel coordinates and parameter "
            "importance as HTML or PDF, or the trials as CSV or JSON"
        )
        self.report_button.setEnabled(False)

        self.views = views = QTabWidget()
        views.addTab(self.curves, "Curves")
        views.addTab(self.parallel, "Parallel coordinates")
        views.addTab(self.importance, "Importance")
        best = QHBoxLayout()
        best.addWidget(self.best_label, 1)
        best.addWidget(self.train_best_button)
        best.addWidget(self.report_button)
        self.results = QWidget()
        results = QVBoxLayout(self.results)
        results.setContentsMargins(0, 0, 0, 0)
        results.addWidget(QLabel("Trials (select rows to see their curves)"))
        results.addWidget(self.table, 2)
        results.addLayout(best)
        results.addWidget(views, 3)
        self.empty_state = EmptyState(*NO_SWEEP, replaces=[self.results])
        column = QVBoxLayout(self)
        column.addWidget(self.results, 1)
        column.addWidget(self.empty_state, 1)
        self.empty_state.set_empty(True)

    def clear(self) -> None:
        """No trials, curves, importance or best; nothing to train or report."""
        self.table.clear_trials()
        self.curves.clear()
        self.parallel.set_trials([], metric=CURVE_KEY, maximise=True)
        self.importance.setText(IMPORTANCE_LATER)
        self.importance.setStyleSheet("")
        self.train_best_button.setEnabled(False)
        self.report_button.setEnabled(False)
        self.best_label.setText("")

    def show_empty(self, message: tuple[str, str] | None) -> None:
        """The empty state's (title, text), or the trials when ``message`` is None."""
        if message is not None:
            self.empty_state.set_message(*message)
        self.empty_state.set_empty(message is not None)

    def show_result(
        self, result: dict[str, Any], search: SearchSpec | None, *, from_study: bool = True
    ) -> None:
        """A sweep's end (the child's result dict, or one read back from the database; a
        sweep rebuilt from its runs, ``from_study`` False, has no importance to show)."""
        self.table.set_outcomes(result.get("trials", []))
        self.draw_summary(result.get("trials", []), search)
        if from_study:
            self.show_importance(result.get("importance") or {})
        else:
            self.importance.setText(IMPORTANCE_NEEDS_STUDY)
        self.best_label.setText(best_text(result))
        self.train_best_button.setEnabled(bool(result.get("best_params")))
        self.report_button.setEnabled(bool(self.table.outcomes))

    def draw_summary(self, outcomes: list[dict[str, Any]], search: SearchSpec | None) -> None:
        """Parallel coordinates of ``outcomes`` over ``search``'s parameters and metric."""
        if search is not None:
            self.parallel.set_trials(
                outcomes,
                metric=search.metric,
                maximise=search.maximise,
                paths=[p.path for p in search.params],
            )

    def show_importance(self, importance: dict[str, float]) -> None:
        self.importance.setText(importance_text(importance))
        if importance:
            self.importance.setStyleSheet("font-family: monospace;")

    def follow_report(self, task: Any) -> None:
        """Say under the best that the report (a Task) is being written, then where it went
        or why it was not; one report at a time."""
        self.report_button.setEnabled(False)
        self.best_label.setText("Writing the sweep's report…")

        def done(ok: bool, message: str) -> None:
            self.report_button.setEnabled(True)
            self.best_label.setText(message if ok else f"The report was not written: {message}")

        task.connect_outcomes(
            finished=lambda message: done(True, message),
            failed=lambda message: done(False, message),
        )

    def draw_curves(self, curves: dict[str, tuple[Sequence[float], Sequence[float]]]) -> None:
        """One marked curve per name: (epochs, values)."""
        self.curves.clear()
        for name, (epochs, values) in curves.items():
            self.curves.add_curve(name, markers=True)
            self.curves.set(name, epochs, values)
