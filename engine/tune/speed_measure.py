"""How the speed advisor measures one combination of settings, and keeps count.

A combination is applied to the person's spec and timed with a fresh training probe on the
shared prepared dataset. A value the device refuses, or one that fails (out of memory at a
larger batch, a compiler error), becomes a warning and a finding without a speed, never the
end of the advice; only the person's own settings failing ends it, with the sentence training
would give.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from cnn_lab.engine.data.prepare import PreparedDataset
from cnn_lab.engine.errors import Cancelled, UserError
from cnn_lab.engine.specs import RunSpec
from cnn_lab.engine.train.memory import free_device_memory, is_out_of_memory
from cnn_lab.engine.train.options import check_options
from cnn_lab.engine.tune.probe import Probe, StepResult, Throughput
from cnn_lab.engine.tune.speed_result import Settings, describe

Measure = Callable[[RunSpec], Throughput]
"""Measures one spec's training throughput; injectable so tests can plant the answers."""
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Outcome:
    """One measurement: a rate, or why there is none."""

    images_per_s: float | None
    finite: bool
    first_step_s: float | None = None
    problem: str = ""

    @property
    def usable(self) -> bool:
        return self.images_per_s is not None and self.finite and not self.problem


@dataclass
class MeasureSession:
    """Measures settings for one advice: caches them, counts and times the probes."""

    spec: RunSpec
    device: torch.device
    measure: Measure
    progress: Progress
    should_stop: Callable[[], bool]
    total: int
    done: int = 0
    probe_seconds: float = 0.0
    probes: int = 0
    stopped: bool = False
    warnings: list[str] = field(default_factory=list)
    cache: dict[tuple[tuple[str, Any], ...], Outcome] = field(default_factory=dict)

    def run(self, settings: Settings, stage: str, *, fresh: bool = False) -> Outcome | None:
        """Measure ``settings`` (from the cache unless ``fresh``); None once stopped."""
        key = tuple(sorted(settings.items()))
        if not fresh and key in self.cache:
            self._tick(stage)
            return self.cache[key]
        if self.stopped or self.should_stop():
            self.stopped = True
            return None
        outcome = self._measure(settings, baseline=stage == "baseline")
        if self.should_stop():  # the probe may have been cut short: its numbers do not count
            self.stopped = True
            return None
        self.cache.setdefault(key, outcome)
        self._tick(stage)
        return outcome

    def _tick(self, stage: str) -> None:
        self.done += 1
        self.total = max(self.total, self.done)
        self.progress(stage, self.done, self.total)

    def _measure(self, settings: Settings, *, baseline: bool) -> Outcome:
        spec = with_settings(self.spec, settings)
        start = time.perf_counter()
        self.probes += 1
        try:
            check_options(spec.train, self.device)
            result = self.measure(spec)
        except (Cancelled, KeyboardInterrupt):
            raise
        except UserError as exc:
            if baseline:
                raise
            return self._problem(settings, exc.message)
        except Exception as exc:  # a value that fails (a compile error) must not end the advice
            if baseline:
                raise
            if is_out_of_memory(exc):
                why = f"it ran out of memory at batch size {spec.train.batch_size}"
            else:
                first_line = (str(exc).splitlines() or [""])[0][:200]
                why = f"it failed ({type(exc).__name__}: {first_line})"
            free_device_memory(self.device)
            return self._problem(settings, f"{describe(settings)}: {why}.")
        finally:
            self.probe_seconds += time.perf_counter() - start
        rate = result.images_per_s if result.steps else None
        return Outcome(rate, result.finite, result.first_step_s)

    def _problem(self, settings: Settings, sentence: str) -> Outcome:
        self.warnings.append(sentence)
        return Outcome(None, False, None, sentence)


def with_settings(spec: RunSpec, settings: Settings) -> RunSpec:
    """``spec`` with ``settings`` applied to its TrainSpec (validated)."""
    train = type(spec.train).model_validate(spec.train.model_dump() | settings)
    return spec.model_copy(update={"train": train})


MIN_TIMED_S = 0.5
"""Timed steps continue past ``steps`` until they add up to this: a small model's GPU step
takes a millisecond or two, and eight of them are too short a window to rank options by."""
MAX_TIMED_STEPS = 400
"""Upper bound on the timed steps of one probe, however short its steps."""


def probe_measurer(
    prepared: PreparedDataset,
    device: torch.device,
    *,
    warmup: int = 3,
    steps: int = 8,
    min_seconds: float = MIN_TIMED_S,
    should_stop: Callable[[], bool] = lambda: False,
) -> Measure:
    """The real measurement: a fresh probe per spec on the shared prepared dataset.

    ``warmup`` untimed steps (compilation, autotuning, allocator growth), then at least
    ``steps`` timed ones, more while they add up to less than ``min_seconds``.
    """

    def measure(spec: RunSpec) -> Throughput:
        if spec.train.compile:
            # Every probe builds a new model; without a reset dynamo's per-function cache
            # fills up after a few probes and later ones silently run uncompiled.
            torch._dynamo.reset()
        results: list[StepResult] = []
        with Probe(spec, prepared=prepared, device=device, should_stop=should_stop) as probe:
            stepper = probe.steps(warmup + max(steps, MAX_TIMED_STEPS))
            try:
                timed_s = 0.0
                for result in stepper:
                    results.append(result)
                    if len(results) <= warmup:
                        continue
                    timed_s += result.seconds
                    if len(results) >= warmup + steps and timed_s >= min_seconds:
                        break
            finally:
                stepper.close()  # stops a streaming loader's prefetch thread now
        return throughput(results, spec.train.batch_size, warmup)

    return measure


def throughput(results: Sequence[StepResult], batch_size: int, warmup: int) -> Throughput:
    """Median images per second over the timed steps, counting full batches only.

    Per step rather than batch / median time, and full batches only, because an epoch's
    short last batch (and, compiled, its recompile) would otherwise make one batch size look
    faster or slower than it is.
    """
    if not results:
        return Throughput(0.0, math.inf, 0, False, 0.0)
    timed = list(results[warmup:]) or list(results)
    full = [r for r in timed if r.images == batch_size] or timed
    rates = [r.images / r.seconds for r in full if r.seconds > 0]
    rate = statistics.median(rates) if rates else 0.0
    return Throughput(
        images_per_s=rate,
        step_ms=statistics.median(r.seconds for r in full) * 1000.0,
        steps=len(full),
        finite=all(math.isfinite(r.loss) for r in results),
        first_step_s=results[0].seconds,
    )
