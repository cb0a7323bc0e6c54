"""Feeds the diagnosis while a run trains: step timings from the loop, samples from the sampler.

The job layer owns one tracker per run. Timings arrive on the job's thread, system samples on
the sampler's thread, hence the lock. Two views: ``recent`` (the last ``RECENT_S`` seconds, for
the live verdict, which should follow a run that changes) and the whole run (saved with it),
which leaves out the first timing window, where cuDNN autotuning, lazy allocation and warm
caches make every run look slow.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any

from cnn_lab.engine.monitor.diagnosis import MIN_STEPS, Diagnosis, Observations, diagnose
from cnn_lab.engine.train.events import StepTiming

RECENT_S = 15.0


@dataclass(frozen=True)
class RunContext:
    """What the diagnosis needs to know about the run besides measurements."""

    device_kind: str = "cpu"
    gpu_index: int | None = None
    """The NVML index of the run's GPU (its samples are ``gpu{index}.*``)."""
    batch_size: int = 0
    settings: dict[str, Any] = field(default_factory=dict)
    data_on_device: bool = False
    cpu_count: int = field(default_factory=lambda: os.cpu_count() or 1)
    macs_per_image: int = 0
    activation_bytes_per_image: int = 0
    augment: str = ""


_TIMING_PARTS = ("data_ms", "copy_ms", "compute_ms", "other_ms")
_MEAN_KEYS = ("cpu.percent", "proc.cpu_percent", "disk.read_mb_s")
_PEAK_KEYS = ("ram.percent",)


class _Sums:
    """Step-weighted timing sums and sample sums (means) and peaks (maxima)."""

    def __init__(self) -> None:
        self.steps = 0
        self.parts = dict.fromkeys(_TIMING_PARTS, 0.0)
        self.images = 0.0
        self.seconds = 0.0
        self.totals: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        self.peaks: dict[str, float] = {}

    def add_timing(self, timing: StepTiming) -> None:
        self.steps += timing.steps
        for part in _TIMING_PARTS:
            self.parts[part] += getattr(timing, part) * timing.steps
        self.images += timing.batch_size * timing.steps
        self.seconds += timing.step_ms * timing.steps / 1000.0

    def add_sample(self, values: dict[str, float], means: tuple[str, ...], peaks: tuple[str, ...]):
        for key in means:
            if key in values and math.isfinite(values[key]):
                self.totals[key] = self.totals.get(key, 0.0) + values[key]
                self.counts[key] = self.counts.get(key, 0) + 1
        for key in peaks:
            if key in values and math.isfinite(values[key]):
                self.peaks[key] = max(self.peaks.get(key, -math.inf), values[key])

    def mean(self, key: str) -> float | None:
        count = self.counts.get(key)
        return self.totals[key] / count if count else None


class BottleneckTracker:
    """Collects measurements of one run and says what limits its speed."""

    def __init__(self, context: RunContext | None = None) -> None:
        self._lock = threading.Lock()
        self.context = context or RunContext()
        self._run = _Sums()
        self._first_window_skipped = False
        self._held_back: Any = None
        self._recent_timings: deque[tuple[float, Any]] = deque()
        self._recent_samples: deque[tuple[float, dict[str, float]]] = deque()

    def set_context(self, context: RunContext) -> None:
        with self._lock:
            self.context = context

    # ---------------------------------------------------------------- feeding

    def add_timing(self, timing: StepTiming, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            self._recent_timings.append((now, timing))
            self._trim(now)
            if not self._first_window_skipped:
                # held back: used for the whole-run view only if no other window ever comes
                self._first_window_skipped, self._held_back = True, timing
                return
            self._run.add_timing(timing)

    def add_system(self, values: dict[str, float], now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            self._recent_samples.append((now, values))
            self._trim(now)
            means, peaks = self._sample_keys()
            self._run.add_sample(values, means, peaks)

    def _sample_keys(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        gpu = self.context.gpu_index
        if gpu is None:
            return _MEAN_KEYS, _PEAK_KEYS
        return (
            (*_MEAN_KEYS, f"gpu{gpu}.util_percent"),
            (*_PEAK_KEYS, f"gpu{gpu}.mem_used_mb", f"gpu{gpu}.mem_total_mb"),
        )

    def _trim(self, now: float) -> None:
        for recent in (self._recent_timings, self._recent_samples):
            while recent and now - recent[0][0] > RECENT_S:
                recent.popleft()

    # ---------------------------------------------------------------- reading

    def diagnose(self, *, recent: bool = True) -> Diagnosis:
        return diagnose(self.observations(recent=recent))

    def observations(self, *, recent: bool = True) -> Observations:
        with self._lock:
            if recent:
                sums = _Sums()
                means, peaks = self._sample_keys()
                for _, timing in self._recent_timings:
                    sums.add_timing(timing)
                for _, values in self._recent_samples:
                    sums.add_sample(values, means, peaks)
            else:
                sums = self._run
                if sums.steps < MIN_STEPS and self._held_back is not None:
                    sums = _copy_with_timing(sums, self._held_back)  # too little without it
            return self._observe(sums)

    def _observe(self, sums: _Sums) -> Observations:
        ctx = self.context
        n = max(sums.steps, 1)
        parts = {part: sums.parts[part] / n for part in _TIMING_PARTS}
        step_ms = sum(parts.values())
        gpu = ctx.gpu_index
        return Observations(
            steps=sums.steps,
            step_ms=step_ms,
            images_per_s=sums.images / sums.seconds if sums.seconds > 0 else 0.0,
            device_kind=ctx.device_kind,
            batch_size=ctx.batch_size,
            settings=ctx.settings,
            data_on_device=ctx.data_on_device,
            cpu_count=ctx.cpu_count,
            cpu_percent=sums.mean("cpu.percent"),
            proc_cpu_percent=sums.mean("proc.cpu_percent"),
            ram_percent=sums.peaks.get("ram.percent"),
            gpu_util_percent=sums.mean(f"gpu{gpu}.util_percent") if gpu is not None else None,
            gpu_mem_used_mb=sums.peaks.get(f"gpu{gpu}.mem_used_mb"),
            gpu_mem_total_mb=sums.peaks.get(f"gpu{gpu}.mem_total_mb"),
            disk_read_mb_s=sums.mean("disk.read_mb_s"),
            macs_per_image=ctx.macs_per_image,
            activation_bytes_per_image=ctx.activation_bytes_per_image,
            augment=ctx.augment,
            **parts,
        )


def _copy_with_timing(sums: _Sums, timing: StepTiming) -> _Sums:
    copy = _Sums()
    copy.totals, copy.counts, copy.peaks = dict(sums.totals), dict(sums.counts), dict(sums.peaks)
    copy.steps, copy.parts = sums.steps, dict(sums.parts)
    copy.images, copy.seconds = sums.images, sums.seconds
    copy.add_timing(timing)
    return copy


def context_from_start(event: Any, settings: dict[str, Any], augment: str = "") -> RunContext:
    """A RunContext from the loop's RunStarted event and the run's TrainSpec fields."""
    device = str(event.device)
    kind = device.split(":", 1)[0].split(" ", 1)[0]
    return replace(
        RunContext(),
        device_kind=kind,
        gpu_index=getattr(event, "nvml_index", None),
        batch_size=event.batch_size,
        settings=settings,
        data_on_device=event.data_on_device,
        macs_per_image=event.macs_per_image,
        activation_bytes_per_image=event.activation_bytes_per_image,
        augment=augment,
    )
