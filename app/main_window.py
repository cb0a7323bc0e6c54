"""The main window: the panels as tabs, Train and Stop, the Jobs dock, and a status bar.

Train queues a run (engine/jobs/queue.py decides when and where it trains); the Jobs dock
shows what runs where and what waits. The Monitor follows one live run at a time: the one
started by Train when it starts at once, else the next to start while it shows none.

Around the panels: the menus (app/window_menus.py), the Jobs dock and the status bar
(app/window_jobs.py), what the View and Help menus do and the settings kept between launches
(app/window_view.py), files and drops of datasets, specs and databases anywhere on the window
(app/window_files.py), the first-run card and the guided tour (app/welcome.py), Edit ▸ Undo
over the editing panels' undo stacks, and a notification when a long job ends.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QKeySequence, QUndoGroup
from PySide6.QtWidgets import QMainWindow, QMessageBox, QTabWidget, QToolBar, QVBoxLayout, QWidget

from cnn_lab.app.bridge.job_controller import JobController
from cnn_lab.app.close_question import process_alive, question_for_closing
from cnn_lab.app.models.window_status import recommended_train
from cnn_lab.app.notifier import JobNotifier
from cnn_lab.app.panels.architecture_panel import ArchitecturePanel
from cnn_lab.app.panels.compare_panel import ComparePanel
from cnn_lab.app.panels.data_panel import DataPanel
from cnn_lab.app.panels.evaluation_panel import EvaluationPanel
from cnn_lab.app.panels.hyperparameters_panel import HyperparametersPanel
from cnn_lab.app.panels.monitor_panel import MonitorPanel, read_for_monitor
from cnn_lab.app.panels.optimize_panel import OptimizePanel
from cnn_lab.app.panels.predict_panel import PredictPanel
from cnn_lab.app.panels.runs_panel import RunsPanel
from cnn_lab.app.panels.sweep_panel import SweepPanel
from cnn_lab.app.panels.tune_panel import TunePanel
from cnn_lab.app.settings import WELCOME_DISMISSED_KEY, Settings
from cnn_lab.app.state import AppState
from cnn_lab.app.theme import SYSTEM
from cnn_lab.app.welcome import DEFAULT_PRESET, DEFAULT_SAMPLE, TourBar, WelcomeCard
from cnn_lab.app.window_files import WindowFiles
from cnn_lab.app.window_jobs import WindowJobs
from cnn_lab.app.window_menus import build_menus
from cnn_lab.app.window_view import WindowView
from cnn_lab.engine import __version__
from cnn_lab.engine.errors import UserError
from cnn_lab.engine.specs import ArchitectureSpec


class MainWindow(WindowFiles, WindowJobs, WindowView, QMainWindow):
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
        self.optimize_panel = OptimizePanel(state)
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
            "optimize": self.optimize_panel,
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
        # Hidden until the store says it has no runs (_update_welcome asks off the GUI thread):
        # shown by default, the card flashed over a full database on every launch.
        self.welcome.setVisible(False)
        self._welcome_asked = 0
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
        self._connect_jobs()
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
        self._connect_optimize()
        self._show_run_in_monitor()
        self._on_tab_changed(self.tabs.currentIndex())
        self.restore_settings()
        self._update_welcome()

    # ----------------------------------------------------------------- building

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
        toolbar.addAction(self.menu_actions["Optimize…"])
        self.addToolBar(toolbar)

    # ----------------------------------------------------------------- actions

    def apply_recommendation(self, changes: dict[str, Any]) -> bool:
        """Put a verdict card's recommendation into the recipe (the next run uses it)."""
        train, sentence = recommended_train(self.state.train, changes)
        if train is not None:
            self.state.update(train=train)
        self.status_label.setText(sentence)
        return train is not None

    def train(self) -> int | None:
        """Queue a run with the current choices; returns its id (None if refused).

        A run that starts at once takes the Monitor; one that waits says so in the status bar.
        """
        if self.state.store.unreachable:  # recording the run would only wait for the server
            QMessageBox.warning(self, "Cannot train", self.state.store.unreachable)
            return None
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
        if self.monitor_panel.run_id in gone:
            self._show_run_in_monitor()  # the newest left (unless the Monitor is live)

    def _on_tab_changed(self, _index: int) -> None:
        stack = getattr(self.tabs.currentWidget(), "undo_stack", None)
        self.undo_group.setActiveStack(stack)

    def start_tour(self) -> None:
        """The tour takes the card's place above the panels until it ends."""
        self._welcome_asked += 1  # an answer still on its way must not bring the card back
        self.welcome.setVisible(False)
        self.tour.start()

    def show_welcome(self) -> None:
        """Help ▸ Welcome: the first-run card again, whatever the database holds."""
        self.settings.set_flag(WELCOME_DISMISSED_KEY, False)
        self._welcome_asked += 1  # nor hide the card the person just asked for
        self.welcome.setVisible(True)

    def dismiss_welcome(self) -> None:
        self.settings.set_flag(WELCOME_DISMISSED_KEY, True)
        self.welcome.setVisible(False)

    def _update_welcome(self) -> None:
        """The card shows while the database has no runs, unless the person hid it."""
        if self.settings.flag(WELCOME_DISMISSED_KEY) or self.controller.busy:
            self.welcome.setVisible(False)
            return
        self._welcome_asked += 1
        asked = self._welcome_asked
        self.state.store.call(
            lambda store: not store.list_runs(limit=1),
            lambda empty: self._show_welcome_if(asked, empty),
            lambda _sentence: self._show_welcome_if(asked, False),
            key="welcome",
        )

    def _show_welcome_if(self, asked: int, empty: bool) -> None:
        # Only the newest question counts: Help ▸ Welcome or the tour since then decided.
        if asked != self._welcome_asked:
            return
        # Asked again now: a run may have started while the store answered.
        busy = self.settings.flag(WELCOME_DISMISSED_KEY) or self.controller.busy
        self.welcome.setVisible(empty and not busy)

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

    def _on_sweep_started(self, owner: str, _slots: list[str]) -> None:
        self._sweep_owner = owner
        self.notifier.started(owner)

    def _on_sweep_ended(self, outcome: str) -> None:
        owner = self._sweep_owner
        self.notifier.ended(owner, f"Sweep {outcome}", f"The {owner} {outcome}: see Sweep.")

    def _show_run_in_monitor(self, run_id: int | None = None) -> None:
        """The Monitor shows stored run ``run_id`` (None: the newest, or says there is none),
        unless it follows a live run."""
        if self._monitor_is_live():
            return
        self.state.store.call(
            lambda store: read_for_monitor(store, run_id),
            self._show_stored,
            self.status_label.setText,  # a locked or damaged store: a sentence
            key="monitor-stored",
            what="the newest run" if run_id is None else f"run {run_id}",
        )

    def _show_stored(self, read: tuple[Any, Any] | None) -> None:
        if self._monitor_is_live():
            return  # a run started while the store answered: the Monitor follows it
        if read is None:  # the last runs were deleted, or another database has none
            self.monitor_panel.show_nothing()
        else:
            self.monitor_panel.show_stored_run(*read)

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
            optimize=self.optimize_panel.running,
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
        if self.optimize_panel.running:
            self.status_label.setText("Stopping optimize: it keeps its best run so far…")
        self.optimize_panel.shutdown()  # nor does optimize's (what it recorded stays)
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
        self.state.store.close()  # after the edits given so far have been made
        event.accept()
