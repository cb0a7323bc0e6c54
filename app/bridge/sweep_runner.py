"""Run one sweep in a child process and hear its trials as Qt signals.

A ``SweepRunner`` lives on the GUI thread. ``start`` gives a ``_SweepThread`` (a QThread) the
search as JSON; the thread starts the child (engine/search/child.py, a "spawn" process like a
training job or a tuner), waits on its pipe and its sentinel, and relays each message. The
runner turns them into its public signals, so every slot connected to it runs on the GUI
thread:

- ``trial(outcome_dict)`` each time a trial finishes;
- then exactly one of ``finished(result_dict)``, ``failed(sentence)`` or ``cancelled()``.

Stop asks the child to end its trial after the current step and to summarise the study; it
is killed only after a grace period, because a step in a long compile or a CUDA call may not
check for a while. ``shutdown`` does the same with a short grace and returns only once the
child is gone: the window calls it on close, so no sweep outlives it. A killed sweep loses
nothing: its interrupted trial is queued again when the same sweep runs next.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from multiprocessing.connection import Connection, wait
from typing import Any

from PySide6.QtCore import QCoreApplication, QObject, QThread, Signal, Slot

from cnn_lab.app.bridge.job_worker import describe_exit
from cnn_lab.engine.search.child import sweep_child
from cnn_lab.engine.search.spec import SearchSpec

STOP_GRACE_S = 20.0
"""After Stop, the child gets this long to end its step and summarise; then it is killed."""
SHUTDOWN_GRACE_S = 2.0
"""On shutdown (the window closing) less: the interrupted trial reruns on resume anyway."""
THREAD_WAIT_MS = 15_000
"""How long shutdown waits for the thread once its child has been killed."""


class _SweepThread(QThread):
    """Owns one sweep child: starts it, relays its messages, kills it when asked to stop."""

    message = Signal(object)  # a tuple from engine/search/child.py
    ended = Signal(object, bool)  # exit code (None if unknown), whether it was killed

    def __init__(
        self,
        search_json: str,
        db_path: str,
        storage: str | None,
        sample_system: bool,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.args = (search_json, db_path, storage)
        self.sample_system = sample_system
        self._ctx = mp.get_context("spawn")
        self._stop_event = self._ctx.Event()
        self._kill_at: float | None = None
        self.pid: int | None = None

    def request_stop(self, grace_s: float) -> None:
        """Ask the child to stop, and to be killed after ``grace_s`` (safe from any thread)."""
        self._stop_event.set()
        deadline = time.monotonic() + grace_s
        if self._kill_at is None or deadline < self._kill_at:
            self._kill_at = deadline

    def run(self) -> None:  # runs in the worker thread
        reader, writer = self._ctx.Pipe(duplex=False)
        process = self._ctx.Process(
            target=sweep_child,
            args=(*self.args, writer, self._stop_event, self.sample_system),
            name="cnn-lab-sweep",
        )
        process.start()
        writer.close()  # the child holds the only write end, so EOF means it is gone
        self.pid = process.pid
        killed = False
        pipe_open = True
        while True:
            watched = [process.sentinel] + ([reader] if pipe_open else [])
            ready = wait(watched, timeout=0.1)
            if pipe_open and reader in ready:
                pipe_open = self._drain(reader)
            due = self._kill_at is not None and time.monotonic() >= self._kill_at
            if due and process.is_alive():
                process.kill()
                killed = True
            if process.sentinel in ready:
                while pipe_open and reader.poll(0):  # what it said just before it ended
                    pipe_open = self._drain(reader)
                break
        process.join()
        reader.close()
        self.ended.emit(process.exitcode, killed)

    def _drain(self, reader: Connection) -> bool:
        """Relay every waiting message; False once the pipe is closed."""
        try:
            while reader.poll(0):
                self.message.emit(reader.recv())
        except (EOFError, OSError):
            return False
        return True


class SweepRunner(QObject):
    """Runs one sweep at a time in a child process; see the module docstring."""

    trial = Signal(dict)
    finished = Signal(dict)
    failed = Signal(str)
    cancelled = Signal()

    def __init__(self, parent: QObject | None = None, *, sample_system: bool = True) -> None:
        """``sample_system`` is off in tests: GPU and CPU gauges only cost time there."""
        super().__init__(parent)
        self.sample_system = sample_system
        self._thread: _SweepThread | None = None
        self._outcome: tuple[str, Any] | None = None
        self._stopping = False
        app = QCoreApplication.instance()
        if app is not None:  # quitting with a sweep running must not leave its child behind
            app.aboutToQuit.connect(self.shutdown)

    @property
    def running(self) -> bool:
        return self._thread is not None

    @property
    def child_pid(self) -> int | None:
        """The sweep process's id while it runs (for tests and the curious)."""
        return self._thread.pid if self._thread is not None else None

    def start(self, search: SearchSpec, db_path: str, storage: str | None = None) -> None:
        """Run ``search`` on the run database ``db_path`` in a new child process."""
        if self._thread is not None:
            raise RuntimeError("a sweep is already running; stop it first")
        self._outcome = None
        self._stopping = False
        thread = _SweepThread(search.to_json(), str(db_path), storage, self.sample_system)
        thread.message.connect(self._on_message)
        thread.ended.connect(self._on_ended)
        self._thread = thread
        thread.start()

    def stop(self) -> None:
        """Ask the sweep to stop; ``finished`` (with what it did) or ``cancelled`` follows."""
        if self._thread is not None:
            self._stopping = True
            self._thread.request_stop(STOP_GRACE_S)

    def shutdown(self) -> None:
        """Stop the sweep and wait until its child and thread are gone (window closing)."""
        thread = self._thread
        if thread is None:
            return
        self._stopping = True
        thread.request_stop(SHUTDOWN_GRACE_S)
        thread.wait(THREAD_WAIT_MS)
        self._forget_thread()

    @Slot(object)
    def _on_message(self, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "trial":
            self.trial.emit(message[1])
        elif kind == "result":
            self._outcome = ("result", message[1])
        elif kind == "error":
            _, text, hint = message
            self._outcome = ("error", f"{text} {hint}" if hint else text)

    @Slot(object, bool)
    def _on_ended(self, exitcode: int | None, killed: bool) -> None:
        if self._thread is None:
            return  # shut down already; nobody is listening for the outcome
        stopping = self._stopping
        self._forget_thread()
        outcome = self._outcome
        if outcome is not None and outcome[0] == "result":
            self.finished.emit(outcome[1])  # a stopped sweep's trials are still worth showing
        elif outcome is not None and outcome[0] == "error":
            self.failed.emit(outcome[1])
        elif stopping:
            self.cancelled.emit()
        else:
            self.failed.emit(describe_exit(exitcode, "sweep"))

    def _forget_thread(self) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.wait()
            thread.message.disconnect(self._on_message)
            thread.ended.disconnect(self._on_ended)
            thread.deleteLater()


__all__ = ["SweepRunner"]
