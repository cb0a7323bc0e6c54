"""The job process's write path: queue points on the training thread, write them in batches.

Training must never wait on SQLite (a GUI reading the store, another job committing), so the
training thread only appends to an in-memory queue. A background thread owns its own RunStore
(SQLite connections belong to the thread that opened them) and, about once per ``interval_s``,
writes everything queued in one transaction together with the run's heartbeat. The heartbeat is
written even when nothing is queued, so a long step (a big validation pass, a compile) does not
look like a crash to the sweep.

A failed write keeps its batch and retries on the next tick: queued points are never dropped,
and ``error`` says what went wrong meanwhile. Two failures are given up on, each after a
bounded wait, because retrying forever would let the run finish "completed" with its last
metrics silently missing: a disk that stays full for ``DISK_FULL_GIVE_UP_S``, and a store
whose server cannot be reached (a lab's PostgreSQL restarting, a network gone) for
``STORE_GONE_GIVE_UP_S`` (``CNN_LAB_STORE_WAIT_S`` overrides it, for flaky networks). Then the
writer stops, ``failure`` says so, and the job fails the run with that sentence; everything
committed before is kept. Errors are told apart by what they are (``_disk_full``, and
``_server_gone``: a ``StoreUnreachable``), not by backend, so SQLite's stores, which never
raise it, behave as they always did.

While the server is away the points wait in memory, about 170 bytes each: 1,000 points a
second for the default five minutes is some 50 MB. ``KEPT_POINTS_CAP`` bounds it: a run
logging so fast that it would keep more gives up sooner, with the same sentence, rather than
take the machine's memory.

When the server answers again, two things are settled before going on:

- a batch whose connection dropped in the middle of its write may have been committed
  (the server got the COMMIT, its answer was lost): before writing it again, the writer
  reads back its last point (``last_metric``, or the samples of its last sample's key) and
  writes only what is not there, so no point is stored twice. A key's steps never go back
  within a run, so its last point is the one ``last_metric`` finds;
- the lease: the run's heartbeat went stale while the server was away, and whoever swept
  meanwhile saw a crashed run (nobody can sweep a server that is down, so this is a network
  that kept this job out while others got in, or a sweep in the moment the server was back
  before this job's next write). A run swept as crashed may have been resumed by then,
  by another job that now writes it. The writer cannot revive the run and be sure that
  nobody acted on the crash (the store offers no check-and-revive in one transaction), so
  after its first write following an outage it reads the run back, and if it is no longer
  running under this process it stops with a ``failure`` that says so, like any lease
  holder whose lease lapsed. Resuming continues from the last checkpoint.

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

from cnn_lab.engine.errors import StoreError, StoreUnreachable
from cnn_lab.engine.store.liveness import (
    STORE_WAIT_ENV,
    store_wait_s,
    this_host,
)
from cnn_lab.engine.store.locations import describe, open_store
from cnn_lab.engine.store.repository import RunRepository
from cnn_lab.engine.store.status import RUNNING
from cnn_lab.engine.store.store import MetricPoint, SystemSample

_log = logging.getLogger(__name__)

DISK_FULL_GIVE_UP_S = 60.0
"""How long writes may fail on a full disk before the run is failed (read at each failure)."""

KEPT_POINTS_CAP = 1_000_000
"""The most points kept in memory while the server is away (about 170 MB) before giving up."""


def _disk_full(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "disk is full" in text or "no space left" in text or getattr(exc, "errno", 0) == 28


def _server_gone(exc: BaseException) -> bool:
    """Whether the store's server could not be reached or dropped the connection: a backend
    raises ``StoreUnreachable`` for it (PostgreSQL's ``ServerGone``); SQLite never does."""
    return isinstance(exc, StoreUnreachable)


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
        self._gone_since: float | None = None  # the store's server unreachable since then
        self._doubt: tuple[int, int] | None = None  # (metrics, samples) that may have landed
        self._recheck = False  # read the lease back after the next write (an outage ended)
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
        """Set once the writer gave up (a disk full or the server unreachable for too long,
        or the run taken from this job meanwhile): the run cannot be recorded."""
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
        """Commit one batch with the heartbeat; on failure keep it for the next tick.

        A batch in doubt (see the module's docstring) is settled first, and what of it had
        landed is dropped from the front of ``metrics`` and ``samples`` in place.
        """
        try:
            if self._doubt is not None:
                self._settle(store, metrics, samples)
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
            if _server_gone(exc):
                self._wait_for_server(error, len(metrics), len(samples))
            else:
                self._gone_since = None
                self._give_up_if_full(exc, store, len(metrics) + len(samples))
            return False
        self._full_since = self._gone_since = None
        if self._error is not None:
            _log.info("The run store at %s is writable again.", describe(str(self._db_path)))
        with self._cond:
            self._error = None
            self._written += len(metrics) + len(samples)
            self._cond.notify_all()
        if self._recheck:
            self._check_lease(store)
        return True

    def _wait_for_server(self, error: StoreError, metrics: int, samples: int) -> None:
        """Keep the batch while the server is away, saying so in ``error``; give up (with
        ``failure``) after ``store_wait_s()`` or past ``KEPT_POINTS_CAP`` points."""
        if self._doubt is None and metrics + samples:
            # The write may have dropped after its COMMIT reached the server; the settle
            # failing instead leaves the doubt it was settling as it was.
            self._doubt = (metrics, samples)
        self._recheck = True
        self._full_since = None
        now = time.monotonic()
        if self._gone_since is None:
            self._gone_since = now
        waited, limit, kept = now - self._gone_since, store_wait_s(), metrics + samples
        self._error = StoreError(
            f"{error.message} Waiting for the server: {kept:,} points are kept in memory and "
            f"written when it answers (for {max(0.0, limit - waited):.0f} s more).",
            error.hint,
        )
        if waited < limit and kept < KEPT_POINTS_CAP:
            return
        where = describe(str(self._db_path))
        self._failure = StoreError(
            f"The run store at {where} could not be reached for {waited:.0f} s, so the run "
            f"stopped with {kept:,} points not written; everything written before is kept.",
            "Check that the database server is running and reachable, then resume the run"
            + (
                f" (set {STORE_WAIT_ENV} to wait longer than {limit:g} s)."
                if waited >= limit
                else f" ({kept:,} points waiting was as many as this job keeps in memory)."
            ),
        )
        _log.error("%s", self._failure)

    def _settle(
        self, store: RunRepository, metrics: list[MetricPoint], samples: list[SystemSample]
    ) -> None:
        """Drop from the batch's front the part whose write dropped after it had landed."""
        assert self._doubt is not None
        count_m, count_s = self._doubt
        landed = self._landed(store, metrics[:count_m], samples[:count_s])
        self._doubt = None
        if not landed:
            return
        _log.info("The batch whose connection dropped had been written; it is not written twice.")
        del metrics[:count_m]
        del samples[:count_s]
        with self._cond:
            self._written += count_m + count_s
            self._cond.notify_all()

    def _landed(
        self, store: RunRepository, metrics: list[MetricPoint], samples: list[SystemSample]
    ) -> bool:
        """Whether these points (one batch's, in the order queued) are in the store: their
        last point is, found by its step and time (a key's steps never go back in a run)."""
        if metrics:
            last = max((p for p in metrics if p.key == metrics[-1].key), key=_step_time)
            stored = store.last_metric(self._run_id, last.key)
            return stored is not None and _step_time(stored) == _step_time(last)
        sample = samples[-1]
        return any(s.time == sample.time for s in store.system_samples(self._run_id, sample.key))

    def _check_lease(self, store: RunRepository) -> None:
        """After an outage, stop if the run is no longer running under this process."""
        try:
            run = store.get_run(self._run_id)
        except Exception:  # the server went again: look after the next write
            return
        self._recheck = False
        if run.status == RUNNING and (run.host, run.pid) == (this_host(), os.getpid()):
            return
        what = "taken over by another job" if run.status == RUNNING else f"marked {run.status}"
        self._failure = StoreError(
            f"Run {self._run_id} was {what} while this job could not reach the run "
            "store (its heartbeat went stale meanwhile), so this job stopped rather than "
            "write into a run that may be resumed elsewhere; everything written before is kept.",
            "Resume the run to continue from its last checkpoint.",
        )
        _log.error("%s", self._failure)

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


def _step_time(point: MetricPoint) -> tuple[int, float]:
    return point.step, point.time
