"""Noticing that the run store is busy: writes waiting for another program's write lock.

SQLite waits for a held write lock inside its own busy handler (up to the busy timeout), so a
job whose store is locked by another program looks, from outside, like a job that went quiet.
Every ``RunStore`` write registers here while it waits for the lock; a job's ``BusyWatch``
thread polls the longest wait and tells the window once it passes ``BUSY_AFTER_S`` and again
when it clears, so the person sees why a run has not saved, instead of guessing.

The registry is process-wide because the waits happen on several threads at once (the batched
writer's, the training thread's own summary and checkpoint writes) and each job is its own
process.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

BUSY_AFTER_S = 2.0
"""A write that waits longer than this for the lock is worth telling the person about."""
POLL_S = 0.25
"""How often the watch looks; short against ``BUSY_AFTER_S``, cheap (a lock and a dict)."""
STORE_BUSY_KIND = "store_busy"


@dataclass(frozen=True)
class StoreBusy:
    """A job's writes wait for the store (``waiting``), or no longer do; crosses the pipe."""

    run_id: int
    waiting: bool
    waited_s: float
    kind: str = STORE_BUSY_KIND


class LockWaits:
    """Which writes of this process wait for SQLite's write lock right now, and since when."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._since: dict[int, float] = {}
        self._ids = itertools.count()

    @contextlib.contextmanager
    def waiting(self) -> Iterator[None]:
        """Wrap the statement that takes the write lock (``BEGIN IMMEDIATE``)."""
        token = next(self._ids)
        with self._lock:
            self._since[token] = time.monotonic()
        try:
            yield
        finally:
            with self._lock:
                del self._since[token]

    def longest(self) -> float:
        """Seconds the longest-waiting write has waited so far; 0 when none waits."""
        with self._lock:
            oldest = min(self._since.values(), default=None)
        return 0.0 if oldest is None else time.monotonic() - oldest


LOCK_WAITS = LockWaits()


class BusyWatch:
    """Sends ``StoreBusy`` for ``run_id`` through ``emit`` when the store's writes wait long.

    One event when a wait passes ``after_s``, one when no write waits any more: the window
    shows a line in between. ``emit`` is called from the watch's own thread.
    """

    def __init__(
        self,
        emit: Callable[[Any], None],
        *,
        after_s: float = BUSY_AFTER_S,
        poll_s: float = POLL_S,
        waits: LockWaits = LOCK_WAITS,
    ) -> None:
        self._emit = emit
        self._after_s = after_s
        self._poll_s = poll_s
        self._waits = waits
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, run_id: int) -> BusyWatch:
        """Start watching on behalf of ``run_id``; returns self."""
        self._thread = threading.Thread(
            target=self._run, args=(int(run_id),), name=f"cnn-lab-store-busy-{run_id}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop watching (a wait still shown is cleared first). Safe before ``start``."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self, run_id: int) -> None:
        shown_since: float | None = None
        while True:
            stopping = self._stop.wait(self._poll_s)
            waited = self._waits.longest()
            if shown_since is None and waited >= self._after_s and not stopping:
                shown_since = time.monotonic() - waited
                self._send(StoreBusy(run_id, True, waited))
            elif shown_since is not None and (waited == 0.0 or stopping):
                self._send(StoreBusy(run_id, False, time.monotonic() - shown_since))
                shown_since = None
            if stopping:
                return

    def _send(self, event: StoreBusy) -> None:
        with contextlib.suppress(Exception):  # a closed pipe must not end the watch's job
            self._emit(event)
