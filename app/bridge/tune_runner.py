"""Run one tuner in a child process and hear what it says as Qt signals.

A ``TuneRunner`` lives on the GUI thread. ``start`` gives a ``_TuneThread`` (a QThread) the
tuner's kind, spec and options; the thread starts the child (engine/tune/child.py, in a
"spawn" process, like a training job), waits on its pipe and its sentinel, and relays each
message. The runner turns those into its public signals, so every slot connected to a
runner runs on the GUI thread:

- ``progress(stage, done, total)`` as the tuner works (at most about ten a second);
- then exactly one of ``finished(result_dict)``, ``failed(sentence)`` or ``cancelled()``.

Stop asks the child to stop at its next check and kills it after a grace period, because
a tuner stuck in a long compile or a CUDA call may not check for a while. ``shutdown``
does the same without waiting for the grace period to be polite, and returns only once the
child is gone: the window calls it on close, so no tuner outlives it.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from multiprocessing.connection import Connection, wait
from typing import Any

from PySide6.QtCore import QCoreApplication, QObject, QThread, Signal, Slot

from cnn_lab.app.bridge.job_worker import describe_exit
from cnn_lab.engine.specs import RunSpec
from cnn_lab.engine.tune.child import tune_child

STOP_GRACE_S = 2.0
"""After Stop, the child gets this long to end by itself; then it is killed."""
SHUTDOWN_GRACE_S = 0.5
"""On shutdown (the window closing) the child gets less: a tuner keeps nothing worth saving."""
PROGRESS_INTERVAL_S = 0.1
"""At most about ten progress signals a second; more only costs the GUI thread repaints."""
THREAD_WAIT_MS = 15_000
"""How long shutdown waits for the thread once its child has been killed."""


class _TuneThread(QThread):
    """Owns one tuning child: starts it, relays its messages, kills it when asked to stop."""

    message = Signal(object)  # a tuple from engine/tune/child.py
    ended = Signal(object, bool)  # exit code (None if unknown), whether it was killed

    def __init__(
        self, kind: str, spec_json: str, options: dict[str, Any], parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self.kind = kind
        self.spec_json = spec_json
        self.options = options
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
            target=tune_child,
            args=(self.kind, self.spec_json, self.options, writer, self._stop_event),
            name=f"cnn-lab-tune-{self.kind}",
        )
        process.start()
        writer.close()  # the child holds the only write end, so EOF means it is gone
        self.pid = process.pid
        killed = False
        pipe_open = True
        last_progress = 0.0
        pending_progress: tuple[Any, ...] | None = None
        while True:
            watched = [process.sentinel] + ([reader] if pipe_open else [])
            ready = wait(watched, timeout=0.05)
            if pipe_open and reader in ready:
                pipe_open, pending_progress = self._drain(reader, pending_progress)
            now = time.monotonic()
            if pending_progress is not None and now - last_progress >= PROGRESS_INTERVAL_S:
                self.message.emit(pending_progress)
                pending_progress, last_progress = None, now
            if self._kill_at is not None and now >= self._kill_at and process.is_alive():
                process.kill()
                killed = True
            if process.sentinel in ready:
                while pipe_open and reader.poll(0):  # what it said just before it ended
                    pipe_open, pending_progress = self._drain(reader, pending_progress)
                break
        process.join()
        reader.close()
        self.ended.emit(process.exitcode, killed)

    def _drain(
        self, reader: Connection, pending: tuple[Any, ...] | None
    ) -> tuple[bool, tuple[Any, ...] | None]:
        """Relay every waiting message; progress is held back to the latest one.

        Returns whether the pipe is still open and the progress message not yet relayed.
        """
        try:
            while reader.poll(0):
                message = reader.recv()
                if message and message[0] == "progress":
                    pending = message
                    continue
                if pending is not None:  # progress first, so the bar ends where it got to
                    self.message.emit(pending)
                    pending = None
                self.message.emit(message)
        except (EOFError, OSError):
            return False, pending
        return True, pending


class TuneRunner(QObject):
    """Runs one tuner at a time in a child process; see the module docstring."""

    progress = Signal(str, int, int)
    finished = Signal(dict)
    failed = Signal(str)
    cancelled = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._thread: _TuneThread | None = None
        self._outcome: tuple[str, Any] | None = None
        self._stopping = False
        app = QCoreApplication.instance()
        if app is not None:  # quitting with a tuner running must not leave its child behind
            app.aboutToQuit.connect(self.shutdown)

    @property
    def running(self) -> bool:
        return self._thread is not None

    @property
    def child_pid(self) -> int | None:
        """The tuning process's id while it runs (for tests and the curious)."""
        return self._thread.pid if self._thread is not None else None

    def start(self, kind: str, spec: RunSpec, options: dict[str, Any] | None = None) -> None:
        """Run tuner ``kind`` ("lr", "batch-size", "speed") on ``spec`` in a new child."""
        if self._thread is not None:
            raise RuntimeError("a tuner is already running; stop it first")
        self._outcome = None
        self._stopping = False
        thread = _TuneThread(kind, spec.to_json(), dict(options or {}))
        thread.message.connect(self._on_message)
        thread.ended.connect(self._on_ended)
        self._thread = thread
        thread.start()

    def stop(self) -> None:
        """Ask the running tuner to stop; ``cancelled`` follows once its child has ended."""
        if self._thread is not None:
            self._stopping = True
            self._thread.request_stop(STOP_GRACE_S)

    def shutdown(self) -> None:
        """Stop the tuner and wait until its child and thread are gone (window closing)."""
        thread = self._thread
        if thread is None:
            return
        self._stopping = True
        thread.request_stop(SHUTDOWN_GRACE_S)
        thread.wait(THREAD_WAIT_MS)
        # The thread's last signals are queued to this (GUI) thread: nobody waits for them now.
        self._forget_thread()

    @Slot(object)
    def _on_message(self, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "progress" and not self._stopping:
            _, stage, done, total = message
            self.progress.emit(stage, done, total)
        elif kind == "result":
            self._outcome = ("result", message[1])
        elif kind == "error":
            _, text, hint = message
            self._outcome = ("error", f"{text} {hint}" if hint else text)
        elif kind == "cancelled":
            self._outcome = ("cancelled", None)

    @Slot(object, bool)
    def _on_ended(self, exitcode: int | None, killed: bool) -> None:
        if self._thread is None:
            return  # shut down already; nobody is listening for the outcome
        stopping = self._stopping
        self._forget_thread()
        outcome = self._outcome
        if outcome is not None and outcome[0] == "result":
            self.finished.emit(outcome[1])  # a result that made it out is worth showing
        elif stopping or (outcome is not None and outcome[0] == "cancelled"):
            self.cancelled.emit()
        elif outcome is not None and outcome[0] == "error":
            self.failed.emit(outcome[1])
        else:
            self.failed.emit(describe_exit(exitcode, "tuning"))

    def _forget_thread(self) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.wait()
            thread.message.disconnect(self._on_message)
            thread.ended.disconnect(self._on_ended)
            thread.deleteLater()
