"""The Sweep panel: build a grid or search, launch it, and read its trials.

The left column (app/widgets/sweep_controls.py) edits a SearchSpec over the current choices
(``AppState.run_spec()`` is the base every trial starts from), with the trial count and an
honest time estimate (engine/search/estimates.py). The sweep runs in a child process through
a SweepRunner (app/bridge/sweep_runner.py), and each trial is a normal recorded run, so the
right column (app/widgets/sweep_results.py) reads the run store: the trials table, the
selected trials' validation curves, parallel coordinates and parameter importance.

"Past sweeps" (app/widgets/past_sweeps.py) reads any sweep the run database remembers back
as if it had just ended here, or resumes an unfinished one. "Train the best on all the data"
puts the best trial into the recipe and emits ``train_requested``; the window connects that
to its Train action, so the run is queued, monitored and recorded like any other.

The state and sentences live in a plain model (app/models/sweep_form.py); this view wires
the widgets, runners and store to it. ``runner_factory`` lets tests skip system sampling.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import partial
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import QSplitter, QVBoxLayout, QWidget

from cnn_lab.app.bridge.report_task import report_task
from cnn_lab.app.bridge.sweep_runner import SweepRunner
from cnn_lab.app.bridge.task import Task
from cnn_lab.app.bridge.tune_runner import TuneRunner
from cnn_lab.app.models.sweep_form import (
    SweepForm,
    finished_text,
    launchable,
    read_history,
    trial_curves,
)
from cnn_lab.app.state import AppState
from cnn_lab.app.widgets.report_export import ask_report_path
from cnn_lab.app.widgets.sweep_controls import SweepControls
from cnn_lab.app.widgets.sweep_results import SweepResults
from cnn_lab.engine.errors import UserError
from cnn_lab.engine.search.estimates import expected_parallel
from cnn_lab.engine.search.history import saved_sweeps
from cnn_lab.engine.search.past import OpenedSweep
from cnn_lab.engine.search.spec import SearchSpec
from cnn_lab.engine.specs import RunSpec

RunnerFactory = Callable[[QObject], Any]
"""Makes the runner: a QObject with SweepRunner's signals and start, stop and shutdown."""

TRIALS_STAGE = "Trials"


class SweepPanel(QWidget):
    """The grid editor and launcher on the left, the trials and their plots on the right."""

    title = "Sweep"
    sweep_ended = Signal(str)  # "finished" | "failed" | "cancelled"
    train_requested = Signal()
    slots_taken = Signal(str, list)  # owner ("sweep NAME"), the devices its trials train on
    slots_released = Signal(str)  # owner

    def __init__(
        self,
        state: AppState,
        parent: QWidget | None = None,
        *,
        runner_factory: RunnerFactory | None = None,
        probe_factory: RunnerFactory | None = None,
    ) -> None:
        super().__init__(parent)
        self.state = state
        self.form = SweepForm()
        self.free_slots: Callable[[], list[str]] | None = None
        """The job queue's free slots (the window sets it): trials avoid busy GPUs."""
        self._owner: str | None = None  # "sweep NAME" while its slots are held

        # The widgets by their old names: the window's tests reach for them on the panel.
        self.controls, self.results = c, r = SweepControls(), SweepResults()
        self.editor, self.settings, self.saved_row = c.editor, c.settings, c.saved_row
        self.strategy, self.pruner = c.settings.strategy, c.settings.pruner
        self.trials, self.cpu_too = c.settings.trials, c.settings.cpu_too
        self.saved_box, self.open_button = c.saved_row.box, c.saved_row.open_button
        self.resume_button, self.count_label = c.saved_row.resume_button, c.count_label
        self.measure_button, self.trials_progress = c.measure_button, c.trials_progress
        self.launch_button, self.stop_button = c.launch_button, c.stop_button
        self.progress_label, self.where_label = c.progress_label, c.where_label
        self.error, self.table, self.curves = c.error, r.table, r.curves
        self.parallel, self.importance = r.parallel, r.importance
        self.best_label, self.empty_state = r.best_label, r.empty_state
        self.train_best_button, self.report_button = r.train_best_button, r.report_button

        self.open_button.clicked.connect(self.open_saved)
        self.saved_row.opened.connect(self._show_opened)
        self.saved_row.open_failed.connect(c.show_failure)
        self.resume_button.clicked.connect(self.resume_saved)
        self.measure_button.clicked.connect(self.measure_epoch)
        self.launch_button.clicked.connect(self.launch)
        self.stop_button.clicked.connect(self.stop)
        self.table.runs_selected.connect(self.show_curves)
        self.train_best_button.clicked.connect(self.train_best)
        self.report_button.clicked.connect(lambda: self.export_report())
        for signal in (self.editor.changed, self.settings.changed, state.changed):
            signal.connect(self.refresh_estimate)
        self.probe = (probe_factory or TuneRunner)(self)
        self.probe.finished.connect(self._on_measured)
        c.follow_probe(self.probe)
        self.runner = (runner_factory or SweepRunner)(self)
        self.runner.trial.connect(self._on_trial)
        self.runner.slots_planned.connect(self._on_slots)
        self.runner.finished.connect(self._on_finished)
        self.runner.failed.connect(self._on_failed)
        self.runner.cancelled.connect(self._on_cancelled)
        state.db_changed.connect(self._on_db_changed)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(c)
        splitter.addWidget(r)
        splitter.setStretchFactor(0, 5)
        splitter.setStretchFactor(1, 6)
        splitter.setSizes([600, 680])  # the grid's seven columns fit without scrolling
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(splitter)
        self.refresh_estimate()  # nothing is listed until shown (showEvent reads the database)

    @property
    def search(self) -> SearchSpec | None:
        """The sweep on the results side: launched last, or opened."""
        return self.form.search

    @search.setter
    def search(self, search: SearchSpec | None) -> None:
        self.form.search = search

    @property
    def result(self) -> dict[str, Any] | None:
        return self.form.result

    @property
    def running(self) -> bool:
        return bool(self.runner.running)

    # ------------------------------------------------------------------ building

    def build_search(self) -> SearchSpec:
        """The SearchSpec the form describes, over the current choices; UserError if not."""
        base = self.state.run_spec()
        params = self.editor.params(base.model_dump(mode="json"))
        return SearchSpec.from_dict({"base": base, "params": params, **self.settings.values()})

    def refresh_estimate(self) -> None:
        """Say how many trials the form makes and about how long they take."""
        try:
            search = self.build_search()
        except UserError as exc:
            self.count_label.setText(exc.message)
            return
        at_once = self._expected_parallel(search)
        text, needs_history = self.form.estimate(search, at_once)
        self.count_label.setText(text)
        if needs_history:  # read off the GUI thread; said again if the runs changed
            self.state.store.call(read_history, self._take_history, key=f"history-{id(self)}")

    def _take_history(self, runs: list[Any]) -> None:
        if self.form.take_history(runs):
            self.refresh_estimate()

    def _expected_parallel(self, search: SearchSpec) -> int:
        free = self.free_slots() if self.free_slots else None
        return expected_parallel(search, free, cpu=self.cpu_too.isChecked())

    def measure_epoch(self) -> bool:
        """Time an epoch of the current choices in a tuner child (a few steps, seconds)."""
        if self.probe.running:
            return False
        try:
            base = self.build_search().base
        except UserError:
            base = self.state.run_spec()
        self.controls.set_measuring(True)
        self.form.probed_hash = base.spec_hash()
        self.probe.start("epoch-time", base)
        return True

    def _on_measured(self, result: dict[str, Any]) -> None:
        self.form.probe_finished(result)
        self.refresh_estimate()

    # ------------------------------------------------------------------ past sweeps

    def refresh_saved(self) -> None:
        """List every sweep of the database (those without their study too: they open from
        their runs, and are never resumed from here)."""
        path, key = self.state.db_path, f"saved-sweeps-{id(self)}"
        read = lambda store: saved_sweeps(path, without_study=True, store=store)  # noqa: E731
        self.state.store.call(read, self.saved_row.set_sweeps, key=key, what="the past sweeps")

    def _update_saved_buttons(self) -> None:
        """A past sweep opens only onto a free results side: no sweep launched or running."""
        self.saved_row.set_busy(self.form.sweeping or self.running)

    def resume_saved(self) -> bool:
        """Resume the unfinished sweep chosen in the list, as it was saved."""
        chosen = self.saved_row.chosen()
        return chosen is not None and chosen.unfinished and self.launch(chosen.search)

    def open_saved(self) -> Task | None:
        """Read the chosen sweep back in the background and show it as if it had just ended.

        Returns the started Task (None when nothing is chosen, a sweep is running, or one is
        being opened already); its ``finished`` carries the ``OpenedSweep`` shown.
        """
        chosen = self.saved_row.chosen()
        make_task = partial(Task, name="open sweep", parent=self)
        task = self.saved_row.open_chosen(self.state.db_path, make_task)
        if task is None or chosen is None:
            return None
        self.error.setVisible(False)
        self.progress_label.setText(f"Opening sweep {chosen.name}…")
        return task.start()

    def _drop_open_task(self) -> None:
        if self.saved_row.drop_open():
            self.progress_label.setText("")

    def _show_opened(self, opened: OpenedSweep) -> None:
        """Fill the results side with a past sweep, replacing whatever it showed."""
        self._clear_results()
        self.form.show_opened(opened)
        self._show_result(opened.result, from_study=not opened.note)
        self.progress_label.setText(self.form.opened_text(len(self.table.outcomes)))
        self.where_label.setText(opened.note)

    def _clear_results(self) -> None:
        """Empty the results side (before a launch, an opened sweep, or another database)."""
        self.form.clear()
        self.results.clear()
        self.controls.clear_notes()
        self._update_empty_state()

    def _on_db_changed(self, _path: str) -> None:
        """Another database: its sweeps are listed, and another's results are not shown."""
        if not self.running:
            self._drop_open_task()
            self._clear_results()
        self.refresh_saved()

    def showEvent(self, event: QShowEvent) -> None:
        if not self.running:
            self.refresh_saved()
        super().showEvent(event)

    # ------------------------------------------------------------------ running

    def launch(self, search: SearchSpec | None = None) -> bool:
        """Start ``search`` (default: the one the form describes); False and a sentence if not."""
        if self.running:
            return False
        try:
            search = launchable(search or self.build_search())
        except UserError as exc:
            self.controls.show_error(str(exc))
            return False
        self._drop_open_task()
        self._clear_results()
        self.form.launched(search)
        self.parallel.set_trials([], metric=search.metric, maximise=search.maximise)
        self._set_running(True)
        self.trials_progress.start(TRIALS_STAGE)
        self._show_progress()
        try:
            self.runner.start(
                search,
                self.state.db_path,
                cpu_too=self.cpu_too.isChecked(),
                allowed=self.free_slots() if self.free_slots else None,
            )
        except Exception as exc:  # the runner could not start at all: say so, keep going
            self._on_failed(f"The sweep could not start: {exc}.")
            return False
        self._update_empty_state()  # running now: "waiting for the first trial"
        return True

    def stop(self) -> None:
        if self.running:
            self.progress_label.setText("Stopping after the current step…")
            self.runner.stop()

    def shutdown(self) -> None:
        """End the sweep and its process now (the window is closing)."""
        self._drop_open_task()
        self.runner.shutdown()
        self.probe.shutdown()
        self._set_running(False)

    def is_empty(self) -> bool:
        """Whether the results side shows its empty state (no trial yet) instead of the table."""
        return self.empty_state.is_shown()

    def _update_empty_state(self) -> None:
        """The results side shows the trials once there is one; until then, why there is none."""
        empty = self.form.empty_message(has_trials=bool(self.table.outcomes), running=self.running)
        self.results.show_empty(empty)

    def _set_running(self, running: bool) -> None:
        self.form.sweeping = running
        if not running:
            self.trials_progress.finish()
        self.controls.set_running(running)
        self._update_saved_buttons()
        if not running and self._owner is not None:
            owner, self._owner = self._owner, None
            self.slots_released.emit(owner)
        self._update_empty_state()

    def _on_slots(self, slots: list[str], words: str) -> None:
        """The child planned where trials train: say so, and keep those slots from the queue."""
        self.where_label.setText(f"Trials train {words}.")
        self._owner = self.form.owner()
        if self._owner is not None:
            self.slots_taken.emit(self._owner, slots)

    def _show_progress(self) -> None:
        """Trials done of the budget on the bar, with the time left."""
        done = len(self.table.outcomes)
        self.trials_progress.update_progress(TRIALS_STAGE, done, self.form.total or 0)
        self.progress_label.setText(self.form.progress_text(done))

    def _on_trial(self, outcome: dict[str, Any]) -> None:
        self.table.add_outcome(outcome)
        self._show_progress()
        self._update_empty_state()
        self.results.draw_summary(list(self.table.outcomes.values()), self.search)

    def _on_finished(self, result: dict[str, Any]) -> None:
        self._set_running(False)
        self._show_result(result)
        self.progress_label.setText(finished_text(result, len(self.table.outcomes)))
        self.refresh_saved()
        self.sweep_ended.emit("finished")

    def _on_failed(self, message: str) -> None:
        self._set_running(False)
        self.controls.show_failure(message)
        self.sweep_ended.emit("failed")

    def _on_cancelled(self) -> None:
        self._set_running(False)
        self.progress_label.setText("Stopped; launch the same sweep again to resume it.")
        self.refresh_saved()
        self.sweep_ended.emit("cancelled")

    # ------------------------------------------------------------------ results

    def _show_result(self, result: dict[str, Any], *, from_study: bool = True) -> None:
        """Show a sweep's end (the child's result dict, or one read back from the database)."""
        self.form.result = result
        self.results.show_result(result, self.search, from_study=from_study)
        self._update_empty_state()

    def export_report(self, path: str | None = None, fmt: str | None = None) -> Any:
        """Write the last sweep's report in the background (to a file asked for when ``path``
        is None); its sentence shows under the best."""
        if self.search is None:
            return None
        name = self.search.study_name()
        if path is None:
            chosen = ask_report_path(self, f"Report of sweep {name}", f"{name}-report.html")
            return self.export_report(*chosen) if chosen else None
        task = report_task(self.state.db_path, path, sweep=name, fmt=fmt, parent=self)
        self.results.follow_report(task)
        return task.start()

    def show_curves(self, run_ids: list[int]) -> None:
        """Draw the stored validation accuracy, per epoch, of the selected trials' runs."""
        read = lambda store: trial_curves(store, run_ids)  # noqa: E731
        self.state.store.call(read, self.results.draw_curves, key=f"sweep-curves-{id(self)}")

    def train_best(self) -> RunSpec | None:
        """Put the best trial into the recipe on all the data, and ask the window to train it."""
        best = self.form.best_on_all_data()
        if best is None:
            return None
        spec, shown = best
        self.state.update(dataset=spec.dataset, architecture=spec.architecture, train=spec.train)
        self.progress_label.setText(f"Training {shown} on all the data.")
        self.train_requested.emit()
        return spec


if __name__ == "__main__":
    from cnn_lab.app.panels._standalone import run_standalone

    sys.exit(run_standalone(SweepPanel))
