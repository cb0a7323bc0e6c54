"""One job's QThread: starts the job's child process and turns its pipe into Qt signals.

The child does the training (and the GIL-heavy work) in its own interpreter, and sends its
events in batches (lists) about as often as this thread emits; this thread only waits on the
pipe and the process sentinel (the shared loop of ``ChildThread``), collects events and
emits them at most about 10 times a second so the GUI thread never drowns in per-step
signals. What it adds to that loop is the run's record: a run whose child could not start,
was killed after Stop or died unannounced still ends in the store with a reason.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from PySide6.QtCore import Signal

from cnn_lab.app.bridge.child_runner import ChildThread, describe_exit
from cnn_lab.engine.errors import UserError
from cnn_lab.engine.jobs.job import child_main
from cnn_lab.engine.store import open_store
from cnn_lab.engine.store import status as st

log = logging.getLogger(__name__)

STOP_GRACE_S = 10.0
"""After Stop, the child gets this long to finish its step, save its checkpoint and record
itself; then it is killed, and a killed run has no checkpoint to resume from. 1.5 s was too
short on a loaded CPU (a suite run at twice the cores' load lost a resumable stop this way),
and a big model's step plus checkpoint takes seconds anyway; a child that stops promptly
still ends as soon as it is done."""
BY_REQUEST = "Stopped by request"
"""How a stopped run's reason starts (engine/train/loop.py, engine/jobs/job.py and here)."""


class JobWorker(ChildThread):
    """Runs one job's child process and relays what it says."""

    child_started = Signal(int, int)  # run id, pid
    events = Signal(int, object)  # run id, list of engine events (batched)
    job_finished = Signal(int, str, str)  # run id, final status, reason

    def __init__(
        self,
        run_id: int,
        spec_json: str,
        db_path: str,
        *,
        device: str | None = None,
        resume: bool = False,
        throttle_s: float = 0.1,
        parent=None,
    ) -> None:
        """``device`` is the slot the job queue gave the run (None: the spec's own device);
        ``resume`` continues the run from its last checkpoint."""
        super().__init__(
            child_main,
            (spec_json, db_path, run_id),
            f"cnn-lab-run-{run_id}",
            # The child batches its events as often as this thread emits them: finer
            # batches would only wait here for the next emit.
            kwargs={"device": device, "resume": resume, "send_every_s": throttle_s},
            parent=parent,
        )
        self.run_id = run_id
        self.spec_json = spec_json
        self.db_path = db_path
        self.device = device
        self.resume = resume
        self.throttle_s = throttle_s
        self._stop_why: str | None = None
        self._pending: list[object] = []
        self._last_emit = 0.0

    def request_stop(self, why: str | None = None) -> None:  # type: ignore[override]
        """Ask the child to finish its step and stop (safe from any thread).

        ``why`` replaces "Stopped by request" at the start of the run's recorded reason (say,
        "Stopped because the cnn-lab window was closed"); the rest (the step, whether it can
        be resumed) stays.
        """
        if why is not None:
            self._stop_why = why
        super().request_stop(STOP_GRACE_S)

    # ------------------------------------------------------------ ChildThread's hooks

    def _started(self, pid: int) -> None:
        self.child_started.emit(self.run_id, pid)

    def _not_started(self, exc: Exception) -> None:
        # No child: the run must still end, or its slot stays taken.
        self.job_finished.emit(self.run_id, *self._record_no_start(exc))

    def _receive(self, message: Any) -> None:
        # A message is one event, or a list of events the child batched (``send_every_s``).
        if isinstance(message, list):
            self._pending.extend(message)
        else:
            self._pending.append(message)

    def _flush(self, now: float | None) -> None:
        if self._pending and (now is None or now - self._last_emit >= self.throttle_s):
            self.events.emit(self.run_id, self._pending)
            self._pending, self._last_emit = [], now or time.monotonic()

    def _ended(self, exitcode: int | None, killed: bool) -> None:
        try:
            status, reason = self._record_end(exitcode, killed)
        except UserError as exc:  # the store stayed locked past its timeout, or broke:
            log.warning("run %s: its end could not be recorded: %s", self.run_id, exc)
            status, reason = st.CRASHED, f"The run's end could not be recorded: {exc}"
        self.job_finished.emit(self.run_id, status, reason)  # its slot must free up regardless

    def _record_no_start(self, exc: Exception) -> tuple[str, str]:
        """Fail a run whose process could not even start, saying why."""
        reason = f"The training process could not be started: {exc}."
        with open_store(self.db_path, sweep=False) as store:
            store.finish_run(
                self.run_id,
                st.FAILED,
                reason=reason,
                hint="Check free memory and open-file limits, then train again.",
            )
        return st.FAILED, reason

    def _record_end(self, exitcode: int | None, killed_after_stop: bool) -> tuple[str, str]:
        """Make sure the run ends in a final state that says what happened."""
        with open_store(self.db_path, sweep=False) as store:
            record = store.get_run(self.run_id)
            if record.status in st.ACTIVE:
                if killed_after_stop:
                    store.finish_run(
                        self.run_id,
                        st.STOPPED,
                        reason=f"{BY_REQUEST}; the job did not stop within {STOP_GRACE_S} s "
                        "and was ended.",
                    )
                else:
                    store.mark_crashed_if_active(self.run_id, describe_exit(exitcode))
                record = store.get_run(self.run_id)
            reason = record.reason or ""
            if self._stop_why and record.status == st.STOPPED and reason.startswith(BY_REQUEST):
                reason = self._stop_why + reason[len(BY_REQUEST) :]
                store.finish_run(self.run_id, st.STOPPED, reason=reason, hint=record.hint)
            return record.status, reason
