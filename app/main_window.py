"""The main window: the panels as tabs, Train and Stop, and a status bar with progress and ETA."""

from __future__ import annotations

import platform
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QTabWidget,
    QToolBar,
    QWidget,
)

from cnn_lab.app.bridge.job_controller import JobController
from cnn_lab.app.panels.architecture_panel import ArchitecturePanel
from cnn_lab.app.panels.data_panel import DataPanel
from cnn_lab.app.panels.hyperparameters_panel import HyperparametersPanel
from cnn_lab.app.panels.monitor_panel import MonitorPanel
from cnn_lab.app.panels.runs_panel import RunsPanel
from cnn_lab.app.state import AppState
from cnn_lab.engine import __version__
from cnn_lab.engine.errors import UserError
from cnn_lab.engine.store import RunStore


def format_eta(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class MainWindow(QMainWindow):
    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.setWindowTitle(f"cnn-lab {__version__}")
        self.controller = JobController(state.db_path, self)

        self.data_panel = DataPanel(state)
        self.architecture_panel = ArchitecturePanel(state)
        self.hyperparameters_panel = HyperparametersPanel(state)
        self.monitor_panel = MonitorPanel(state)
        self.runs_panel = RunsPanel(state)
        self.panels: dict[str, QWidget] = {
            "data": self.data_panel,
            "architecture": self.architecture_panel,
            "hyperparameters": self.hyperparameters_panel,
            "monitor": self.monitor_panel,
            "runs": self.runs_panel,
        }
        self.tabs = QTabWidget()
        for panel in self.panels.values():
            self.tabs.addTab(panel, panel.title)
        self.setCentralWidget(self.tabs)

        self._build_actions()
        self._build_status_bar()
        self.controller.run_started.connect(self._on_run_started)
        self.controller.events.connect(self._on_events)
        self.controller.events.connect(self.monitor_panel.on_events)
        self.controller.run_finished.connect(self._on_run_finished)
        self.controller.busy_changed.connect(self._on_busy_changed)
        self.runs_panel.run_selected.connect(self._show_run_in_monitor)
        self._show_latest_run()

    # ----------------------------------------------------------------- building

    def _build_actions(self) -> None:
        self.train_action = QAction("Train", self)
        self.train_action.setShortcut(QKeySequence("Ctrl+Return"))
        self.train_action.setToolTip("Train the current data, architecture and hyperparameters")
        self.train_action.triggered.connect(self.train)
        self.stop_action = QAction("Stop", self)
        self.stop_action.setShortcut(QKeySequence("Ctrl+."))
        self.stop_action.setToolTip("Finish the current step, record the run and stop")
        self.stop_action.setEnabled(False)
        self.stop_action.triggered.connect(self.stop)
        open_db = QAction("Open Run Database…", self)
        open_db.setShortcut(QKeySequence.StandardKey.Open)
        open_db.triggered.connect(self._open_database)
        quit_action = QAction("Quit", self)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        about = QAction("About cnn-lab", self)
        about.triggered.connect(self._about)

        menu = self.menuBar()
        file_menu = menu.addMenu("&File")
        file_menu.addAction(open_db)
        file_menu.addSeparator()
        file_menu.addAction(quit_action)
        run_menu = menu.addMenu("&Run")
        run_menu.addAction(self.train_action)
        run_menu.addAction(self.stop_action)
        menu.addMenu("&Help").addAction(about)

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
        bar = self.statusBar()
        bar.addWidget(self.status_label, 1)
        bar.addPermanentWidget(self.eta_label)
        bar.addPermanentWidget(self.progress)

    # ----------------------------------------------------------------- actions

    def train(self) -> int | None:
        """Start a run with the current choices; returns its id (None if refused)."""
        try:
            run_id = self.controller.start(self.state.run_spec())
        except UserError as exc:
            QMessageBox.warning(self, "Cannot train", str(exc))
            return None
        return run_id

    def stop(self) -> None:
        self.controller.stop()
        self.status_label.setText("Stopping…")

    def _open_database(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self,
            "Open or create a run database",
            self.state.db_path,
            "SQLite databases (*.sqlite *.db);;All files (*)",
            options=QFileDialog.Option.DontConfirmOverwrite,
        )
        if not path:
            return
        try:
            RunStore.open(path).close()
        except UserError as exc:
            QMessageBox.warning(self, "Cannot open the database", str(exc))
            return
        self.state.set_db_path(path)
        self.controller.db_path = path

    def _about(self) -> None:
        QMessageBox.about(
            self,
            "About cnn-lab",
            f"<b>cnn-lab {__version__}</b><br>A desktop experiment manager for CNNs.<br><br>"
            f"Python {platform.python_version()}<br>Run database: {self.state.db_path}",
        )

    # ----------------------------------------------------------------- job signals

    def _on_run_started(self, run_id: int) -> None:
        self.monitor_panel.begin(run_id)
        self.tabs.setCurrentWidget(self.monitor_panel)
        self.status_label.setText(f"Run {run_id}: starting the training process…")
        self.progress.setValue(0)
        self.progress.setVisible(True)
        self.eta_label.setText("")
        self.runs_panel.refresh()

    def _on_events(self, run_id: int, events: list[Any]) -> None:
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
        self.progress.setVisible(False)
        self.eta_label.setText("")
        self.status_label.setText(f"Run {run_id} {status}." + (f" {reason}" if reason else ""))
        self.runs_panel.refresh()
        self.runs_panel.select_run(run_id)

    def _on_busy_changed(self, busy: bool) -> None:
        self.train_action.setEnabled(not busy)
        self.stop_action.setEnabled(busy)

    def _show_latest_run(self) -> None:
        with self.state.open_store() as store:
            latest = store.list_runs(limit=1)
            if latest:
                self.monitor_panel.show_stored_run(latest[0], store)

    def _show_run_in_monitor(self, run_id: int) -> None:
        if self.controller.busy:
            return  # the monitor belongs to the live run
        with self.state.open_store() as store:
            self.monitor_panel.show_stored_run(store.get_run(run_id), store)

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.controller.busy:
            self.status_label.setText("Stopping the running job before closing…")
            self.controller.shutdown()
        event.accept()
