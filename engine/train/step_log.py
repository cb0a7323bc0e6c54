"""Step losses kept on the device and read by the host once per logging interval.

On a GPU, reading a loss with ``.item()`` after every step makes the host wait for the device
each step: the device then idles while the host prepares the next step, and on a fast GPU
with a small CNN that wait is the bottleneck. Here each step's loss stays on the device; once
every ``every`` steps the pending losses are copied, in one non-blocking copy, to pinned host
memory, and they are read one interval later, when that copy has long finished. The device
never waits for the host, and the host waits only for a copy that is already done.

On the CPU there is no device to wait for: a loss is read as soon as its step ends (interval
1), which keeps a StepEnd right after every step and costs nothing.

How late the host learns a loss: at most ``every`` steps on the CPU with a longer interval,
``2 * every`` steps on a GPU (one interval to fill, one for the copy). The loop drains
everything before it saves a checkpoint, ends an epoch, stops or finishes, so nothing pending
is ever lost and no checkpoint is written after an unread non-finite loss.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

GPU_EVERY = 32
"""Steps per read on an accelerator: at 2 ms a step, about 15 reads a second."""


@dataclass(frozen=True)
class LoggedStep:
    """What the host knows about a step the moment it ends; its loss comes later."""

    step: int
    epoch: int
    lr: float
    step_s: float
    """The host's time for the step (0 for a step that was mostly compilation)."""
    images: int
    elapsed_s: float
    progress: float
    eta_s: float


def default_every(device: torch.device) -> int:
    return 1 if device.type == "cpu" else GPU_EVERY


class StepLog:
    """``lagged`` (default: on CUDA) reads each interval's losses one interval late, from a
    copy started when the interval ended; tests turn it on for the CPU to check the order."""

    def __init__(
        self, device: torch.device, every: int | None = None, *, lagged: bool | None = None
    ) -> None:
        self.device = device
        self.every = max(1, every if every is not None else default_every(device))
        self._lagged = device.type == "cuda" if lagged is None else lagged
        self._losses: list[torch.Tensor] = []
        self._steps: list[LoggedStep] = []
        self._in_flight: tuple[torch.Tensor, Any, list[LoggedStep]] | None = None

    def add(self, loss: torch.Tensor, step: LoggedStep) -> None:
        self._losses.append(loss)
        self._steps.append(step)

    @property
    def due(self) -> bool:
        return len(self._steps) >= self.every

    @property
    def pending(self) -> int:
        return len(self._steps) + (len(self._in_flight[2]) if self._in_flight else 0)

    def read(self, *, drain: bool = False) -> list[tuple[LoggedStep, float]]:
        """The steps whose losses have reached the host, in order, with their losses.

        Without ``drain`` on a GPU these are the previous interval's steps, and this interval's
        copy starts; with ``drain`` every pending step is read (one device sync).
        """
        if not self._lagged:
            return self._take_now()
        ready: list[tuple[LoggedStep, float]] = []
        if self._in_flight is not None:
            host, copied, steps = self._in_flight
            if copied is not None:
                copied.synchronize()  # finished long ago in the steady state
            ready = list(zip(steps, host.tolist(), strict=True))
            self._in_flight = None
        if drain:
            return ready + self._take_now()
        if self._steps:
            values = torch.stack(self._losses).float()
            copied = None
            if values.is_cuda:
                host = torch.empty(values.shape, dtype=values.dtype, pin_memory=True)
                host.copy_(values, non_blocking=True)
                copied = torch.cuda.Event()
                copied.record()
            else:
                host = values
            self._in_flight = (host, copied, self._steps)
            self._losses, self._steps = [], []
        return ready

    def _take_now(self) -> list[tuple[LoggedStep, float]]:
        if not self._steps:
            return []
        if len(self._losses) == 1:
            values = [self._losses[0].item()]
        else:
            values = torch.stack(self._losses).float().tolist()
        read = list(zip(self._steps, values, strict=True))
        self._losses, self._steps = [], []
        return read
