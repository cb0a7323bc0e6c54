"""The job process's write path: queue points on the training thread, write them in batches.

Training must never wait on SQLite (a GUI reading the store, another job committing), so the
training thread only appends to an in-memory queue. A background thread owns its own RunStore
(SQLite connections belong to the thread that opened them) and, about once per ``interval_s``,
writes everything queued in one transaction together with the run's heartbeat. The heartbeat is
written even when nothing is queued, so a long step (a big validation pass, a compile) does not
look like a crash to the sweep.

A failed write keeps its batch and retries on the next tick: queued points are never dropped,
and ``error`` says what went wrong meanwhile. The one exception is a disk that stays full:
after ``DISK_FULL_GIVE_UP_S`` of failed writes the writer stops and ``failure`` says so, and
the job fails the run with that sentence (everything committed before is kept). Retrying
forever would let the run finish "completed" with its last metrics silently missing.

Non-finite values are passed to SQLite as they are: +inf and -inf are stored as REAL infinities,
and NaN becomes NULL (SQLite has no NaN), which ``RunStore.metrics`` reads back as NaN. A
diverging loss therefore stays visible instead of being dropped or failing the batch.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections.abc import Mapping

from cnn_lab.engine.errors import StoreError
from cnn_lab.engine.store.locations import open_store
from cnn_lab.engine.store.repository import RunRepository
from cnn_lab.engine.store.store import MetricPoint, SystemSample

_log = logging.getLogger(__name__)

DISK_FULL_GIVE_UP_S = 60.0
"""How long writes may fail on a full disk before the run is failed (read at each failure)."""


def _disk_full(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "disk is full" in text or "no space left" in text or getattr(exc, "errno", 0) == 28


class BatchedWriter:
    """Buffers a run's metrics and system samples and writes them from a background thread."""

    def __init__(
        self,
        db_path: str | os.PathLike[str],
        run_id: int,
        interval_s: float = 1.0,
        *,
        busy_timeout_ms: int = 15000,
        open_timeout_s: float = 60.0,
    ) -> None:
        """Start the writer thread and wait until it has opened the store.

        Raises ``StoreError`` here, on the caller's thread, when the store cannot be opened,
        so a job fails at its start rather than losing its metrics silently.
        """
        self._db_path = db_path
        self._run_id = int(run_id)
        self._interval_s = float(interval_s)
        self._busy_timeout_ms = busy_timeout_ms
        self._cond = threading.Condition()  # guards everything below
        self._metrics: list[MetricPoint] = []
        self._samples: list[SystemSample] = []
        self._queued = 0  # points ever appended
        self._written = 0  # points ever committed
        self._closed = False
        self._close_deadline = 0.0
        self._error: StoreError | None = None
        self._failure: StoreError | None = None
        self._full_since: float | None = None
        self._wake = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"cnn-lab-store-writer-{run_id}", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(open_timeout_s):
            self._abandon()
            raise StoreError(f"The run store at {db_path} did not open within {open_timeout_s} s.")
        if self._error is not None:  # set only by a failed open at this point
            raise self._error
        # A job that forgets close() still gets its last points written at interpreter exit.
        atexit.register(self.close)

    # ------------------------------------------------------------------ training thread

    def metric(self, step: int, epoch: int, key: str, value: float) -> None:
        """Queue one metric point, stamped now."""
        self.metrics(step, epoch, {key: value})

    def metrics(self, step: int, epoch: int, mapping: Mapping[str, float]) -> None:
        """Queue several metrics of one step; they land in the store in the same transaction."""
        now = time.time()
        # Convert here, on the caller's thread: a value SQLite cannot bind would otherwise
        # poison the batch and be retried forever.
        points = [
            MetricPoint(self._run_id, int(step), int(epoch), str(key), float(value), now)
            for key, value in mapping.items()
        ]
        with self._cond:
            self._check_open()
            self._metrics.extend(points)
            self._queued += len(points)

    def sample(self, time: float, key: str, value: float) -> None:
        """Queue one system sample taken at wall-clock ``time``."""
        point = SystemSample(self._run_id, float(time), str(key), float(value))
        with self._cond:
            self._check_open()
            self._samples.append(point)
            self._queued += 1

    def flush(self, timeout: float = 10.0) -> bool:
        """Write everything queued so far now; return whether it was written within ``timeout``."""
        with self._cond:
            target = self._queued
            if self._written >= target:
                return True
        self._wake.set()
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._written < target:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._thread.is_alive():
                    return False
                self._cond.wait(min(remaining, 0.1))
            return True

    def close(self, timeout: float = 30.0) -> bool:
        """Write what is left and stop the thread; return whether every point was written.

        Safe to call twice. Retries a failing write until ``timeout`` before giving up.
        """
        with self._cond:
            if not self._closed:
                self._closed = True
                self._close_deadline = time.monotonic() + timeout
        atexit.unregister(self.close)
        self._wake.set()
        self._thread.join(timeout + 1.0)
        with self._cond:
            return self._written >= self._queued

    @property
    def error(self) -> StoreError | None:
        """The last write failure, or None once a later write succeeded."""
        return self._error

    @property
    def failure(self) -> StoreError | None:
        """Set once the writer gave up (a disk full for too long): the run cannot be recorded."""
        return self._failure

    @property
    def pending(self) -> int:
        """Points queued but not yet committed."""
        with self._cond:
            return self._queued - self._written

    def __enter__(self) -> BatchedWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("This BatchedWriter is closed; open a new one to write more.")

    def _abandon(self) -> None:
        with self._cond:
            self._closed = True
            self._close_deadline = 0.0
        self._wake.set()

    # -------------------------------------------------------------------- writer thread

    def _run(self) -> None:
        try:
            store = open_store(self._db_path, busy_timeout_ms=self._busy_timeout_ms)
        except Exception as exc:
            self._error = exc if isinstance(exc, StoreError) else StoreError(str(exc))
            self._ready.set()
            return
        self._ready.set()
        try:
            self._loop(store)
        finally:
            store.close()

    def _loop(self, store: RunRepository) -> None:
        metrics: list[MetricPoint] = []  # taken from the queue, not yet committed
        samples: list[SystemSample] = []
        next_tick = time.monotonic()
        while True:
            next_tick += self._interval_s
            self._wake.wait(max(0.0, next_tick - time.monotonic()))
            self._wake.clear()
            with self._cond:
                closing, deadline = self._closed, self._close_deadline
                metrics.extend(self._metrics)
                samples.extend(self._samples)
                self._metrics, self._samples = [], []
            if self._write(store, metrics, samples):
                metrics, samples = [], []
            if self._failure is not None:
                return
            if closing and (not (metrics or samples) or time.monotonic() >= deadline):
                return
            next_tick = max(next_tick, time.monotonic() - self._interval_s)

    def _write(
        self, store: RunRepository, metrics: list[MetricPoint], samples: list[SystemSample]
    ) -> bool:
        """Commit one batch with the heartbeat; on failure keep it for the next tick."""
        try:
            store.write_batch(self._run_id, metrics, samples)
        except Exception as exc:
            error = (
                exc
                if isinstance(exc, StoreError)
                else StoreError(f"The run store at {store.path} could not be written: {exc}.")
            )
            if self._error is None:
                kept = len(metrics) + len(samples)
                _log.warning("%s Will retry with %d points kept.", error, kept)
            self._error = error
            self._give_up_if_full(exc, store, len(metrics) + len(samples))
            return False
        self._full_since = None
        if self._error is not None:
            _log.info("The run store at %s is writable again.", store.path)
        with self._cond:
            self._error = None
            self._written += len(metrics) + len(samples)
            self._cond.notify_all()
        return True

    def _give_up_if_full(self, exc: BaseException, store: RunRepository, unwritten: int) -> None:
        if not _disk_full(exc):
            self._full_since = None
            return
        now = time.monotonic()
        if self._full_since is None:
            self._full_since = now
        waited = now - self._full_since
        if waited >= DISK_FULL_GIVE_UP_S:
            self._failure = StoreError(
                f"The disk is full: the run store at {store.path} could not be written for "
                f"{waited:.0f} s, so the run stopped with {unwritten:,} points unsaved.",
                "Free space on that disk, then resume the run; everything saved before is kept.",
            )
            _log.error("%s", self._failure)
