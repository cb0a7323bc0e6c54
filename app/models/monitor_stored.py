"""A stored run read back for the Monitor: its curves, system readings and last step timing.

A finished run is drawn from the run store with the same curve list as a live one, so it looks
exactly as it did live. The store has no list of a run's system keys, so the cores and GPUs a
run had are found by asking for each in turn.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from cnn_lab.app.models.monitor_curves import METRIC_CURVES, TIMING_KEYS, MetricCurve, Sample
from cnn_lab.engine.store import RunRepository

MAX_GPUS = 16
"""How many GPU indices a stored run is searched for (the store has no list of its keys)."""
MAX_CORES = 1024


@dataclass(frozen=True)
class StoredRun:
    """What the Monitor draws of a stored run, read in one go."""

    curves: list[tuple[MetricCurve, list[float], list[float]]]
    """Each curve that has points: its xs (steps or epochs) and values, peaks kept."""
    samples: list[Sample]
    """System readings, times counted from the first one, as the live charts count them."""
    timing: tuple[float, ...] | None
    """The last data, copy, compute and other milliseconds of a step; None if not all were kept."""


def read_stored_run(
    store: RunRepository, run_id: int, system_keys: Iterable[str], gpu_metrics: Iterable[str]
) -> StoredRun:
    """Read what the Monitor draws of run ``run_id`` (``system_keys`` and, per GPU,
    ``gpu_metrics`` name the readings its charts show)."""
    curves = []
    for curve in METRIC_CURVES:
        points = store.curve(run_id, curve.key)  # a long run: peaks, not all
        if points:
            xs = [p.epoch if curve.x == "epoch" else p.step for p in points]
            curves.append((curve, xs, [p.value for p in points]))
    samples = stored_samples(store, run_id, system_keys, gpu_metrics)
    if samples:
        t0 = samples[0][0]
        samples = [(t - t0, values) for t, values in samples]
    timing = [store.last_metric(run_id, key) for key in TIMING_KEYS]
    parts = tuple(p.value for p in timing if p is not None)
    return StoredRun(curves, samples, parts if len(parts) == len(TIMING_KEYS) else None)


def stored_samples(
    store: RunRepository, run_id: int, system_keys: Iterable[str], gpu_metrics: Iterable[str]
) -> list[Sample]:
    """A run's system samples regrouped as ``(time, {key: value})`` readings, oldest first.

    The sampler writes every key of one reading with the same time, so grouping by time gives
    back the readings the live panel saw, and both paths draw through the same code.
    """
    keys = list(system_keys)
    for core in range(MAX_CORES):  # cores are numbered 0..n-1 without gaps
        if not store.system_samples(run_id, f"cpu.core{core}.percent"):
            break
        keys.append(f"cpu.core{core}.percent")
    metrics = tuple(gpu_metrics)
    for index in range(MAX_GPUS):
        if store.system_samples(run_id, f"gpu{index}.mem_used_mb") or store.system_samples(
            run_id, f"gpu{index}.util_percent"
        ):
            keys += [f"gpu{index}.{metric}" for metric in metrics]
    readings: dict[float, dict[str, float]] = defaultdict(dict)
    for key in keys:
        for sample in store.system_samples(run_id, key):
            readings[sample.time][key] = sample.value
    return sorted(readings.items())
