"""The window's side of the job queue: the Jobs dock, the status bar, and what each of the
JobController's signals changes in them. A mixin of MainWindow, kept apart so main_window.py
stays about the panels and how they are wired; it uses the window's ``state``,
``controller``, ``monitor_panel``, ``runs_panel``, ``tabs``, ``notifier`` and the Train and
Stop actions. The texts it shows come from app/models/window_status.py.
"""

from __future__ import annotations

import time
from typing import Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QDockWidget, QLabel, QProgressBar, QPushButton

from cnn_lab.app.models.window_status import StoreWaits, finished_status, step_status
from cnn_lab.app.widgets.job_queue_view import JobQueueView, format_eta, summary_text
from cnn_lab.engine.errors import UserError
from cnn_lab.engine.jobs.retry import retry_spec, suggested_batch
from cnn_lab.engine.specs import RunSpec
from cnn_lab.engine.store import status as st

JOBS_PROGRESS_INTERVAL_S = 1.0
"""How often the Jobs dock redraws progress while runs train."""
JOBS_DOCK_HEIGHT = 170
"""The Jobs dock's height while jobs run or wait (empty, it is one line)."""


class WindowJobs:
    """The Jobs dock, the status bar, Stop and Stop All, cancel, and the out-of-memory retry."""

    state: Any
    controller: Any
    monitor_panel: Any
    runs_panel: Any
    optimize_panel: Any
    tabs: Any
    notifier: Any
    stop_action: Any
    stop_all_action: Any
    welcome: Any
    _focus_next_start: bool

    def _build_jobs_dock(self) -> None:
        self.jobs_view = JobQueueView()
        self.jobs_dock = QDockWidget("Jobs", self)
        self.jobs_dock.setObjectName("jobs-dock")
        self.jobs_dock.setWidget(self.jobs_view)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.jobs_dock)
        # Empty, the view is one line; when jobs queue it grows to a few rows (the panels keep
        # most of the height).
        self.jobs_view.collapsed_changed.connect(self._fit_jobs_dock)
        self._jobs_refreshed_at = 0.0

    def _fit_jobs_dock(self, empty: bool) -> None:
        if not empty and not self.jobs_dock.isFloating():
            # After the layout has taken in the view's lifted maximum height.
            QTimer.singleShot(0, self._grow_jobs_dock)

    def _grow_jobs_dock(self) -> None:
        if not self.jobs_view.collapsed and not self.jobs_dock.isFloating():
            self.resizeDocks([self.jobs_dock], [JOBS_DOCK_HEIGHT], Qt.Orientation.Vertical)

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
        self._store_waits = StoreWaits()
        bar.addWidget(self.store_busy_label)
        # The window's own link to the store: slow, unreachable, retrying (store_link.py).
        self.store_label = QLabel("")
        self.store_label.setStyleSheet("color: #b35900;")
        self.store_label.setWordWrap(False)
        self.store_label.setVisible(False)
        self.state.store.status.connect(self._on_store_status)
        bar.addWidget(self.store_label)
        bar.addPermanentWidget(self.retry_button)
        bar.addPermanentWidget(self.jobs_label)
        bar.addPermanentWidget(self.eta_label)
        bar.addPermanentWidget(self.progress)

    def _connect_jobs(self) -> None:
        """Wire the controller's signals and the Jobs dock's requests to the window."""
        controller = self.controller
        controller.run_started.connect(self._on_run_started)
        controller.events.connect(self._on_events)
        controller.events.connect(self.monitor_panel.on_events)
        controller.run_finished.connect(self._on_run_finished)
        controller.busy_changed.connect(self._on_busy_changed)
        controller.store_busy.connect(self._on_store_busy)
        controller.queue_changed.connect(self._on_queue_changed)
        controller.events.connect(self._refresh_jobs_progress)
        self.jobs_view.move_requested.connect(controller.move)
        self.jobs_view.priority_requested.connect(controller.set_priority)
        self.jobs_view.cancel_requested.connect(self._cancel)
        self.jobs_view.stop_requested.connect(controller.stop)

    def _connect_optimize(self) -> None:
        """Optimize's runs are ordinary runs: Runs lists them, and Keep the run selects one."""
        panel = self.optimize_panel
        panel.run_kept.connect(self.show_kept_run)
        panel.optimize_started.connect(lambda: self.notifier.started("optimize"))
        panel.optimize_ended.connect(lambda outcome: self.runs_panel.refresh())
        panel.optimize_ended.connect(
            lambda outcome: self.notifier.ended(
                "optimize", f"Optimize {outcome}", f"Optimize {outcome}: see Optimize."
            )
        )

    def show_optimize(self) -> None:
        """Run ▸ Optimize…: the Optimize panel in front."""
        self.tabs.setCurrentWidget(self.optimize_panel)

    def show_kept_run(self, run_id: int) -> None:
        """The run Optimize kept, selected in Runs (Evaluate and Predict follow it)."""
        self.runs_panel.refresh()
        self.runs_panel.select_run(run_id)
        self.tabs.setCurrentWidget(self.runs_panel)

    # ----------------------------------------------------------------- requests

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

    def retry_with_suggested_batch(self) -> None:
        """Queue the failed run's spec again with the batch that fits (engine/jobs/retry.py);
        the Hyperparameters panel shows the change. The spec is read off the GUI thread."""
        if self._retry is None:
            return
        run_id, fits = self._retry
        self._retry = None
        self.retry_button.setVisible(False)
        self.state.store.call(
            lambda store: retry_spec(RunSpec.from_json(store.get_run(run_id).spec_json), fits),
            self._start_retry,
            self.status_label.setText,
            what=f"run {run_id}'s settings",
        )

    def _start_retry(self, spec: RunSpec) -> None:
        self.state.update(train=spec.train)
        self.controller.start(spec)

    # ----------------------------------------------------------------- job signals

    def _on_run_started(self, run_id: int) -> None:
        self.notifier.started(f"run {run_id}")
        self.welcome.setVisible(False)  # the card has done its job
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
                self.status_label.setText(step_status(run_id, event))
                break

    def _on_run_finished(self, run_id: int, status: str, reason: str) -> None:
        self.monitor_panel.finish(run_id, status, reason)
        if run_id == self.monitor_panel.run_id:
            self.progress.setVisible(False)
            self.eta_label.setText("")
        self.status_label.setText(finished_status(run_id, status, reason))
        self.notifier.ended(
            f"run {run_id}", f"Run {run_id} {status}", f"Run {run_id} {status}. {reason}".strip()
        )
        self.runs_panel.refresh()
        self.runs_panel.select_run(run_id)
        self._offer_retry(run_id, status)

    def _offer_retry(self, run_id: int, status: str) -> None:
        """After an out-of-memory failure, one click retries with the batch size that fits."""
        self._retry = None
        self.retry_button.setVisible(False)
        if status != st.FAILED:
            return
        self.state.store.call(
            lambda store: suggested_batch(status, store.get_run(run_id).summary),
            lambda fits: self._show_retry(run_id, fits),
            self.status_label.setText,
            what=f"run {run_id}'s result",
        )

    def _show_retry(self, run_id: int, fits: int | None) -> None:
        self._retry = (run_id, fits) if fits else None
        self.retry_button.setVisible(self._retry is not None)
        if self._retry is not None:
            self.retry_button.setText(f"Retry run {run_id} with batch {fits}")

    def _on_store_status(self, text: str) -> None:
        self.store_label.setText(text)
        self.store_label.setToolTip(text)
        self.store_label.setVisible(bool(text))

    def _on_store_busy(self, run_id: int, waiting: bool) -> None:
        """Say which runs cannot save while another program holds the run store's lock."""
        self._store_waits.set(run_id, waiting)
        text = self._store_waits.text()
        self.store_busy_label.setVisible(bool(text))
        if text:
            self.store_busy_label.setText(text)

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
