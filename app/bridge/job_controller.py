"""JobController: the GUI's one door to training. Panels hand it a RunSpec; it owns the threads.

One job runs per device slot (the queue with priorities arrives with the training issue).
All its signals are emitted on the GUI thread (queued from the worker threads), so slots
connected to them may touch widgets.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal

from cnn_lab.app.bridge.job_worker import JobWorker
from cnn_lab.engine.errors import UserError
from cnn_lab.engine.jobs import create_run
from cnn_lab.engine.specs import RunSpec
from cnn_lab.engine.store import RunStore


class JobController(QObject):
    run_started = Signal(int)  # run id (queued in the store, child starting)
    child_started = Signal(int, int)  # run id, pid
    events = Signal(int, object)  # run id, list of events
    run_finished = Signal(int, str, str)  # run id, status, reason
    busy_changed = Signal(bool)

    def __init__(self, db_path: str | Path, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.db_path = str(db_path)
        self._workers: dict[int, JobWorker] = {}

    @property
    def busy(self) -> bool:
        return bool(self._workers)

    def running_ids(self) -> list[int]:
        return list(self._workers)

    def child_pid(self, run_id: int) -> int | None:
        worker = self._workers.get(run_id)
        return worker.pid if worker else None

    def start(self, spec: RunSpec) -> int:
        """Record the run as queued and start its job. Raises UserError if a job is running."""
        if self._workers:
            raise UserError("A run is already training.", hint="Stop it or wait for it to finish.")
        with RunStore.open(self.db_path) as store:
            run_id = create_run(store, spec)
        worker = JobWorker(run_id, spec.to_json(), self.db_path, parent=self)
        worker.child_started.connect(self.child_started)
        worker.events.connect(self.events)
        worker.job_finished.connect(self._on_job_finished)
        self._workers[run_id] = worker
        worker.start()
        self.run_started.emit(run_id)
        self.busy_changed.emit(True)
        return run_id

    def stop(self, run_id: int | None = None) -> None:
        """Ask one run (or every run) to stop; it is killed if it does not within the grace."""
        for rid, worker in list(self._workers.items()):
            if run_id is None or rid == run_id:
                worker.request_stop()

    def shutdown(self, timeout_ms: int = 5000) -> None:
        """Stop every job and wait for its thread (called when the window closes)."""
        self.stop()
        for worker in list(self._workers.values()):
            worker.wait(timeout_ms)

    def _on_job_finished(self, run_id: int, status: str, reason: str) -> None:
        worker = self._workers.pop(run_id, None)
        if worker is not None:
            worker.wait()
            worker.deleteLater()
        self.run_finished.emit(run_id, status, reason)
        if not self._workers:
            self.busy_changed.emit(False)
