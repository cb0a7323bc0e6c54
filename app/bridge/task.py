"""A cancellable background task with progress, for long engine work such as an import.

The work is a plain function ``fn(progress, should_stop)`` in the style of superqt's workers
and Orange3's TaskState: it calls ``progress(stage, done, total)`` now and then and checks
``should_stop()`` between pieces of work (the engine raises ``Cancelled`` when it sees it).
The Qt side only wires it: the function runs on the global thread pool, and what it reports
arrives as signals on the GUI thread.

Why a private relay: the worker thread emits on a relay object nobody else connects to, and
the Task (living on the GUI thread) re-emits its public signals from queued slots. So every
slot connected to a Task, lambdas included, runs on the GUI thread; and a cancel that comes
before the result has been delivered always wins, even when the work itself had just ended.

This is the window's one background-task helper: long work (imports, evaluation, exports)
holds a Task to show progress and cancel it; short one-off work (the live architecture
summary) calls ``run_task``, which wires a Task and lets it delete itself.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QCoreApplication, QObject, QRunnable, QThreadPool, Signal, Slot

from cnn_lab.engine.errors import Cancelled, UserError

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]
StopFlag = Callable[[], bool]
TaskFunction = Callable[[Progress, StopFlag], Any]

PROGRESS_INTERVAL_S = 0.1
"""At most about ten progress signals a second: more only costs the GUI thread repaints."""

QUIT_WAIT_MS = 5_000
"""How long quitting waits for cancelled tasks to notice; work that never checks is left."""

PENDING, RUNNING, FINISHED, FAILED, CANCELLED = (
    "pending",
    "running",
    "finished",
    "failed",
    "cancelled",
)


class _Relay(QObject):
    progress = Signal(str, int, int)
    done = Signal(object)
    failed = Signal(str)
    cancelled = Signal()


class _Throttle:
    """Forwards progress at most every ``interval`` seconds, plus stage changes and the end.

    The engine may report from several of its own worker threads at once, hence the lock.
    """

    def __init__(self, emit: Callable[[str, int, int], None], interval: float) -> None:
        self._emit = emit
        self._interval = interval
        self._lock = threading.Lock()
        self._last = 0.0
        self._stage = ""

    def __call__(self, stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        with self._lock:
            due = (
                now - self._last >= self._interval
                or stage != self._stage
                or (total > 0 and done >= total)
            )
            if not due:
                return
            self._last, self._stage = now, stage
        self._emit(stage, int(done), int(total))


class _Runnable(QRunnable):
    def __init__(self, fn: TaskFunction, relay: _Relay, stop: threading.Event) -> None:
        super().__init__()
        self.fn = fn
        self.relay = relay  # held here, so it outlives the Task if the Task goes first
        self.stop = stop

    def run(self) -> None:
        progress = _Throttle(
            lambda stage, done, total: self._deliver(self.relay.progress, stage, done, total),
            PROGRESS_INTERVAL_S,
        )
        try:
            result = self.fn(progress, self.stop.is_set)
        except Cancelled:
            self._deliver(self.relay.cancelled)
        except UserError as exc:  # a sentence for the person, never a traceback
            self._deliver(self.relay.failed, str(exc))
        except Exception as exc:  # reported to the GUI, never raised into Qt
            if self.stop.is_set():  # e.g. the engine's own pool refusing work at exit
                self._deliver(self.relay.cancelled)
                return
            log.exception("Background task failed")
            self._deliver(self.relay.failed, f"{type(exc).__name__}: {exc}")
        else:
            self._deliver(self.relay.done, result)
        finally:
            _live.discard(self.stop)

    @staticmethod
    def _deliver(signal: Any, *args: Any) -> None:
        # RuntimeError: the application is shutting down and took the relay with it; nobody
        # is left to receive the result, which is not worth a traceback on exit.
        with contextlib.suppress(RuntimeError):
            signal.emit(*args)


class Task(QObject):
    """Runs ``fn(progress, should_stop)`` off the GUI thread; one Task runs once.

    Exactly one of ``finished``, ``failed`` or ``cancelled`` is emitted, on the GUI thread.
    ``failed`` carries one line: a UserError's sentence, or the type and message of anything
    else (whose traceback goes to the log).
    """

    progress = Signal(str, int, int)
    finished = Signal(object)
    failed = Signal(str)
    cancelled = Signal()

    def __init__(self, fn: TaskFunction, name: str = "", parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self.state = PENDING
        self.result: Any = None
        self.error = ""
        self._fn = fn
        self._stop = threading.Event()
        self._relay = _Relay()
        self._relay.progress.connect(self._on_progress)
        self._relay.done.connect(self._on_done)
        self._relay.failed.connect(self._on_failed)
        self._relay.cancelled.connect(self._on_cancelled)
        # Deleting the Task (with the panel that owns it) or quitting stops the work: nothing
        # would be left to show its result. The lambda holds the Event, not the Task.
        stop = self._stop
        self.destroyed.connect(lambda *_: stop.set())
        _stop_all_on_quit()

    # ----------------------------------------------------------------- control

    def start(self) -> Task:
        if self.state != PENDING:
            raise RuntimeError(f"task {self.name!r} has already been started")
        self.state = RUNNING
        _live.add(self._stop)
        QThreadPool.globalInstance().start(_Runnable(self._fn, self._relay, self._stop))
        return self

    def cancel(self) -> None:
        """Ask the work to stop; ``cancelled`` follows once it has (unless it already ended)."""
        if self.state in (PENDING, RUNNING):
            self._stop.set()
        if self.state == PENDING:
            self._end(CANCELLED)
            self.cancelled.emit()

    def connect_outcomes(
        self,
        *,
        progress: Callable[[str, int, int], Any] | None = None,
        finished: Callable[[Any], Any] | None = None,
        failed: Callable[[str], Any] | None = None,
        cancelled: Callable[[], Any] | None = None,
    ) -> Task:
        """Connect the slots given, and delete the Task once it has ended (whichever way).

        The one place panels' Tasks are wired: each panel used to repeat the connections and
        the ``deleteLater`` on all three endings.
        """
        for signal, slot in (
            (self.progress, progress),
            (self.finished, finished),
            (self.failed, failed),
            (self.cancelled, cancelled),
        ):
            if slot is not None:
                signal.connect(slot)
        for ending in (self.finished, self.failed, self.cancelled):
            ending.connect(self.deleteLater)
        return self

    @property
    def running(self) -> bool:
        return self.state == RUNNING

    @property
    def cancel_requested(self) -> bool:
        return self._stop.is_set()

    # ----------------------------------------------------------------- worker results

    @Slot(str, int, int)
    def _on_progress(self, stage: str, done: int, total: int) -> None:
        if self.state == RUNNING and not self._stop.is_set():
            self.progress.emit(stage, done, total)

    @Slot(object)
    def _on_done(self, result: object) -> None:
        if self.state != RUNNING:
            return
        if self._stop.is_set():  # cancelled while the result was on its way: cancel wins
            self._end(CANCELLED)
            self.cancelled.emit()
            return
        self.result = result
        self._end(FINISHED)
        self.finished.emit(result)

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        if self.state != RUNNING:
            return
        if self._stop.is_set():
            self._end(CANCELLED)
            self.cancelled.emit()
            return
        self.error = message
        self._end(FAILED)
        self.failed.emit(message)

    @Slot()
    def _on_cancelled(self) -> None:
        if self.state != RUNNING:
            return
        self._end(CANCELLED)
        self.cancelled.emit()

    def _end(self, state: str) -> None:
        self.state = state
        _live.discard(self._stop)
        self._fn = _spent  # drop what the work held (arrays, specs) once it is over


_live: set[threading.Event] = set()
"""The stop flags of tasks still running, all set when the application quits."""
_quit_hooked: set[int] = set()


def _stop_all_on_quit() -> None:
    app = QCoreApplication.instance()
    if app is None or id(app) in _quit_hooked:
        return
    _quit_hooked.add(id(app))
    app.aboutToQuit.connect(_stop_all)


def _stop_all() -> None:
    """Ask every running task to stop, and give them a moment to do so before Python exits.

    Work left running while the interpreter shuts down fails in odd ways (thread pools that
    refuse new work, modules half torn down); a cancelled import ends within a file or two.
    """
    if not _live:
        return
    for stop in list(_live):
        stop.set()
    QThreadPool.globalInstance().waitForDone(QUIT_WAIT_MS)


def _spent(progress: Progress, should_stop: StopFlag) -> None:
    raise RuntimeError("a task runs only once")


def run_task(
    fn: TaskFunction,
    *,
    parent: QObject,
    on_done: Callable[[Any], None] | None = None,
    on_error: Callable[[str], None] | None = None,
    on_progress: Callable[[str, int, int], None] | None = None,
    on_cancelled: Callable[[], None] | None = None,
    name: str = "",
) -> Task:
    """Create, wire and start a Task in one call; it deletes itself once it has ended.

    ``parent`` is required: a Task nobody holds would be collected with its results still on
    the way, and deleting the parent (a panel closing) stops the work.
    """
    task = Task(fn, name=name, parent=parent)
    task.connect_outcomes(
        progress=on_progress, finished=on_done, failed=on_error, cancelled=on_cancelled
    )
    return task.start()
