"""The main window: the panels as tabs, Train and Stop, the Jobs dock, and a status bar.

Train queues a run (engine/jobs/queue.py decides when and where it trains); the Jobs dock
shows what runs where and what waits. The Monitor follows one live run at a time: the one
started by Train when it starts at once, else the next to start while it shows none.

Around the panels: the menus (app/window_menus.py), the first-run card and the guided tour
(app/welcome.py), settings kept between launches (app/settings.py), the themes
(app/theme.py), Edit ▸ Undo over the editing panels' undo stacks, drops of datasets, specs
and databases anywhere on the window, and a notification when a long job ends.
"""

from __future__ import annotations

import time
from typing import Any

from pydantic import ValidationError
from PySide6.QtCore import QSize, Qt, QTimer
from PySide6.QtGui import (
    QAction,
    QActionGroup,
    QCloseEvent,
    QGuiApplication,
    QKeySequence,
    QUndoGroup,
)
from PySide6.QtWidgets import (
    QDockWidget,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QTabWidget,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from cnn_lab.app.about_dialog import AboutDialog
from cnn_lab.app.bridge.job_controller import JobController
from cnn_lab.app.close_question import process_alive, question_for_closing
from cnn_lab.app.notifier import JobNotifier
from cnn_lab.app.panels.architecture_panel import ArchitecturePanel
from cnn_lab.app.panels.compare_panel import ComparePanel
from cnn_lab.app.panels.data_panel import DataPanel
from cnn_lab.app.panels.evaluation_panel import EvaluationPanel
from cnn_lab.app.panels.hyperparameters_panel import HyperparametersPanel
from cnn_lab.app.panels.monitor_panel import MonitorPanel
from cnn_lab.app.panels.predict_panel import PredictPanel
from cnn_lab.app.panels.runs_panel import RunsPanel
from cnn_lab.app.panels.sweep_panel import SweepPanel
from cnn_lab.app.panels.tune_panel import TunePanel
from cnn_lab.app.settings import (
    GEOMETRY_KEY,
    PANEL_KEY,
    WELCOME_DISMISSED_KEY,
    WINDOW_STATE_KEY,
    Settings,
)
from cnn_lab.app.state import AppState
from cnn_lab.app.theme import SYSTEM, apply_theme
from cnn_lab.app.welcome import DEFAULT_PRESET, DEFAULT_SAMPLE, TourBar, WelcomeCard
from cnn_lab.app.widgets.job_queue_view import JobQueueView, format_eta, summary_text
from cnn_lab.app.window_files import WindowFiles
from cnn_lab.app.window_menus import build_menus, shortcut_rows
from cnn_lab.engine import __version__
from cnn_lab.engine.errors import UserError
from cnn_lab.engine.specs import ArchitectureSpec, RunSpec, TrainSpec
from cnn_lab.engine.store import RunStore
from cnn_lab.engine.store import status as st

__all__ = ["MainWindow", "format_eta"]

JOBS_PROGRESS_INTERVAL_S = 1.0
"""How often the Jobs dock redraws progress while runs train."""
JOBS_DOCK_HEIGHT = 170
"""The Jobs dock's height while jobs run or wait (empty, it is one line)."""
FRAME_ALLOWANCE = 32
"""Pixels kept for a title bar when the window's frame is not known yet."""
PREFERRED_SIZE = (1280, 800)
"""The size a first launch asks for; fit_to_screen keeps it inside the screen."""


class MainWindow(WindowFiles, QMainWindow):
    def __init__(
        self,
        state: AppState,
        parent: QWidget | None = None,
        *,
        controller: JobController | None = None,
        settings: Settings | None = None,
    ) -> None:
        """``controller`` lets tests give the window fake job slots or workers; ``settings``
        defaults to the user's settings file (tests point its folder at tmp_path)."""
        super().__init__(parent)
        self.state = state
        self.settings = settings or Settings()
        self.menu_actions: dict[str, QAction] = {}
        self.theme_group: QActionGroup | None = None
        self.theme = SYSTEM
        self._sweep_owner = "sweep"
        self.keep_settings = True  # False: closing leaves the settings file as it was
        self.setWindowTitle(f"cnn-lab {__version__}")
        self.setAcceptDrops(True)
        self.controller = controller or JobController(state.db_path)
        self.controller.setParent(self)
        self._focus_next_start = False
        self._jobs_refreshed_at = 0.0

        self.data_panel = DataPanel(state)
        self.architecture_panel = ArchitecturePanel(state)
        self.hyperparameters_panel = HyperparametersPanel(state)
        self.tune_panel = TunePanel(state)
        self.sweep_panel = SweepPanel(state)
        self.monitor_panel = MonitorPanel(state)
        self.runs_panel = RunsPanel(state)
        self.compare_panel = ComparePanel(state)
        self.evaluation_panel = EvaluationPanel(state)
        self.predict_panel = PredictPanel(state)
        self.panels: dict[str, QWidget] = {
            "data": self.data_panel,
            "architecture": self.architecture_panel,
            "hyperparameters": self.hyperparameters_panel,
            "tune": self.tune_panel,
            "sweep": self.sweep_panel,
            "monitor": self.monitor_panel,
            "runs": self.runs_panel,
            "compare": self.compare_panel,
            "evaluate": self.evaluation_panel,
            "predict": self.predict_panel,
        }
        self.tabs = QTabWidget()
        for panel in self.panels.values():
            self.tabs.addTab(panel, panel.title)
        # Edit ▸ Undo acts on the undo stack of the panel in front (those that edit have one).
        self.undo_group = QUndoGroup(self)
        for panel in self.panels.values():
            stack = getattr(panel, "undo_stack", None)
            if stack is not None:
                self.undo_group.addStack(stack)
        self.tabs.currentChanged.connect(self._on_tab_changed)
        self.welcome = WelcomeCard()
        self.tour = TourBar()
        central = QWidget()
        column = QVBoxLayout(central)
        column.setContentsMargins(4, 4, 4, 0)
        column.addWidget(self.welcome)
        column.addWidget(self.tour)
        column.addWidget(self.tabs, 1)
        self.setCentralWidget(central)
        self.notifier = JobNotifier(self)
        self.monitor_panel.empty_state.add_action(
            "Train", self.train, "Train the current data, architecture and hyperparameters"
        )

        self._build_jobs_dock()
        self._build_actions()
        self._build_status_bar()
        self.welcome.train_requested.connect(self.train_sample)
        self.welcome.import_requested.connect(self.choose_dataset_folder)
        self.welcome.tour_requested.connect(self.start_tour)
        self.welcome.hide_requested.connect(self.dismiss_welcome)
        self.tour.step_shown.connect(self.show_panel)
        self.tour.ended.connect(self._update_welcome)
        self.notifier.notified.connect(lambda _title, text: self.status_label.setText(text))
        self.sweep_panel.slots_taken.connect(self._on_sweep_started)
        self.sweep_panel.sweep_ended.connect(self._on_sweep_ended)
        self.tune_panel.tuner_started.connect(lambda kind: self.notifier.started(f"tuner {kind}"))
        self.tune_panel.tuner_ended.connect(
            lambda kind, outcome: self.notifier.ended(
                f"tuner {kind}", f"Tuner {outcome}", f"The {kind} tuner {outcome}: see Tune."
            )
        )
        self.state.db_changed.connect(lambda _path: self._update_welcome())
        self.controller.run_started.connect(self._on_run_started)
        self.controller.events.connect(self._on_events)
        self.controller.events.connect(self.monitor_panel.on_events)
        self.controller.run_finished.connect(self._on_run_finished)
        self.controller.busy_changed.connect(self._on_busy_changed)
        self.controller.store_busy.connect(self._on_store_busy)
        self.controller.queue_changed.connect(self._on_queue_changed)
        self.controller.events.connect(self._refresh_jobs_progress)
        self.runs_panel.run_selected.connect(self._show_run_in_monitor)
        self.monitor_panel.apply_recommendation.connect(self.apply_recommendation)
        self.sweep_panel.train_requested.connect(self.train)
        # A sweep's trials train outside the job queue, on slots the queue then keeps free.
        self.sweep_panel.free_slots = self.controller.free_slots
        self.sweep_panel.slots_taken.connect(self.controller.hold)
        self.sweep_panel.slots_released.connect(self.controller.release)
        self.runs_panel.resume_requested.connect(self.resume)
        self.runs_panel.compare_requested.connect(self.compare)
        # Evaluate and Predict act on the run selected in Runs.
        self.runs_panel.run_selected.connect(self.evaluation_panel.set_run)
        self.runs_panel.run_selected.connect(self.predict_panel.set_run)
        self.evaluation_panel.set_run(self.runs_panel.selected_run_id())
        self.predict_panel.set_run(self.runs_panel.selected_run_id())
        self.runs_panel.runs_deleted.connect(self._forget_runs)
        self.jobs_view.move_requested.connect(self.controller.move)
        self.jobs_view.priority_requested.connect(self.controller.set_priority)
        self.jobs_view.cancel_requested.connect(self._cancel)
        self.jobs_view.stop_requested.connect(self.controller.stop)
        self._show_latest_run()
        self._on_tab_changed(self.tabs.currentIndex())
        self.restore_settings()
        self._update_welcome()

    # ----------------------------------------------------------------- building

    def _build_jobs_dock(self) -> None:
        self.jobs_view = JobQueueView()
        self.jobs_dock = QDockWidget("Jobs", self)
        self.jobs_dock.setObjectName("jobs-dock")
        self.jobs_dock.setWidget(self.jobs_view)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.jobs_dock)
        # Empty, the view is one line; when jobs queue it grows to a few rows (the panels keep
        # most of the height).
        self.jobs_view.collapsed_changed.connect(self._fit_jobs_dock)

    def _fit_jobs_dock(self, empty: bool) -> None:
        if not empty and not self.jobs_dock.isFloating():
            # After the layout has taken in the view's lifted maximum height.
            QTimer.singleShot(0, self._grow_jobs_dock)

    def _grow_jobs_dock(self) -> None:
        if not self.jobs_view.collapsed and not self.jobs_dock.isFloating():
            self.resizeDocks([self.jobs_dock], [JOBS_DOCK_HEIGHT], Qt.Orientation.Vertical)

    def _build_actions(self) -> None:
        self.train_action = QAction("Train", self)
        self.train_action.setShortcut(QKeySequence("Ctrl+Return"))
        self.train_action.setToolTip("Train the current data, architecture and hyperparameters")
        self.train_action.triggered.connect(self.train)
        self.stop_action = QAction("Stop", self)
        self.stop_action.setShortcut(QKeySequence("Ctrl+."))
        self.stop_action.setToolTip(
            "Stop the run the Monitor shows: finish its step, record it and stop "
            "(the queue goes on)"
        )
        self.stop_action.setEnabled(False)
        self.stop_action.triggered.connect(self.stop)
        self.stop_all_action = QAction("Stop All and Clear Queue", self)
        self.stop_all_action.setShortcut(QKeySequence("Ctrl+Shift+."))
        self.stop_all_action.setEnabled(False)
        self.stop_all_action.triggered.connect(self.stop_all)
        build_menus(self)

        toolbar = QToolBar("Training")
        toolbar.setObjectName("training-toolbar")
        toolbar.setMovable(False)
        toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        toolbar.addAction(self.train_action)
        toolbar.addAction(self.stop_action)
        self.addToolBar(toolbar)

    def _build_status_bar(self) -> None:
        self.status_label = QLabel("Ready.")
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setMaximumWidth(260)
        self.progress.setFormat("%p%")
        self.progress.setVisible(False)
        self.eta_label = QLabel("")
        self.jobs_label = QLabel("")
        self.jobs_label.setToolTip("Runs training now and runs waiting for a slot (View ▸ Jobs)")
        self.retry_button = QPushButton()
        self.retry_button.setVisible(False)
        self.retry_button.clicked.connect(self.retry_with_suggested_batch)
        self._retry: tuple[int, int] | None = None  # (run id, batch size that fits)
        bar = self.statusBar()
        bar.addWidget(self.status_label, 1)
        # Its own label: the status line goes on showing steps while saving waits.
        self.store_busy_label = QLabel("")
        self.store_busy_label.setStyleSheet("color: #b35900;")
        self.store_busy_label.setVisible(False)
        self._store_waits: list[int] = []
        bar.addWidget(self.store_busy_label)
        bar.addPermanentWidget(self.retry_button)
        bar.addPermanentWidget(self.jobs_label)
        bar.addPermanentWidget(self.eta_label)
        bar.addPermanentWidget(self.progress)

    # ----------------------------------------------------------------- actions

    def apply_recommendation(self, changes: dict[str, Any]) -> bool:
        """Put a verdict card's recommendation into the recipe (the next run uses it)."""
        fields = ", ".join(f"{k} = {v}" for k, v in changes.items())
        try:
            train = TrainSpec.model_validate({**self.state.train.model_dump(), **changes})
        except ValidationError as exc:
            self.status_label.setText(f"Cannot set {fields}: {exc.errors()[0]['msg']}.")
            return False
        self.state.update(train=train)
        self.status_label.setText(f"Set {fields} for the next run (Hyperparameters panel).")
        return True

    def train(self) -> int | None:
        """Queue a run with the current choices; returns its id (None if refused).

        A run that starts at once takes the Monitor; one that waits says so in the status bar.
        """
        self._focus_next_start = True
        try:
            run_id = self.controller.start(self.state.run_spec())
        except UserError as exc:
            QMessageBox.warning(self, "Cannot train", str(exc))
            return None
        finally:
            self._focus_next_start = False
        if run_id in self.controller.queued_ids():
            self.status_label.setText(f"Run {run_id} queued: {self._waiting_for(run_id)}.")
            self.runs_panel.refresh()
        return run_id

    def resume(self, run_id: int) -> None:
        """Queue a stopped run to continue from its last checkpoint; like Train, it takes the
        Monitor if it starts at once."""
        self._focus_next_start = True
        try:
            self.controller.resume(run_id)
        except UserError as exc:
            QMessageBox.warning(self, "Cannot resume", str(exc))
            return
        finally:
            self._focus_next_start = False
        self.runs_panel.refresh()  # the run shows as queued (or running) at once
        if run_id in self.controller.queued_ids():
            self.status_label.setText(f"Run {run_id} queued to resume.")

    def compare(self, run_ids: list[int]) -> None:
        """Show these runs side by side in Compare."""
        self.compare_panel.show_runs(run_ids)
        self.tabs.setCurrentWidget(self.compare_panel)

    def _forget_runs(self, run_ids: list[int]) -> None:
        """Deleted runs leave every panel that showed them."""
        gone = set(run_ids)
        if gone & set(self.compare_panel.run_ids()):
            self.compare_panel.show_runs([i for i in self.compare_panel.run_ids() if i not in gone])
        for panel in (self.evaluation_panel, self.predict_panel):
            if panel.run_id in gone:
                panel.set_run(None)
        if self.monitor_panel.run_id in gone and not self._monitor_is_live():
            self._show_latest_run()

    def stop(self) -> None:
        """Stop the run the Monitor shows (every running run if it shows none)."""
        running = self.controller.running_ids()
        watched = self.monitor_panel.run_id
        for run_id in [watched] if watched in running else running:
            self.controller.stop(run_id)
        self.status_label.setText("Stopping…")

    def stop_all(self) -> None:
        """Cancel every queued run and stop every running one."""
        self.controller.stop()
        self.status_label.setText("Stopping every run…")

    def _cancel(self, run_id: int) -> None:
        try:
            cancelled = self.controller.cancel(run_id)
        except UserError as exc:  # the store stayed locked: say so, the run stays queued
            self.status_label.setText(str(exc))
            return
        if cancelled:
            self.status_label.setText(f"Run {run_id} cancelled before it started.")

    def _waiting_for(self, run_id: int) -> str:
        row = next((r for r in self.controller.jobs() if r.run_id == run_id), None)
        return row.where if row else "waiting"

    def show_panel(self, key: str) -> None:
        """Bring panel ``key`` (a key of ``panels``) to the front."""
        panel = self.panels.get(key)
        if panel is not None:
            self.tabs.setCurrentWidget(panel)

    def current_panel_key(self) -> str:
        current = self.tabs.currentWidget()
        return next((k for k, p in self.panels.items() if p is current), "data")

    def _on_tab_changed(self, _index: int) -> None:
        stack = getattr(self.tabs.currentWidget(), "undo_stack", None)
        self.undo_group.setActiveStack(stack)

    def start_tour(self) -> None:
        """The tour takes the card's place above the panels until it ends."""
        self.welcome.setVisible(False)
        self.tour.start()

    def show_welcome(self) -> None:
        """Help ▸ Welcome: the first-run card again, whatever the database holds."""
        self.settings.set_flag(WELCOME_DISMISSED_KEY, False)
        self.welcome.setVisible(True)

    def dismiss_welcome(self) -> None:
        self.settings.set_flag(WELCOME_DISMISSED_KEY, True)
        self.welcome.setVisible(False)

    def _update_welcome(self) -> None:
        """The card shows while the database has no runs, unless the person hid it."""
        if self.settings.flag(WELCOME_DISMISSED_KEY) or self.controller.busy:
            self.welcome.setVisible(False)
            return
        try:
            with self.state.open_store() as store:
                empty = not store.list_runs(limit=1)
        except UserError:
            empty = False
        self.welcome.setVisible(empty)

    def train_sample(
        self, sample: str = DEFAULT_SAMPLE, preset: str = DEFAULT_PRESET
    ) -> int | None:
        """The first-run click: the sample in Data, the preset in Architecture, then Train.

        The hyperparameters stay as they are (the defaults train the sample in about a minute
        on a CPU); the run is an ordinary run, saved and shown like any other.
        """
        self.data_panel.open_source(f"sample:{sample}")
        if self.state.architecture.preset != preset or self.state.architecture.layers:
            self.state.update(architecture=ArchitectureSpec(preset=preset))
        previous = self.state.name
        self.state.name = previous or f"{sample} {preset}"  # this run's name, not the next's
        try:
            return self.train()
        finally:
            self.state.name = previous

    # ----------------------------------------------------------------- view

    def set_theme(self, name: str) -> None:
        """Light, dark or the desktop's; kept for the next launch."""
        self.theme = apply_theme(name)
        self.settings.theme = self.theme
        self._check_theme_action()

    def _check_theme_action(self) -> None:
        if self.theme_group is not None:
            for action in self.theme_group.actions():
                action.setChecked(action.data() == self.theme)

    def toggle_full_screen(self) -> None:
        self.setWindowState(self.windowState() ^ Qt.WindowState.WindowFullScreen)

    def reset_layout(self) -> None:
        self.jobs_dock.setFloating(False)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.jobs_dock)
        self.jobs_dock.setVisible(True)
        self.resizeDocks([self.jobs_dock], [JOBS_DOCK_HEIGHT], Qt.Orientation.Vertical)
        self._restored_size = False
        self.fit_to_screen()

    def find_runs(self) -> None:
        self.show_panel("runs")
        self.runs_panel.search.setFocus()
        self.runs_panel.search.selectAll()

    def show_shortcuts(self) -> None:
        rows = "".join(f"<tr><td>{what}</td><td><b>{keys}</b></td></tr>" for what, keys in
                       shortcut_rows(self))  # fmt: skip
        box = QMessageBox(self)
        box.setWindowTitle("Keyboard shortcuts")
        box.setText(f"<table cellspacing=4>{rows}</table>")
        box.setModal(False)
        box.show()

    def show_about(self) -> AboutDialog:
        dialog = AboutDialog(self.state.db_path, str(self.settings.path), self)
        dialog.setModal(False)
        dialog.show()
        return dialog

    # ----------------------------------------------------------------- settings

    def restore_settings(self) -> None:
        """Window size and place, the Jobs dock, the panel in front and the theme, as last left."""
        geometry = self.settings.bytes(GEOMETRY_KEY)
        self._restored_size = geometry is not None and self.restoreGeometry(geometry)
        state = self.settings.bytes(WINDOW_STATE_KEY)
        if state is not None:
            self.restoreState(state)
        self.show_panel(self.settings.text(PANEL_KEY, "data"))
        theme = self.settings.theme
        if theme != SYSTEM:  # the desktop's look needs nothing done
            self.theme = apply_theme(theme)
        self._check_theme_action()

    def fit_to_screen(self) -> None:
        """Open at the size last left (else PREFERRED_SIZE), never larger than the screen's
        available area (a 1366 x 768 laptop keeps its status bar), and placed inside it."""
        screen = self.screen() or QGuiApplication.primaryScreen()
        if screen is None:
            return
        area = screen.availableGeometry()
        frame = self.frameGeometry().size() - self.geometry().size()
        if not self.isVisible() or frame.height() <= 0:
            frame = QSize(0, FRAME_ALLOWANCE)  # the title bar is unknown until shown
        wanted = self.size() if self._restored_size else QSize(*PREFERRED_SIZE)
        width = min(wanted.width(), area.width() - frame.width())
        height = min(wanted.height(), area.height() - frame.height())
        self.resize(max(width, self.minimumSizeHint().width()), height)
        place = self.frameGeometry()
        last_left = max(area.right() - place.width() + 1, area.left())
        last_top = max(area.bottom() - place.height() + 1, area.top())
        left = min(max(place.left(), area.left()), last_left)
        top = min(max(place.top(), area.top()), last_top)
        if (left, top) != (place.left(), place.top()):
            self.move(left, top)

    def save_settings(self) -> None:
        if not self.keep_settings:
            return
        self.settings.set_bytes(GEOMETRY_KEY, self.saveGeometry())
        self.settings.set_bytes(WINDOW_STATE_KEY, self.saveState())
        self.settings.set_text(PANEL_KEY, self.current_panel_key())
        self.settings.theme = self.theme
        self.settings.remember_database(self.state.db_path)
        self.settings.sync()

    def _on_sweep_started(self, owner: str, _slots: list[str]) -> None:
        self._sweep_owner = owner
        self.notifier.started(owner)

    def _on_sweep_ended(self, outcome: str) -> None:
        owner = self._sweep_owner
        self.notifier.ended(owner, f"Sweep {outcome}", f"The {owner} {outcome}: see Sweep.")

    # ----------------------------------------------------------------- job signals

    def _on_run_started(self, run_id: int) -> None:
        self.notifier.started(f"run {run_id}")
        self.welcome.setVisible(False)  # the first run is on its way: the card has done its job
        self.runs_panel.refresh()
        if not self._focus_next_start and self._monitor_is_live():
            return  # the Monitor keeps following the run it shows
        self.monitor_panel.begin(run_id)
        if self._focus_next_start:
            self.tabs.setCurrentWidget(self.monitor_panel)
        self.status_label.setText(f"Run {run_id}: starting the training process…")
        self.progress.setValue(0)
        self.progress.setVisible(True)
        self.eta_label.setText("")

    def _monitor_is_live(self) -> bool:
        return self.monitor_panel.run_id in self.controller.running_ids()

    def _on_events(self, run_id: int, events: list[Any]) -> None:
        if run_id != self.monitor_panel.run_id:
            return  # the status bar follows the Monitor's run; the Jobs dock shows the rest
        for event in reversed(events):
            if getattr(event, "kind", "") == "step":
                self.progress.setValue(int(event.progress * 1000))
                self.eta_label.setText(f"ETA {format_eta(event.eta_s)}")
                self.status_label.setText(
                    f"Run {run_id}: epoch {event.epoch}, step {event.step}, "
                    f"loss {event.loss:.4f}, {event.images_per_s:,.0f} images/s"
                )
                break

    def _on_run_finished(self, run_id: int, status: str, reason: str) -> None:
        self.monitor_panel.finish(run_id, status, reason)
        if run_id == self.monitor_panel.run_id:
            self.progress.setVisible(False)
            self.eta_label.setText("")
        self.status_label.setText(f"Run {run_id} {status}." + (f" {reason}" if reason else ""))
        self.notifier.ended(
            f"run {run_id}", f"Run {run_id} {status}", f"Run {run_id} {status}. {reason}".strip()
        )
        self.runs_panel.refresh()
        self.runs_panel.select_run(run_id)
        self._offer_retry(run_id, status)

    def _offer_retry(self, run_id: int, status: str) -> None:
        """After an out-of-memory failure, one click retries with the batch size that fits."""
        fits = None
        if status == st.FAILED:
            with RunStore.open(self.state.db_path) as store:
                fits = store.get_run(run_id).summary.get("suggested_batch_size")
        self._retry = (run_id, int(fits)) if fits else None
        self.retry_button.setVisible(self._retry is not None)
        if self._retry is not None:
            self.retry_button.setText(f"Retry run {run_id} with batch {fits}")

    def retry_with_suggested_batch(self) -> int | None:
        """Queue the failed run's spec again with the batch that fits, keeping the effective
        batch through gradient accumulation; the Hyperparameters panel shows the change."""
        if self._retry is None:
            return None
        run_id, fits = self._retry
        with RunStore.open(self.state.db_path) as store:
            spec = RunSpec.from_json(store.get_run(run_id).spec_json)
        t = spec.train
        accumulation = max(1, -(-t.effective_batch // fits))
        train = t.model_copy(update={"batch_size": fits, "grad_accumulation": accumulation})
        self.state.update(train=train)
        self._retry = None
        self.retry_button.setVisible(False)
        return self.controller.start(spec.model_copy(update={"train": train}))

    def _on_store_busy(self, run_id: int, waiting: bool) -> None:
        """Say which runs cannot save while another program holds the run store's lock."""
        if waiting and run_id not in self._store_waits:
            self._store_waits.append(run_id)
        elif not waiting and run_id in self._store_waits:
            self._store_waits.remove(run_id)
        runs = self._store_waits
        self.store_busy_label.setVisible(bool(runs))
        if not runs:
            return
        names = (
            f"run {runs[0]} waits"
            if len(runs) == 1
            else f"runs {', '.join(map(str, runs[:-1]))} and {runs[-1]} wait"
        )
        self.store_busy_label.setText(
            f"The run store is busy (another program is writing to it); {names} to save…"
        )

    def _on_busy_changed(self, busy: bool) -> None:
        self.stop_all_action.setEnabled(busy)
        self._sync_stop()

    def _sync_stop(self) -> None:
        self.stop_action.setEnabled(bool(self.controller.running_ids()))

    def _on_queue_changed(self) -> None:
        self.jobs_view.set_rows(self.controller.jobs())
        running = len(self.controller.running_ids())
        self.jobs_label.setText(
            summary_text(running, len(self.controller.queued_ids()), self.controller.holds())
        )
        self._sync_stop()

    def _refresh_jobs_progress(self, run_id: int, events: list[Any]) -> None:
        # About once a second is enough for a progress column, and Qt calls are not free:
        # PySide6 6.12.0 drops a reference to None on each void call, and enough of them
        # abort the process (none_dealloc).
        now = time.monotonic()
        if now - self._jobs_refreshed_at < JOBS_PROGRESS_INTERVAL_S:
            return
        progressed = any(getattr(e, "kind", "") in ("step", "preparing") for e in events)
        if self.jobs_dock.isVisible() and progressed:
            self._jobs_refreshed_at = now
            self.jobs_view.set_rows(self.controller.jobs())

    def _show_latest_run(self) -> None:
        try:
            with self.state.open_store() as store:
                latest = store.list_runs(limit=1)
                if latest:
                    self.monitor_panel.show_stored_run(latest[0], store)
                else:  # the last runs were deleted, or another database has none
                    self.monitor_panel.show_nothing()
        except UserError as exc:  # a locked or damaged store: a sentence, not a traceback
            self.status_label.setText(str(exc))

    def _show_run_in_monitor(self, run_id: int) -> None:
        if self._monitor_is_live():
            return  # the monitor belongs to the live run
        try:
            with self.state.open_store() as store:
                self.monitor_panel.show_stored_run(store.get_run(run_id), store)
        except UserError as exc:
            self.status_label.setText(str(exc))

    def close_question(self) -> str | None:
        """What closing now would stop, as a question; None when nothing runs or waits.

        A run counts while its process lives (or is about to start): once the window has
        stopped the jobs it is closing anyway, and there is nothing left to ask about.
        """
        running = {
            run_id: slot
            for run_id, slot in self.controller.assignments().items()
            if process_alive(self.controller.child_pid(run_id))
        }
        return question_for_closing(
            running,
            len(self.controller.queued_ids()),
            sweep=self.sweep_panel.running,
            tuner=self.tune_panel.running,
        )

    def confirm_close(self, question: str) -> bool:
        """Ask ``question``; True to stop everything and close (tests answer it instead)."""
        answer = QMessageBox.question(
            self,
            "Close cnn-lab?",
            question,
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Cancel,
        )
        return answer == QMessageBox.StandardButton.Yes

    def closeEvent(self, event: QCloseEvent) -> None:
        question = self.close_question()
        if question is not None and not self.confirm_close(question):
            event.ignore()  # Cancel: the window stays and everything goes on
            return
        self.tune_panel.shutdown()  # a tuner's child process never outlives the window
        # Background imports, evaluations and predictions stop at their next check instead
        # of delivering to a window that is gone.
        for panel in (self.data_panel, self.evaluation_panel, self.predict_panel):
            panel.cancel()
        if self.controller.busy:
            self.status_label.setText("Stopping the running job before closing…")
            self.controller.shutdown()
        # After the controller: the sweep gives its held slots back as it ends, and a run
        # queued for them must not start while the window closes.
        self.sweep_panel.shutdown()  # a sweep's child never outlives the window either
        self.save_settings()
        event.accept()
