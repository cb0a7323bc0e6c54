"""Child processes heard as Qt signals: the one spawn/drain/kill loop, and one-at-a-time runners.

``ChildThread`` is the loop every child of the window runs through (training jobs subclass
it as ``JobWorker``). A runner (the tuner's, the sweep's) lives on the GUI thread: ``_launch``
hands a ``ChildThread`` (a QThread) the child's entry point and arguments; the thread starts
the child in a "spawn" process, waits on its pipe and its sentinel, and relays each message,
so every slot connected to a runner runs on the GUI thread. A child speaks in tuples: its
own kinds (a tuner's ``progress``, a sweep's ``trial``), relayed by the subclass, then one of
``("result", dict)``, ``("error", message, hint)`` or ``("cancelled",)``. The runner ends
with exactly one of ``finished(result)``, ``failed(sentence)`` or ``cancelled()``.

Stop asks the child to stop at its next check and kills it after a grace period, because a
child stuck in a long compile or a CUDA call may not check for a while. ``shutdown`` does the
same with a shorter grace and returns only once the child is gone: the window calls it on
close (and on quit), so no child outlives it.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import signal
import time
from collections.abc import Callable
from multiprocessing.connection import Connection, wait
from typing import Any

from PySide6.QtCore import QCoreApplication, QObject, QThread, Signal, Slot

log = logging.getLogger(__name__)

COALESCE_INTERVAL_S = 0.1
"""Messages of the coalesced kind go out at most about ten a second (the latest one wins)."""
THREAD_WAIT_MS = 15_000
"""How long shutdown waits for the thread once its child has been killed."""
POLL_S = 0.05
"""How often the thread looks at the clock while the child is quiet (stop deadlines, flushes)."""


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


class ChildThread(QThread):
    """Owns one child: starts it, relays its messages, kills it when asked to stop.

    The one spawn/drain/kill loop of the window: training jobs (``JobWorker``), the tuner
    and sweeps all run their child through it. The child is called as
    ``target(*args, conn, stop_event, *after, **kwargs)``. By default its messages are
    relayed one by one as ``message``, those of kind ``coalesce`` (progress, say) held back
    to the latest one and relayed at most every ``COALESCE_INTERVAL_S`` (always before any
    other message), and the end is ``ended(exitcode, killed)``. A subclass that relays in
    its own way overrides the hooks ``_started``, ``_not_started``, ``_receive``, ``_flush``
    and ``_ended``; they all run on this thread.
    """

    message = Signal(object)  # a tuple from the child
    ended = Signal(object, bool)  # exit code (None if unknown), whether it was killed

    def __init__(
        self,
        target: Callable[..., None],
        args: tuple[Any, ...],
        name: str,
        *,
        after: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
        coalesce: str | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.target, self.args, self.after, self.name = target, args, after, name
        self.kwargs = dict(kwargs or {})
        self.coalesce = coalesce
        self._ctx = mp.get_context("spawn")
        self._stop_event = self._ctx.Event()
        self._kill_at: float | None = None
        self._held: tuple[Any, ...] | None = None
        self._last_relayed = 0.0
        self.pid: int | None = None
        self.what = "child"
        """The process as a sentence names it ("the tuning process ..."); runners set it."""

    def request_stop(self, grace_s: float) -> None:
        """Ask the child to stop, and to be killed after ``grace_s`` (safe from any thread).

        A second request can bring the kill forward (closing the window after Stop), never
        push it back.
        """
        self._stop_event.set()
        deadline = time.monotonic() + grace_s
        if self._kill_at is None or deadline < self._kill_at:
            self._kill_at = deadline

    def run(self) -> None:  # runs in the worker thread
        reader, writer = self._ctx.Pipe(duplex=False)
        process = self._ctx.Process(
            target=self.target,
            args=(*self.args, writer, self._stop_event, *self.after),
            kwargs=self.kwargs,
            name=self.name,
        )
        try:
            process.start()
        except Exception as exc:  # no child: whoever waits for its end must still hear one
            log.exception("the %s process could not be started", self.name)
            writer.close()
            reader.close()
            self._not_started(exc)
            return
        writer.close()  # the child holds the only write end, so EOF means it is gone
        self.pid = process.pid
        self._started(process.pid or 0)
        killed = False
        pipe_open = True
        while True:
            watched = [process.sentinel] + ([reader] if pipe_open else [])
            ready = wait(watched, timeout=POLL_S)
            if pipe_open and reader in ready:
                pipe_open = self._drain(reader)
            now = time.monotonic()
            self._flush(now)
            if self._kill_at is not None and now >= self._kill_at and process.is_alive():
                process.kill()
                killed = True
            if process.sentinel in ready:
                while pipe_open and reader.poll(0):  # what it said just before it ended
                    pipe_open = self._drain(reader)
                break
        process.join()
        reader.close()
        self._flush(None)
        self._ended(process.exitcode, killed)

    def _drain(self, reader: Connection) -> bool:
        """Take every waiting message; False once the pipe is closed."""
        try:
            while reader.poll(0):
                self._receive(reader.recv())
        except (EOFError, OSError):
            return False
        return True

    # ------------------------------------------------------------ hooks (this thread)

    def _started(self, pid: int) -> None:
        """The child is running as ``pid``."""

    def _not_started(self, exc: Exception) -> None:
        """The child could not be started: say so as the child would have, then end."""
        self.message.emit(("error", f"The {self.what} process could not be started: {exc}.", ""))
        self.ended.emit(None, False)

    def _receive(self, message: Any) -> None:
        """One message from the child."""
        if self.coalesce is not None and message and message[0] == self.coalesce:
            self._held = message
            return
        self._release()  # held progress first, so a bar ends where it got to
        self.message.emit(message)

    def _flush(self, now: float | None) -> None:
        """Relay what is held back if it is due (``now`` None: the child is gone, all of it)."""
        due = now is None or now - self._last_relayed >= COALESCE_INTERVAL_S
        if due and self._held is not None:
            self._release()
            self._last_relayed = now or 0.0

    def _ended(self, exitcode: int | None, killed: bool) -> None:
        """The child is gone and everything it said has been relayed."""
        self.ended.emit(exitcode, killed)

    def _release(self) -> None:
        if self._held is not None:
            self.message.emit(self._held)
            self._held = None


class ChildRunner(QObject):
    """Runs one child at a time; subclasses start it and relay their own message kinds."""

    finished = Signal(dict)
    failed = Signal(str)
    cancelled = Signal()

    what = "child"
    """The process as a sentence names it ("the tuning process ...")."""
    stop_grace_s = 2.0
    shutdown_grace_s = 0.5

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._thread: ChildThread | None = None
        self._outcome: tuple[str, Any] | None = None
        self._stopping = False
        app = QCoreApplication.instance()
        if app is not None:  # quitting with a child running must not leave it behind
            app.aboutToQuit.connect(self.shutdown)

    @property
    def running(self) -> bool:
        return self._thread is not None

    @property
    def child_pid(self) -> int | None:
        """The child's process id while it runs (for tests and the curious)."""
        return self._thread.pid if self._thread is not None else None

    def _launch(self, thread: ChildThread) -> None:
        if self._thread is not None:
            raise RuntimeError(f"a {self.what} process is already running; stop it first")
        self._outcome = None
        self._stopping = False
        thread.what = self.what
        thread.message.connect(self._on_message)
        thread.ended.connect(self._on_ended)
        self._thread = thread
        thread.start()

    def stop(self) -> None:
        """Ask the child to stop; ``finished`` (with what it has) or ``cancelled`` follows."""
        if self._thread is not None:
            self._stopping = True
            self._thread.request_stop(self.stop_grace_s)

    def shutdown(self) -> None:
        """Stop the child and wait until it and its thread are gone (window closing)."""
        thread = self._thread
        if thread is None:
            return
        self._stopping = True
        thread.request_stop(self.shutdown_grace_s)
        thread.wait(THREAD_WAIT_MS)
        # The thread's last signals are queued to this (GUI) thread: nobody waits for them now.
        self._forget_thread()

    def _relay(self, message: tuple[Any, ...]) -> None:
        """A message of the child's own kinds (the subclass's signals)."""

    @Slot(object)
    def _on_message(self, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "result":
            self._outcome = ("result", message[1])
        elif kind == "error":
            _, text, hint = message
            self._outcome = ("error", f"{text} {hint}" if hint else text)
        elif kind == "cancelled":
            self._outcome = ("cancelled", None)
        else:
            self._relay(message)

    @Slot(object, bool)
    def _on_ended(self, exitcode: int | None, killed: bool) -> None:
        if self._thread is None:
            return  # shut down already; nobody is listening for the outcome
        stopping = self._stopping
        self._forget_thread()
        kind, value = self._outcome or ("", None)
        if kind == "result":
            self.finished.emit(value)  # a result that made it out is worth showing, stopped or not
        elif stopping or kind == "cancelled":
            self.cancelled.emit()  # an error on the way out of a stop is the stop's doing
        elif kind == "error":
            self.failed.emit(value)
        else:
            self.failed.emit(describe_exit(exitcode, self.what))

    def _forget_thread(self) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.wait()
            thread.message.disconnect(self._on_message)
            thread.ended.disconnect(self._on_ended)
            thread.deleteLater()
