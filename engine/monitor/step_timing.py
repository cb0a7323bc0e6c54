"""Where each optimizer step's wall time goes: waiting for data, copying it, computing, the rest.

The clock wraps the loader's iterator, so "data" is exactly the time the loop waits for the
next batch. On a GPU the copy and the loader's kernels are asynchronous: on one step in
``sample_every`` the clock synchronises the device right after the batch arrives, which
separates the copy from the compute at the price of one sync on a few steps (the loop already
syncs once per step when it reads the loss). "Compute" ends when the loop calls
``step_done`` (after the loss reached the host); "other" is the time from there to the next
batch request: recording metrics, sending events, the stop check. The four parts add up to
the step's wall time, so the stacked bar in the Monitor panel is the whole truth.
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
        sample_every: int = 10,
        interval_s: float = REPORT_INTERVAL_S,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.now = clock
        """The time source (seconds); tests pass a fake one to plant durations."""
        self.device = device
        self.batch_size = batch_size
        self.sample_every = max(1, sample_every)
        self.interval_s = interval_s
        self._sync = device.type == "cuda"
        self._resumed: float | None = None
        """When the loop got its last batch (the start of compute)."""
        self._step_ended: float | None = None
        """When the last step ended (the start of "other"); None within a step."""
        self._fetches = 0
        self._reset(self.now())

    def _reset(self, now: float) -> None:
        self._window_start = now
        self.data_s = self.copy_s = self.compute_s = self.other_s = 0.0
        self.sampled_copy_s = 0.0
        self.sampled = 0
        self.steps = 0
        self.images = 0

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
            try:
                batch = next(iterator)
            except StopIteration:
                self._resumed = None
                return
            arrived = self.now()
            self.data_s += arrived - start
            if self._sync and self._fetches % self.sample_every == 0:
                torch.cuda.synchronize(self.device)
                copied = self.now()
                self.sampled_copy_s += copied - arrived
                self.sampled += 1
                arrived = copied
            self._fetches += 1
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
        """The optimizer step finished and its loss is on the host.

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
