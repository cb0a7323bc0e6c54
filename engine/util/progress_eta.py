"""Time left for a task that reports ``done`` of ``total``: the number behind every ETA shown.

The rate is smoothed over the recent past (an exponential moving average of seconds per unit),
because the first units of most tasks are slower (imports warm caches, models load) and a
plain ``elapsed / done`` would keep the ETA too high for the whole task. Nothing is estimated
until a little time and a little work have passed: an ETA from one unit is noise.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from cnn_lab.engine.util.durations import format_duration

MIN_ELAPSED_S = 1.0
"""No ETA before the task has run this long (a guess from a fraction of a second is noise)."""

SMOOTHING = 0.3
"""Weight of the newest rate in the moving average (higher follows changes faster)."""


class EtaEstimator:
    """Feed ``update(done, total)`` as progress arrives; ``seconds_left()`` says what is left.

    A new ``total`` or a ``done`` that goes backwards (a new stage) starts the estimate over.
    ``clock`` is injectable so tests step time instead of sleeping.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.reset()

    def reset(self) -> None:
        self._started = self._clock()
        self._last_time = self._started
        self._last_done = 0
        self._total = 0
        self._per_unit: float | None = None

    def update(self, done: int, total: int) -> None:
        now = self._clock()
        if total != self._total or done < self._last_done:
            self.reset()
            self._total = total
            self._last_done = done
            return
        if done > self._last_done:
            rate = (now - self._last_time) / (done - self._last_done)
            self._per_unit = (
                rate
                if self._per_unit is None
                else SMOOTHING * rate + (1 - SMOOTHING) * self._per_unit
            )
            self._last_time, self._last_done = now, done

    def seconds_left(self) -> float | None:
        """Seconds until ``done`` reaches ``total``; None while unknown (too early, no total)."""
        if self._total <= 0 or self._per_unit is None:
            return None
        if self._last_time - self._started < MIN_ELAPSED_S:
            return None
        left = max(0, self._total - self._last_done) * self._per_unit
        # Time since the last report already counts against the estimate.
        return max(0.0, left - (self._clock() - self._last_time))


def progress_text(stage: str, done: int, total: int, seconds_left: float | None) -> str:
    """``Evaluating · 120 of 500 · 0:42 left``: what a long task says beside its bar."""
    parts = [stage] if stage else []
    if total > 0:
        parts.append(f"{min(done, total):,} of {total:,}")
    if seconds_left is not None:
        parts.append(f"{format_duration(seconds_left)} left")
    return " · ".join(parts)


class StageProgress:
    """A task's ``progress(stage, done, total)`` calls in words, the ETA restarting with each
    stage (decoding's rate says nothing about the duplicate search that follows)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.eta = EtaEstimator(clock)
        self.stage = ""

    def start(self, stage: str = "") -> None:
        """A new task: forget the last one's rate."""
        self.eta.reset()
        self.stage = stage

    def update(self, stage: str, done: int, total: int) -> str:
        if stage != self.stage:
            self.eta.reset()
            self.stage = stage
        left = None
        if total > 0:
            self.eta.update(done, total)
            left = self.eta.seconds_left()
        return progress_text(stage, done, total, left)
