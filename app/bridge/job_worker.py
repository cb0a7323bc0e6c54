"""One job's QThread: starts the job's child process and turns its pipe into Qt signals.

The child does the training (and the GIL-heavy work) in its own interpreter, and sends its
events in batches (lists) about as often as this thread emits; this thread only waits on the
pipe and the process sentinel, collects events and emits them at most about 10 times a
second so the GUI thread never drowns in per-step signals.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import signal
import time
from multiprocessing.connection import wait

from PySide6.QtCore import QThread, Signal

from cnn_lab.engine.errors import UserError
from cnn_lab.engine.jobs.job import child_main
from cnn_lab.engine.store import RunStore
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


def describe_exit(exitcode: int | None, what: str = "training") -> str:
    """A sentence for how a child process (``what``: training, tuning) ended unannounced."""
    if exitcode is None:
        return f"The {what} process did not report how it ended."
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        extra = (
            " The system may have run out of memory, or it was ended from outside."
            if -exitcode == signal.SIGKILL
            else ""
        )
        return f"The {what} process was killed by {name} ({-exitcode}).{extra}"
    return f"The {what} process exited unexpectedly with code {exitcode}."


class JobWorker(QThread):
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
        super().__init__(parent)
        self.run_id = run_id
        self.spec_json = spec_json
        self.db_path = db_path
        self.device = device
        self.resume = resume
        self.throttle_s = throttle_s
        ctx = mp.get_context("spawn")
        self._ctx = ctx
        self._stop_event = ctx.Event()
        self._stop_requested_at: float | None = None
        self._stop_why: str | None = None
        self.pid: int | None = None

    def request_stop(self, why: str | None = None) -> None:
        """Ask the child to finish its step and stop (safe from any thread).

        ``why`` replaces "Stopped by request" at the start of the run's recorded reason (say,
        "Stopped because the cnn-lab window was closed"); the rest (the step, whether it can
        be resumed) stays.
        """
        if why is not None:
            self._stop_why = why
        self._stop_event.set()
        if self._stop_requested_at is None:
            self._stop_requested_at = time.monotonic()

    def run(self) -> None:  # runs in the worker thread
        reader, writer = self._ctx.Pipe(duplex=False)
        process = self._ctx.Process(
            target=child_main,
            args=(self.spec_json, self.db_path, self.run_id, writer, self._stop_event),
            # The child batches its events as often as this thread emits them: finer
            # batches would only wait here for the next emit.
            kwargs={"device": self.device, "resume": self.resume, "send_every_s": self.throttle_s},
            name=f"cnn-lab-run-{self.run_id}",
        )
        try:
            process.start()
        except Exception as exc:  # no child: the run must still end, or its slot stays taken
            log.exception("the job process could not be started")
            writer.close()
            reader.close()
            self.job_finished.emit(self.run_id, *self._record_no_start(exc))
            return
        writer.close()  # the child holds the only write end, so EOF means it is gone
        self.pid = process.pid
        self.child_started.emit(self.run_id, process.pid or 0)

        pending: list[object] = []
        last_emit = 0.0
        pipe_open = True
        killed_after_stop = False
        while True:
            watched = [process.sentinel] + ([reader] if pipe_open else [])
            ready = wait(watched, timeout=0.05)
            if pipe_open and reader in ready:
                pipe_open = self._drain(reader, pending)
            now = time.monotonic()
            if pending and now - last_emit >= self.throttle_s:
                self.events.emit(self.run_id, pending)
                pending, last_emit = [], now
            if (
                self._stop_requested_at is not None
                and now - self._stop_requested_at > STOP_GRACE_S
                and process.is_alive()
            ):
                process.kill()
                killed_after_stop = True
            if process.sentinel in ready and not pipe_open:
                break
            if process.sentinel in ready and pipe_open:
                # The process ended; read what it left in the pipe, then stop watching.
                while pipe_open and reader.poll(0):
                    pipe_open = self._drain(reader, pending)
                pipe_open = False
        process.join()
        reader.close()
        if pending:
            self.events.emit(self.run_id, pending)
        try:
            status, reason = self._record_end(process.exitcode, killed_after_stop)
        except UserError as exc:  # the store stayed locked past its timeout, or broke:
            log.warning("run %s: its end could not be recorded: %s", self.run_id, exc)
            status, reason = st.CRASHED, f"The run's end could not be recorded: {exc}"
        self.job_finished.emit(self.run_id, status, reason)  # its slot must free up regardless

    @staticmethod
    def _drain(reader, pending: list[object]) -> bool:
        """Read every waiting event; False once the pipe is closed.

        A message is one event, or a list of events the child batched (``send_every_s``).
        """
        try:
            while reader.poll(0):
                message = reader.recv()
                if isinstance(message, list):
                    pending.extend(message)
                else:
                    pending.append(message)
        except (EOFError, OSError):
            return False
        return True

    def _record_no_start(self, exc: Exception) -> tuple[str, str]:
        """Fail a run whose process could not even start, saying why."""
        reason = f"The training process could not be started: {exc}."
        with RunStore.open(self.db_path, sweep=False) as store:
            store.finish_run(
                self.run_id,
                st.FAILED,
                reason=reason,
                hint="Check free memory and open-file limits, then train again.",
            )
        return st.FAILED, reason

    def _record_end(self, exitcode: int | None, killed_after_stop: bool) -> tuple[str, str]:
        """Make sure the run ends in a final state that says what happened."""
        with RunStore.open(self.db_path, sweep=False) as store:
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
