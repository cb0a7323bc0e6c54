"""Coalescing a child's events into few pipe messages: a list of events at most every interval.

A training job emits an event per optimizer step (hundreds a second on a small model); sent
one by one, each is pickled and written to the pipe alone and the window's job thread wakes
for each. ``EventBatcher`` collects them and sends one list per ``interval_s`` instead; the
reader (``app/bridge/job_worker.py``) takes a list as the events it holds, in order.

When a batch goes out:

* when an event arrives and ``interval_s`` has passed since the last send (the common case,
  on the emitting thread itself: no thread switch per batch);
* at once for an event ``urgent(event)`` names (a run finishing, the store going busy: what
  the window reacts to straight away), together with everything buffered before it;
* from a small background flusher thread once ``interval_s`` has passed with events still
  waiting and none arriving. Steps stop arriving for whole seconds at a time (validation at
  an epoch's end, the first step's compile, a checkpoint write), and the steps buffered just
  before such a gap must not wait for it. Flushing "before known gaps" would make this
  depend on the training loop's shape, which the batcher does not know (and which changes);
  the thread bounds every event's delay by about ``interval_s`` whatever the loop does. It
  sleeps on a condition while the buffer is empty, so an idle job costs nothing;
* at ``close()`` (use it in a ``finally``, or the batcher as a context manager): nothing
  buffered is lost when the job ends, normally or by an exception. Events emitted after
  ``close`` are sent at once, alone.

``emit`` is safe from several threads at once (the training loop, the system sampler, the
store's busy watch all emit); batches leave in the order their events were emitted, and
only one thread sends at a time (a ``Connection`` is not safe for concurrent sends).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

log = logging.getLogger(__name__)

SEND_EVERY_S = 0.1
"""A job's default: the window redraws about 10 times a second, so finer batches buy nothing."""


def _never(event: Any) -> bool:
    return False


class EventBatcher:
    """``emit`` events; ``send`` receives them as lists, at most about every ``interval_s``.

    ``clock`` is injectable for tests; ``background=False`` leaves out the flusher thread
    (then a batch leaves only on an emit, an urgent event, ``flush`` or ``close``).
    """

    def __init__(
        self,
        send: Callable[[list[Any]], None],
        *,
        interval_s: float = SEND_EVERY_S,
        urgent: Callable[[Any], bool] = _never,
        clock: Callable[[], float] = time.monotonic,
        background: bool = True,
    ) -> None:
        self._send = send
        self.interval_s = interval_s
        self._urgent = urgent
        self._clock = clock
        self._buffer: list[Any] = []
        self._lock = threading.Lock()  # guards the buffer, the last send's time, closed
        self._wake = threading.Condition(self._lock)
        self._send_lock = threading.Lock()  # one batch on the wire at a time, in order
        self._last_sent = clock()
        self._closed = False
        self._thread: threading.Thread | None = None
        if background:
            self._thread = threading.Thread(
                target=self._flush_when_due, name="cnn-lab-event-batcher", daemon=True
            )
            self._thread.start()

    def emit(self, event: Any) -> None:
        """Buffer ``event``; send the buffer if it is due, ``event`` urgent, or closed."""
        with self._lock:
            self._buffer.append(event)
            due = (
                self._closed
                or self._urgent(event)
                or self._clock() - self._last_sent >= self.interval_s
            )
            if not due and len(self._buffer) == 1:
                self._wake.notify()  # the flusher sleeps while the buffer is empty
        if due:
            self.flush()

    def flush(self) -> None:
        """Send what is buffered now, as one list (nothing when the buffer is empty)."""
        with self._send_lock:
            with self._lock:
                batch, self._buffer = self._buffer, []
                self._last_sent = self._clock()
            if batch:
                self._send(batch)

    def close(self) -> None:
        """Stop the flusher and send what is left. Safe to call twice."""
        with self._lock:
            self._closed = True
            self._wake.notify()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        self.flush()

    def __enter__(self) -> EventBatcher:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _flush_when_due(self) -> None:
        """The flusher thread: send a buffer that has waited ``interval_s`` with no emit."""
        while True:
            with self._lock:
                while not self._closed:
                    if not self._buffer:
                        self._wake.wait()
                        continue
                    left = self._last_sent + self.interval_s - self._clock()
                    if left <= 0:
                        break
                    self._wake.wait(left)
                if self._closed:
                    return  # close() sends the rest itself
            try:
                self.flush()
            except Exception:  # an unpicklable event, say: the thread must keep flushing
                log.exception("a batch of events could not be sent")
