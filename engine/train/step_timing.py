"""Where each optimizer step's wall time goes: waiting for data, copying it, computing, the rest.

The clock wraps the loader's iterator, so "data" is exactly the time the loop waits for the
next batch. "Compute" ends when the loop calls ``step_done`` after the optimizer step; "other"
is the time from there to the next batch request: recording metrics, sending events, the stop
check. The four parts add up to the host's wall time of the steps.

On a GPU the work is asynchronous and the loop does not synchronise every step (it reads the
losses once per logging interval, see engine/train/step_log.py), so a step's "compute" is the
host's time to queue it, plus any wait for the device: the device cannot run further ahead
than its launch queue, so over a window of steps the host's times add up to the device's. The
copy of a batch overlaps the compute; once per report window (about a second) the clock
synchronises the device before and right after a batch arrives, which measures what a copy
costs at the price of two syncs a second, and that mean is moved from compute to copy for
every step.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

import torch

from cnn_lab.engine.train.events import StepTiming

T = TypeVar("T")

REPORT_INTERVAL_S = 1.0
"""One StepTiming per second at most: enough for a live bar, little to store."""


class StepClock:
    """Splits the wall time of optimizer steps into data, copy, compute and other."""

    def __init__(
        self,
        device: torch.device,
        batch_size: int,
        *,
        interval_s: float = REPORT_INTERVAL_S,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.now = clock
        """The time source (seconds); tests pass a fake one to plant durations."""
        self.device = device
        self.batch_size = batch_size
        self.interval_s = interval_s
        self._sync = device.type == "cuda"
        self._resumed: float | None = None
        """When the loop got its last batch (the start of compute)."""
        self._step_ended: float | None = None
        """When the last step ended (the start of "other"); None within a step."""
        self._reset(self.now())

    def _reset(self, now: float) -> None:
        self._window_start = now
        self.data_s = self.copy_s = self.compute_s = self.other_s = 0.0
        self.sampled_copy_s = 0.0
        self.sampled = 0
        self.steps = 0
        self.images = 0
        self._sample_copy = True
        """Measure the next batch's copy (one device sync per report window)."""

    def timed(self, batches: Iterable[T]) -> Iterator[T]:
        """Yield ``batches``, timing how long each one takes to arrive.

        One call per epoch: what happens between epochs (evaluation, checkpoints) is not a
        step's time, so the gap before the first batch is not booked.
        """
        self._step_ended = self._resumed = None
        iterator = iter(batches)
        while True:
            start = self.now()
            self._close_gap(start)
            sample = self._sync and self._sample_copy
            if sample:  # let the queued steps finish first (their time is compute), so the
                # sync after the fetch below waits for the copy alone
                torch.cuda.synchronize(self.device)
                drained = self.now()
                self.compute_s += drained - start
                start = drained
            try:
                batch = next(iterator)
            except StopIteration:
                self._resumed = None
                return
            arrived = self.now()
            self.data_s += arrived - start
            if sample:
                torch.cuda.synchronize(self.device)
                copied = self.now()
                self.sampled_copy_s += copied - arrived
                self.sampled += 1
                self._sample_copy = False
                arrived = copied
            self._resumed = arrived
            yield batch

    def _close_gap(self, now: float) -> None:
        """Book the time since the loop last had control: "other" after a step, else compute."""
        if self._step_ended is not None:
            self.other_s += now - self._step_ended
            self._step_ended = None
        elif self._resumed is not None:  # a micro-batch of gradient accumulation
            self.compute_s += now - self._resumed
        self._resumed = None

    def step_done(self, images: int, *, discard: bool = False) -> None:
        """The optimizer step was issued (on a GPU it may still be running).

        ``discard`` drops the step from the figures (a step that was mostly compilation).
        """
        now = self.now()
        if self._resumed is not None:
            self.compute_s += now - self._resumed
            self._resumed = None
        if discard:
            self._reset(now)
        else:
            self.steps += 1
            self.images += images
        self._step_ended = now

    def due(self) -> bool:
        return self.steps > 0 and self.now() - self._window_start >= self.interval_s

    def report(self, step: int) -> StepTiming | None:
        """Means per step since the last report (None if no step finished), then start anew."""
        if self.steps == 0:
            return None
        n = self.steps
        # Unsampled steps had their copy overlap the compute; the sampled steps measure what
        # a copy costs, and that mean is moved from compute to copy for every step.
        copy = self.sampled_copy_s / self.sampled if self.sampled else 0.0
        total_compute = self.compute_s + self.sampled_copy_s
        compute = max(total_compute / n - copy, 0.0)
        data, other = self.data_s / n, self.other_s / n
        step_s = data + copy + compute + other
        timing = StepTiming(
            step=step,
            steps=n,
            data_ms=data * 1000.0,
            copy_ms=copy * 1000.0,
            compute_ms=compute * 1000.0,
            other_ms=other * 1000.0,
            step_ms=step_s * 1000.0,
            images_per_s=self.images / (step_s * n) if step_s > 0 else 0.0,
            batch_size=self.batch_size,
        )
        self._reset(self.now())
        return timing
