"""The Sweep panel: build a grid or search, launch it, and read its trials.

The left column edits a SearchSpec over the current choices (``AppState.run_spec()`` is the
base every trial starts from): the parameters (app/widgets/param_grid_editor.py), the
strategy, the pruner and the budget, with the trial count and an honest time estimate. The
sweep runs in a child process through a SweepRunner (app/bridge/sweep_runner.py), and each
trial is a normal recorded run, so the right column reads the run store: the trials table,
the selected trials' validation curves, parallel coordinates and parameter importance.

"Past sweeps" lists every sweep the run database remembers (one run before a restart, or
with ``cnn-lab sweep`` on a terminal). Open reads one back in a background Task
(engine/search/past.py) into the very result dict a sweep's child sends at its end, so its
results show exactly as if it had just finished here; Resume runs an unfinished one again.
Opening leaves the editor and the recipe alone: it is for reading, and Resume (not Launch)
continues a saved search as it was saved. While a sweep runs, the results side is its own,
so nothing can be opened.

"Train the best on all the data" writes the best trial's parameters into the recipe (state,
so the other panels show it), lifts the dataset's quick-trial ``limit`` and k-fold split,
and emits ``train_requested``; the window connects that to its Train action, so the run is
queued, monitored and recorded like any other.

``runner_factory`` lets tests give the panel a runner without system sampling.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from statistics import fmean
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from cnn_lab.app.bridge.report_task import report_task
from cnn_lab.app.bridge.sweep_runner import SweepRunner
from cnn_lab.app.bridge.task import Task
from cnn_lab.app.bridge.tune_runner import TuneRunner
from cnn_lab.app.state import AppState
from cnn_lab.app.widgets.charts import LiveChart
from cnn_lab.app.widgets.empty_state import EmptyState
from cnn_lab.app.widgets.parallel_coordinates import ParallelCoordinates
from cnn_lab.app.widgets.param_grid_editor import ParamGridEditor
from cnn_lab.app.widgets.plain_label import plain_label
from cnn_lab.app.widgets.report_export import ask_report_path
from cnn_lab.app.widgets.task_progress import TaskProgress
from cnn_lab.app.widgets.trials_table import TrialsTable
from cnn_lab.app.widgets.tuner_section import ERROR_STYLE, NOTE_STYLE
from cnn_lab.engine.errors import UserError
from cnn_lab.engine.search.history import SavedSweep, saved_sweeps
from cnn_lab.engine.search.past import OpenedSweep, open_sweep
from cnn_lab.engine.search.paths import apply
from cnn_lab.engine.search.slots import GpuMemory, plan_slots
from cnn_lab.engine.search.spec import SearchSpec
from cnn_lab.engine.specs import RunSpec
from cnn_lab.engine.store import RunStore
from cnn_lab.engine.store import status as st
from cnn_lab.engine.util.durations import format_duration

RunnerFactory = Callable[[QObject], Any]
"""Makes the runner: a QObject with SweepRunner's signals and start, stop and shutdown."""

CURVE_KEY = "val.accuracy"
"""The stored per-epoch metric drawn for the selected trials."""
RECENT_RUNS = 50
"""How far back the estimate looks for a finished run of the same data and model."""

INTRO = (
    "Vary fields of the current Data, Architecture and Hyperparameters choices. Each trial "
    "is a normal run; running the same sweep again resumes it."
)
TRIALS_STAGE = "Trials"
NO_SWEEP = (
    "No sweep yet",
    "A sweep trains the current recipe several times, each trial with other values for the "
    "fields you vary, to find the values that do best. On the left, pick a field, press Add "
    "parameter and type the values to try (or a range); choose a strategy (grid tries every "
    "combination, random and TPE draw the number of trials you set) and press Launch sweep. "
    "The trials table, the trials' validation curves, parallel coordinates and each "
    "parameter's importance appear here as the trials end.",
)
WAITING = (
    "Waiting for the first trial",
    "Each trial's result appears here when it ends; the bar on the left says how many are "
    "done and how long the rest should take.",
)
NO_TRIALS = (
    "No trial finished",
    "The sweep ended before its first trial did (see the sentence on the left). Launch it "
    "again to resume it.",
)
OPENED_EMPTY = (
    "No trial finished",
    "This sweep has no finished trial yet. If its list entry says unfinished, press Resume "
    "to run its trials.",
)
PAST_HELP = (
    "Every sweep in this database, newest first: launched here, before a restart, or with "
    "`cnn-lab sweep` on a terminal. Unfinished ones stopped before their budget was spent."
)
NO_PAST = "No sweeps in this database yet"
IMPORTANCE_LATER = "Parameter importance appears after three trials."
STRATEGY_HELP = (
    "How the trials' values are chosen. grid: every combination of the values listed (the "
    "count is their product). random: a random draw of them for the number of trials set, "
    "often as good as a grid for far fewer trials. tpe: Optuna's TPE, which draws new trials "
    "near the best so far, and usually finds a good value in the fewest trials."
)


def seconds_per_epoch(store: RunStore, base: RunSpec) -> tuple[float, int] | None:
    """Seconds an epoch took in the newest completed run on the same data and model.

    Returns (seconds, run id), or None when no such run exists: then the estimate says so
    rather than guess. The run's whole duration (data loading included) is divided by its
    epochs, so the estimate errs long, which is the useful side to err on.
    """
    for record in store.list_runs(status=st.COMPLETED, limit=RECENT_RUNS):
        try:
            spec = RunSpec.from_json(record.spec_json)
        except UserError:
            continue
        if spec.dataset != base.dataset or spec.architecture != base.architecture:
            continue
        epochs = len(store.metrics(record.id, CURVE_KEY)) or spec.train.epochs
        if record.duration_s and epochs:
            return record.duration_s / epochs, record.id
    return None


def trial_count(search: SearchSpec) -> int | None:
    """Trials the search will run: its grid, else its budget (None if only timed)."""
    if search.strategy == "grid":
        return min(search.trials or search.grid_size(), search.grid_size())
    return search.trials


def epochs_per_trial(search: SearchSpec) -> float:
    """The mean epochs a trial trains, counting a searched ``train.epochs`` and seed repeats."""
    epochs: float = search.base.train.epochs
    for param in search.params:
        grid = param.grid()
        if param.path == "train.epochs" and grid:
            epochs = fmean(float(e) for e in grid)
    return epochs * search.seeds


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
        self.search: SearchSpec | None = None  # the sweep launched last
        self.free_slots: Callable[[], list[str]] | None = None
        """The job queue's free slots (the window sets it): trials avoid busy GPUs."""
        self._owner: str | None = None  # "sweep NAME" while its slots are held
        self._probed_hash = ""
        self.result: dict[str, Any] | None = None
        self._total: int | None = None

        self.editor = ParamGridEditor()
        self.strategy = QComboBox()
        self.strategy.addItems(["grid", "random", "tpe"])
        self.strategy.setToolTip(STRATEGY_HELP)
        self.pruner = QComboBox()
        self.pruner.addItems(["none", "median", "halving", "hyperband"])
        self.pruner.setToolTip("Stop hopeless trials early (judged on validation each epoch)")
        self.trials = QSpinBox()
        self.trials.setRange(0, 100_000)
        self.trials.setSpecialValueText("whole grid")
        self.trials.setToolTip("How many trials to run; a grid runs all its points at 0")
        self.cpu_too = QCheckBox("Also train one trial on the CPU")
        self.cpu_too.setToolTip(
            "Trials train at once, one per GPU (more when the memory estimate says they "
            "fit). This adds one on the CPU: more trials an hour, but it takes cores from "
            "the GPU trials' data loading. Without a GPU the trials train on the CPU anyway."
        )
        self.where_label = plain_label()
        self.where_label.setStyleSheet(NOTE_STYLE)
        self.saved_box = QComboBox()
        self.saved_box.setToolTip(PAST_HELP)
        self.saved_box.setPlaceholderText(NO_PAST)
        self.saved_box.currentIndexChanged.connect(self._update_saved_buttons)
        self.open_button = QPushButton("Open")
        self.open_button.setToolTip(
            "Show the chosen sweep's trials, curves, parallel coordinates and parameter "
            "importance here, as when it ended (not while a sweep is running)"
        )
        self.open_button.clicked.connect(self.open_saved)
        self.resume_button = QPushButton("Resume")
        self.resume_button.setToolTip(
            "Run the chosen unfinished sweep again: finished trials are kept, cut-off ones "
            "run again"
        )
        self.resume_button.clicked.connect(self.resume_saved)
        self.saved_row = QWidget()
        self._saved: list[SavedSweep] = []
        self._open_task: Task | None = None
        self._sweeping = False  # from launch on: the runner says running only once started
        self.opened: OpenedSweep | None = None
        """The past sweep shown on the right, until a sweep launches or the database changes."""
        self.measure_button = QPushButton("Measure an epoch")
        self.measure_button.setToolTip(
            "Time a few training steps and a validation pass of the current choices on this "
            "machine (seconds), for the sweep's time estimate"
        )
        self.measure_button.clicked.connect(self.measure_epoch)
        self._measured: tuple[str, float, float, str] | None = None
        """(base spec hash, seconds an epoch, seconds to set a run up, device), last probe."""
        self.probe = (probe_factory or TuneRunner)(self)
        self.probe.finished.connect(self._on_measured)
        self.probe.failed.connect(self._on_probe_failed)
        self.probe.cancelled.connect(self._on_probe_cancelled)
        if hasattr(self.probe, "progress"):  # a test's fake probe may have none
            self.probe.progress.connect(self._on_probe_progress)
        self.count_label = plain_label()
        self.count_label.setStyleSheet(NOTE_STYLE)
        self.error = plain_label()
        self.error.setStyleSheet(ERROR_STYLE)
        self.error.setVisible(False)
        self.progress_label = plain_label()
        self.trials_progress = TaskProgress()
        self.measure_progress = TaskProgress()
        self.launch_button = QPushButton("Launch sweep")
        self.launch_button.clicked.connect(self.launch)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setEnabled(False)
        self.stop_button.clicked.connect(self.stop)

        self.table = TrialsTable()
        self.table.runs_selected.connect(self.show_curves)
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
        self.train_best_button.clicked.connect(self.train_best)
        self.report_button = QPushButton("Report…")
        self.report_button.setToolTip(
            "Write this sweep's report: its trials table, parallel coordinates and parameter "
            "importance as HTML or PDF, or the trials as CSV or JSON"
        )
        self.report_button.setEnabled(False)
        self.report_button.clicked.connect(self._choose_report)

        for signal in (
            self.editor.changed,
            self.strategy.currentTextChanged,
            self.pruner.currentTextChanged,
            self.trials.valueChanged,
            self.cpu_too.toggled,
            state.changed,
        ):
            signal.connect(self.refresh_estimate)
        self.runner = (runner_factory or SweepRunner)(self)
        self.runner.trial.connect(self._on_trial)
        self.runner.slots_planned.connect(self._on_slots)
        self.runner.finished.connect(self._on_finished)
        self.runner.failed.connect(self._on_failed)
        self.runner.cancelled.connect(self._on_cancelled)
        state.db_changed.connect(self._on_db_changed)
        self._build_layout()
        self._update_saved_buttons()  # nothing listed until shown (showEvent reads the db)
        self.refresh_estimate()

    def _build_layout(self) -> None:
        settings = QFormLayout()
        settings.addRow("Strategy", self.strategy)
        settings.addRow("Pruner", self.pruner)
        settings.addRow("Trials", self.trials)
        settings.addRow("", self.cpu_too)
        buttons = QHBoxLayout()
        buttons.addWidget(self.launch_button)
        buttons.addWidget(self.stop_button)
        buttons.addStretch(1)
        left = QWidget()
        column = QVBoxLayout(left)
        intro = plain_label(INTRO)
        intro.setStyleSheet(NOTE_STYLE)
        column.addWidget(intro)
        saved = QHBoxLayout(self.saved_row)
        saved.setContentsMargins(0, 0, 0, 0)
        past = QLabel("Past sweeps")
        past.setToolTip(PAST_HELP)
        saved.addWidget(past)
        saved.addWidget(self.saved_box, 1)
        saved.addWidget(self.open_button)
        saved.addWidget(self.resume_button)
        column.addWidget(self.saved_row)
        column.addWidget(self.editor, 1)
        column.addLayout(settings)
        estimate = QHBoxLayout()
        estimate.addWidget(self.count_label, 1)
        estimate.addWidget(self.measure_button, 0, Qt.AlignmentFlag.AlignTop)
        column.addLayout(estimate)
        column.addWidget(self.measure_progress)
        column.addLayout(buttons)
        column.addWidget(self.trials_progress)
        column.addWidget(self.progress_label)
        column.addWidget(self.where_label)
        column.addWidget(self.error)

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
        right = QWidget()
        right_column = QVBoxLayout(right)
        right_column.addWidget(self.results, 1)
        right_column.addWidget(self.empty_state, 1)
        self.empty_state.set_empty(True)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setStretchFactor(0, 5)
        splitter.setStretchFactor(1, 6)
        splitter.setSizes([600, 680])  # the grid's seven columns fit without scrolling
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(splitter)

    # ------------------------------------------------------------------ building

    def build_search(self) -> SearchSpec:
        """The SearchSpec the form describes, over the current choices; UserError if not."""
        base = self.state.run_spec()
        params = self.editor.params(base.model_dump(mode="json"))
        return SearchSpec.from_dict(
            {
                "base": base,
                "params": params,
                "strategy": self.strategy.currentText(),
                "pruner": self.pruner.currentText(),
                "trials": self.trials.value() or None,
            }
        )

    def refresh_estimate(self) -> None:
        """Say how many trials the form makes and about how long they take."""
        try:
            search = self.build_search()
        except UserError as exc:
            self.count_label.setText(exc.message)
            return
        count = trial_count(search)
        if count is None:
            self.count_label.setText("The sweep runs until its time is up.")
            return
        trials = f"{count} trial{'s' if count != 1 else ''}"
        at_once = self._expected_parallel(search)
        per_trial = epochs_per_trial(search) * (search.folds or 1)
        share = f" with {at_once} at once" if at_once > 1 else ""
        upper = " at most (pruning stops some early)" if search.pruner != "none" else ""
        if self._measured is not None and self._measured[0] == search.base.spec_hash():
            _, seconds, setup, device = self._measured
            runs = search.seeds * (search.folds or 1)  # runs per trial, each set up anew
            total = (seconds * per_trial + setup * runs) * count / at_once
            self.count_label.setText(
                f"{trials}, about {format_duration(total, 'rough')}{upper}{share} "
                f"({seconds:.1f} s an epoch and {setup:.1f} s to set a run up, "
                f"measured on {device})."
            )
            return
        try:
            with self.state.open_store() as store:
                measured = seconds_per_epoch(store, search.base)
        except UserError:  # an unreadable store only costs the estimate
            measured = None
        if measured is None:
            self.count_label.setText(f"{trials}; measure an epoch to estimate the time.")
            return
        seconds, run_id = measured
        total = seconds * per_trial * count / at_once
        self.count_label.setText(
            f"{trials}, about {format_duration(total, 'rough')}{upper}{share} "
            f"({seconds:.1f} s an epoch in run {run_id}, same data and model)."
        )

    def _expected_parallel(self, search: SearchSpec) -> int:
        """Trials at once as the child will plan them, at least: one per free GPU (+ CPU).

        The same plan (slots.py) without the memory estimate: the child may pack more onto a
        GPU when the estimate allows; the panel does not load torch to find out, so its
        estimate errs long.
        """
        if self.free_slots is None:
            return 1
        gpus = [
            GpuMemory(int(slot.split(":", 1)[1]), "", 0)
            for slot in self.free_slots()
            if slot.startswith("cuda:")
        ]
        train = search.base.train
        return plan_slots(
            train.device, train.world_size, gpus, None, cpu=self.cpu_too.isChecked()
        ).parallel

    def measure_epoch(self) -> bool:
        """Time an epoch of the current choices in a tuner child (a few steps, seconds)."""
        if self.probe.running:
            return False
        try:
            base = self.build_search().base
        except UserError:
            base = self.state.run_spec()
        self.measure_button.setEnabled(False)
        self.count_label.setText("Measuring an epoch…")
        self.measure_progress.start("Starting")
        self._probed_hash = base.spec_hash()
        self.probe.start("epoch-time", base)
        return True

    def _on_probe_progress(self, stage: str, done: int, total: int) -> None:
        self.measure_progress.update_progress(stage[:1].upper() + stage[1:], done, total)

    def _on_probe_cancelled(self) -> None:
        self.measure_button.setEnabled(True)
        self.measure_progress.finish()

    def _on_measured(self, result: dict[str, Any]) -> None:
        self.measure_button.setEnabled(True)
        self.measure_progress.finish()
        self._measured = (
            self._probed_hash,
            float(result["epoch_s"]),
            float(result.get("setup_s", 0.0)),
            str(result["device"]),
        )
        self.refresh_estimate()

    def _on_probe_failed(self, message: str) -> None:
        self.measure_button.setEnabled(True)
        self.measure_progress.finish()
        self.count_label.setText(f"The epoch could not be measured: {message}")

    # ------------------------------------------------------------------ running

    @property
    def running(self) -> bool:
        return bool(self.runner.running)

    def refresh_saved(self) -> None:
        """List every sweep of the database, newest first, keeping the one chosen if listed.

        Sweeps whose study is not beside the database are listed too: they open from their
        runs, and are never resumed from here.
        """
        chosen = self.chosen_sweep()
        self._saved = saved_sweeps(self.state.db_path, without_study=True)
        names = [s.name for s in self._saved]
        self.saved_box.blockSignals(True)
        self.saved_box.clear()
        self.saved_box.addItems([s.label() for s in self._saved])
        self.saved_box.setCurrentIndex(
            names.index(chosen.name) if chosen and chosen.name in names else (0 if names else -1)
        )
        self.saved_box.blockSignals(False)
        self._update_saved_buttons()

    def chosen_sweep(self) -> SavedSweep | None:
        index = self.saved_box.currentIndex()
        return self._saved[index] if 0 <= index < len(self._saved) else None

    def _update_saved_buttons(self) -> None:
        """Open needs a sweep and a free results side; Resume an unfinished sweep too."""
        chosen = self.chosen_sweep()
        free = not (self._sweeping or self.running) and self._open_task is None
        self.saved_box.setEnabled(bool(self._saved))
        self.open_button.setEnabled(chosen is not None and free)
        self.resume_button.setEnabled(chosen is not None and chosen.unfinished and free)

    def resume_saved(self) -> bool:
        """Resume the unfinished sweep chosen in the list, as it was saved."""
        chosen = self.chosen_sweep()
        if chosen is None or not chosen.unfinished:
            return False
        return self.launch(chosen.search)

    def open_saved(self) -> Task | None:
        """Read the chosen sweep back in the background and show it as if it had just ended.

        Returns the started Task (None when nothing is chosen, a sweep is running, or one is
        being opened already); its ``finished`` carries the ``OpenedSweep`` shown.
        """
        chosen = self.chosen_sweep()
        if chosen is None or self._sweeping or self.running or self._open_task is not None:
            return None
        db_path, name = self.state.db_path, chosen.name
        task = Task(lambda _progress, _stop: open_sweep(db_path, name), "open sweep", self)
        self._open_task = task

        def ended() -> bool:
            """Whether ``task`` is still the one wanted (a launch or a new database drops it)."""
            if self._open_task is not task:
                return False
            self._open_task = None
            self._update_saved_buttons()
            return True

        def shown(opened: OpenedSweep) -> None:
            if ended():
                self._show_opened(opened)

        def failed(message: str) -> None:
            if ended():
                self.progress_label.setText("")
                self._show_error(f"Sweep {name} could not be opened: {message}")

        task.connect_outcomes(finished=shown, failed=failed, cancelled=ended)
        self.error.setVisible(False)
        self.progress_label.setText(f"Opening sweep {name}…")
        self._update_saved_buttons()
        return task.start()

    def _drop_open_task(self) -> None:
        if self._open_task is not None:
            task, self._open_task = self._open_task, None
            task.cancel()
            self.progress_label.setText("")

    def _show_opened(self, opened: OpenedSweep) -> None:
        """Fill the results side with a past sweep, replacing whatever it showed."""
        self._clear_results()
        self.search, self.opened = opened.search, opened
        self._show_result(opened.result)
        done = len(self.table.outcomes)
        self.progress_label.setText(
            f"Sweep {opened.name}: {done} trial{'s' if done != 1 else ''}, read from the database."
        )
        self.where_label.setText(opened.note)
        if opened.note:
            self.importance.setText("Parameter importance needs the sweep's study.")

    def _clear_results(self) -> None:
        """Empty the results side (before a launch, an opened sweep, or another database)."""
        self.search = self.result = self.opened = None
        self.error.setVisible(False)
        self.table.clear_trials()
        self.curves.clear()
        self.parallel.set_trials([], metric=CURVE_KEY, maximise=True)
        self.importance.setText(IMPORTANCE_LATER)
        self.importance.setStyleSheet("")
        self.train_best_button.setEnabled(False)
        self.report_button.setEnabled(False)
        self.best_label.setText("")
        self.progress_label.setText("")
        self.where_label.setText("")
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

    def launch(self, search: SearchSpec | None = None) -> bool:
        """Start ``search`` (default: the one the form describes); False and a sentence if not."""
        if self.running:
            return False
        try:
            search = search or self.build_search()
            if search.strategy == "grid":
                search.check_grid()
        except UserError as exc:
            self._show_error(str(exc))
            return False
        self._drop_open_task()
        self._clear_results()
        self.search, self._total = search, trial_count(search)
        self.parallel.set_trials([], metric=search.metric, maximise=search.maximise)
        self._set_running(True)
        self.trials_progress.start(TRIALS_STAGE)
        self._show_progress()
        self.where_label.setText("")
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
        if self.table.outcomes:
            self.empty_state.set_empty(False)
            return
        if self.running:
            self.empty_state.set_message(*WAITING)
        elif self.opened is not None:
            self.empty_state.set_message(*OPENED_EMPTY)
        elif self.search is not None:
            self.empty_state.set_message(*NO_TRIALS)
        else:
            self.empty_state.set_message(*NO_SWEEP)
        self.empty_state.set_empty(True)

    def _set_running(self, running: bool) -> None:
        self._sweeping = running
        if not running:
            self.trials_progress.finish()
        self.launch_button.setEnabled(not running)
        self.stop_button.setEnabled(running)
        self.editor.setEnabled(not running)
        self.cpu_too.setEnabled(not running)
        self._update_saved_buttons()
        if not running and self._owner is not None:
            owner, self._owner = self._owner, None
            self.slots_released.emit(owner)
        self._update_empty_state()

    def _on_slots(self, slots: list[str], words: str) -> None:
        """The child planned where trials train: say so, and keep those slots from the queue."""
        self.where_label.setText(f"Trials train {words}.")
        if self.search is not None:
            self._owner = f"sweep {self.search.study_name()}"
            self.slots_taken.emit(self._owner, slots)

    def _show_progress(self) -> None:
        """Trials done of the budget with the time left on the bar; a budget in time only
        has no count to go by, so its bar stays busy and the label counts what is done."""
        done = len(self.table.outcomes)
        self.trials_progress.update_progress(TRIALS_STAGE, done, self._total or 0)
        self.progress_label.setText("" if self._total else f"{done} trials finished.")

    def _show_error(self, text: str) -> None:
        self.error.setText(text)
        self.error.setVisible(True)

    def _on_trial(self, outcome: dict[str, Any]) -> None:
        self.table.add_outcome(outcome)
        self._show_progress()
        self._update_empty_state()
        self._draw_summary(list(self.table.outcomes.values()))

    def _on_finished(self, result: dict[str, Any]) -> None:
        self._set_running(False)
        self._show_result(result)
        done = len(self.table.outcomes)
        if result.get("stopped"):
            self.progress_label.setText(
                f"Stopped after {done} trials; launch the same sweep again to resume it."
            )
        else:
            self.progress_label.setText(f"Done: {done} trials.")
        self.refresh_saved()
        self.sweep_ended.emit("finished")

    def _show_result(self, result: dict[str, Any]) -> None:
        """Show a sweep's end (the child's result dict, or one read back from the database)."""
        self.result = result
        self.table.set_outcomes(result.get("trials", []))
        self._update_empty_state()
        self._draw_summary(result.get("trials", []))
        self._show_importance(result.get("importance") or {})
        best = result.get("best_value")
        run = result.get("best_run_id")
        self.best_label.setText(
            ""
            if best is None
            else f"Best: trial {result['best_trial']}, {result['metric']} {best:.4f}"
            + (f" (run {run})." if run is not None else ".")
        )
        self.train_best_button.setEnabled(bool(result.get("best_params")))
        self.report_button.setEnabled(bool(self.table.outcomes))

    def _choose_report(self) -> None:
        if self.search is None:
            return
        name = self.search.study_name()
        chosen = ask_report_path(self, f"Report of sweep {name}", f"{name}-report.html")
        if chosen:
            self.export_report(*chosen)

    def export_report(self, path: str, fmt: str | None = None) -> Any:
        """Write the last sweep's report in the background; its sentence shows under the best."""
        if self.search is None:
            return None
        task = report_task(
            self.state.db_path, path, sweep=self.search.study_name(), fmt=fmt, parent=self
        )
        self.report_button.setEnabled(False)
        self.best_label.setText("Writing the sweep's report…")

        def done(ok: bool, message: str) -> None:
            self.report_button.setEnabled(True)
            self.best_label.setText(message if ok else f"The report was not written: {message}")

        task.connect_outcomes(
            finished=lambda message: done(True, message),
            failed=lambda message: done(False, message),
        )
        return task.start()

    def _on_failed(self, message: str) -> None:
        self._set_running(False)
        self.progress_label.setText("")
        self._show_error(message)
        self.sweep_ended.emit("failed")

    def _on_cancelled(self) -> None:
        self._set_running(False)
        self.progress_label.setText("Stopped; launch the same sweep again to resume it.")
        self.refresh_saved()
        self.sweep_ended.emit("cancelled")

    # ------------------------------------------------------------------ results

    def _draw_summary(self, outcomes: list[dict[str, Any]]) -> None:
        if self.search is not None:
            self.parallel.set_trials(
                outcomes,
                metric=self.search.metric,
                maximise=self.search.maximise,
                paths=[p.path for p in self.search.params],
            )

    def _show_importance(self, importance: dict[str, float]) -> None:
        if not importance:
            self.importance.setText("Parameter importance needs three or more finished trials.")
            return
        lines = [
            f"{path:<28} {'█' * max(1, round(share * 30))} {share:.0%}"
            for path, share in sorted(importance.items(), key=lambda kv: -kv[1])
        ]
        self.importance.setText("How much each parameter moved the value:\n\n" + "\n".join(lines))
        self.importance.setStyleSheet("font-family: monospace;")

    def show_curves(self, run_ids: list[int]) -> None:
        """Draw the stored validation accuracy, per epoch, of the selected trials' runs."""
        self.curves.clear()
        with self.state.open_store() as store:
            for run_id in run_ids:
                points = store.metrics(run_id, CURVE_KEY)
                name = f"run {run_id}"
                self.curves.add_curve(name, markers=True)
                self.curves.set(name, [p.epoch for p in points], [p.value for p in points])

    def train_best(self) -> RunSpec | None:
        """Put the best trial into the recipe on all the data, and ask the window to train it."""
        if self.search is None or not self.result or not self.result.get("best_params"):
            return None
        spec = apply(self.search.base, self.result["best_params"])
        dataset = spec.dataset.model_copy(update={"limit": None, "folds": None, "fold": 0})
        self.state.update(dataset=dataset, architecture=spec.architecture, train=spec.train)
        shown = ", ".join(f"{k}={v}" for k, v in self.result["best_params"].items())
        self.progress_label.setText(f"Training {shown} on all the data.")
        self.train_requested.emit()
        return spec.model_copy(update={"dataset": dataset})


if __name__ == "__main__":
    from cnn_lab.app.panels._standalone import run_standalone

    sys.exit(run_standalone(SweepPanel))
