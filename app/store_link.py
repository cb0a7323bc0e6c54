"""The window's one connection to the run store, on a thread of its own.

The window never waits on the store. A SQLite file on a busy disk, a lab's PostgreSQL a
network away, or one that has just gone down must not freeze a click: every read a panel
shows and every edit a person makes (rename, tag, note, archive, delete) is a small function
``work(store)`` handed to ``StoreLink.call``. One thread runs them in the order given, on one
store it opened once (SQLite connections belong to the thread that opened them, so the
thread owns it), and hands each result back to a callback on the GUI thread.

Why one thread and not the task pool: the calls are short and ordered (a rename, then the
listing that shows it), one connection per window is what the lab's server should see, and
a pool would open a store per task.

What a person sees when the store is slow or gone:

- a call still running after ``SLOW_S`` puts "Waiting for the run store ..." in ``status``;
- a store that cannot be reached (``StoreUnreachable``: a refused connection, a lost one)
  is closed, ``status`` says so and when the next try is, and the same call is tried again
  with a growing pause (``RETRY_S``) until it works; calls given meanwhile wait their turn,
  and a newer call with the same ``key`` (a listing asked for again) replaces the queued one,
  so nothing piles up while the server is away;
- any other refusal (a wrong password, another application's database, a run deleted
  meanwhile) goes to the call's ``failed`` callback as a sentence, or to ``status`` when it
  has none.

``idle()`` says whether every call given has been answered: tests wait on it.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import queue
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal, Slot

from cnn_lab.engine.errors import StoreUnreachable, UserError
from cnn_lab.engine.store import RunRepository, open_store
from cnn_lab.engine.store.locations import describe

log = logging.getLogger(__name__)

Work = Callable[[RunRepository], Any]

SLOW_S = 1.0
"""A call running longer than this is shown in the status line: the person knows why the
table has not changed yet."""

RETRY_S = (1.0, 2.0, 4.0, 8.0, 15.0, 30.0)
"""Pauses between tries while the store is unreachable: quick at first (a restarting server
is back in seconds), then every half minute, never giving up while the window is open."""


@dataclass
class _Call:
    token: int
    work: Work
    key: str | None
    done: Callable[[Any], None] | None
    failed: Callable[[str], None] | None
    what: str
    replaced: bool = field(default=False)


class _Relay(QObject):
    """Emitted from the store's thread, received on the GUI thread (a queued connection)."""

    answered = Signal(int, bool, object)  # token, ok, result or sentence
    began = Signal(str)
    status = Signal(str)


class StoreLink(QObject):
    """Runs ``work(store)`` on the store's own thread; answers on the GUI thread."""

    status = Signal(str)
    """One line about the store for the status bar; empty when all is well again."""

    def __init__(self, location: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._location = location
        self._tokens = itertools.count(1)
        self._queue: queue.Queue[_Call | None] = queue.Queue()
        self._waiting: dict[int, _Call] = {}  # given and not yet answered, on the GUI side
        self._keyed: dict[str, _Call] = {}  # the newest queued call of each key
        self._lock = threading.Lock()  # guards _keyed between the two threads
        self._wake = threading.Event()  # cuts a retry pause short (closing, a new location)
        self._closed = False
        self._store: RunRepository | None = None
        self._opened_for = ""
        self._status = ""
        self._down = False  # the thread is waiting to try an unreachable store again
        self._relay = _Relay()
        self._relay.answered.connect(self._on_answered)
        self._relay.began.connect(self._on_began)
        self._relay.status.connect(self._on_thread_status)
        self._slow = QTimer(self)
        self._slow.setSingleShot(True)
        self._slow.timeout.connect(self._on_slow)
        self._running = ""
        # Started by the first call: a state made for a test or a form that never reads the
        # store costs no thread.
        self._thread = threading.Thread(target=self._serve, name="cnn-lab-store", daemon=True)
        _open_links.add(self)
        _close_all_on_quit()

    # ------------------------------------------------------------------ GUI thread

    @property
    def location(self) -> str:
        return self._location

    def set_location(self, location: str) -> None:
        """Use another store from the next call on (the one open now is closed first)."""
        self._location = location
        self._wake.set()

    def call(
        self,
        work: Work,
        done: Callable[[Any], None] | None = None,
        failed: Callable[[str], None] | None = None,
        *,
        key: str | None = None,
        what: str = "",
    ) -> None:
        """Run ``work(store)`` on the store's thread; ``done(result)`` or ``failed(sentence)``
        follow on the GUI thread.

        ``key`` names a call that only its newest instance matters for (a panel's listing):
        a queued call with the same key is dropped unanswered when this one is given.
        ``what`` is how the status line names the call while it is slow.
        """
        if self._closed:
            return
        if not self._thread.is_alive() and self._thread.ident is None:
            self._thread.start()
        item = _Call(next(self._tokens), work, key, done, failed, what)
        self._waiting[item.token] = item
        if key is not None:
            with self._lock:
                older = self._keyed.get(key)
                if older is not None:
                    older.replaced = True
                    self._waiting.pop(older.token, None)
                self._keyed[key] = item
        self._queue.put(item)

    def idle(self) -> bool:
        """Whether every call given so far has been answered."""
        return not self._waiting

    @property
    def unreachable(self) -> str:
        """While the store cannot be reached: the sentence the status bar shows; else "".
        What writes at once (Train's new run) refuses then instead of waiting."""
        return self._status if self._down else ""

    def close(self, wait_s: float = 5.0) -> None:
        """Stop the thread after the call it is running (edits already given still run), and
        close the store. Answers that come later are not delivered."""
        if self._closed:
            return
        self._closed = True
        _open_links.discard(self)
        with contextlib.suppress(RuntimeError):  # the timer may be gone with the window
            self._slow.stop()
        self._waiting.clear()
        if self._thread.ident is None:
            return
        self._queue.put(None)
        self._wake.set()
        self._thread.join(wait_s)

    @Slot(int, bool, object)
    def _on_answered(self, token: int, ok: bool, result: object) -> None:
        item = self._waiting.pop(token, None)
        if not self._waiting:
            self._running = ""
            self._slow.stop()
        # An answer means the store works: a waiting line or an old refusal is over.
        if ok or (not self._waiting and self._status.startswith("Waiting")):
            self._show_status("")
        if item is None or self._closed:
            return
        if ok:
            if item.done is not None:
                item.done(result)
        elif item.failed is not None:
            item.failed(str(result))
        else:
            self._show_status(str(result))

    @Slot(str)
    def _on_thread_status(self, text: str) -> None:
        self._down = bool(text)  # the thread speaks only of retrying, and of being back
        self._show_status(text)

    @Slot(str)
    def _on_began(self, what: str) -> None:
        self._running = what or "a read"
        self._slow.start(int(SLOW_S * 1000))

    def _on_slow(self) -> None:
        if self._running and not self._status:
            self._show_status(
                f"Waiting for the run store ({self._running}) at {describe(self._location)}..."
            )

    @Slot(str)
    def _show_status(self, text: str) -> None:
        if text != self._status:
            self._status = text
            self.status.emit(text)

    # --------------------------------------------------------------- store thread

    def _serve(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                break
            with self._lock:
                if item.replaced:
                    continue
                if item.key is not None and self._keyed.get(item.key) is item:
                    del self._keyed[item.key]
            self._emit(self._relay.began, item.what)
            ok, result = self._attempt(item)
            self._emit(self._relay.answered, item.token, ok, result)
        self._close_store()

    def _attempt(self, item: _Call) -> tuple[bool, Any]:
        """Run one call, trying again while the store is unreachable (until closing)."""
        pauses = itertools.chain(RETRY_S, itertools.repeat(RETRY_S[-1]))
        was_down = False
        while True:
            try:
                result = item.work(self._store_now())
            except StoreUnreachable as exc:
                self._close_store()
                if self._closed:
                    return False, str(exc)
                pause = next(pauses)
                was_down = True
                self._emit(self._relay.status, f"{exc} Trying again in {pause:.0f} s.")
                self._wake.clear()
                self._wake.wait(pause)
                continue
            except UserError as exc:
                return False, str(exc)
            except Exception as exc:  # a bug in a panel's call: a line, and the log
                log.exception("A run store call failed")
                return False, f"{type(exc).__name__}: {exc}"
            if was_down:
                self._emit(self._relay.status, "")
            return True, result

    def _store_now(self) -> RunRepository:
        """The open store, opened (once) for the location now chosen."""
        location = self._location
        if self._store is not None and self._opened_for != location:
            self._close_store()
        if self._store is None:
            self._store = open_store(location)
            self._opened_for = location
        return self._store

    def _close_store(self) -> None:
        store, self._store = self._store, None
        if store is not None:
            with contextlib.suppress(Exception):
                store.close()

    @staticmethod
    def _emit(signal: Any, *args: Any) -> None:
        # RuntimeError: the window (and the relay with it) is gone while the thread ends.
        with contextlib.suppress(RuntimeError):
            signal.emit(*args)


_open_links: weakref.WeakSet[StoreLink] = weakref.WeakSet()
_quit_hooked: set[int] = set()


def close_all() -> None:
    """Close every link still open (the application quitting; a test ending)."""
    for link in list(_open_links):
        link.close()


def _close_all_on_quit() -> None:
    from PySide6.QtCore import QCoreApplication

    app = QCoreApplication.instance()
    if app is None or id(app) in _quit_hooked:
        return
    _quit_hooked.add(id(app))
    app.aboutToQuit.connect(close_all)


def wait_until_idle(link: StoreLink, timeout_s: float = 30.0) -> bool:
    """Process events until ``link`` has answered everything (for scripts and the standalone
    panels; tests use ``qtbot.waitUntil(link.idle)``)."""
    from PySide6.QtCore import QCoreApplication

    deadline = time.monotonic() + timeout_s
    while not link.idle() and time.monotonic() < deadline:
        QCoreApplication.processEvents()
        time.sleep(0.005)
    return link.idle()


__all__ = ["RETRY_S", "SLOW_S", "StoreLink", "close_all", "wait_until_idle"]
