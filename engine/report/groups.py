"""Which metrics share a chart: a registry of groups, so a new metric needs one line here.

Every key a run logged lands in exactly one chart: the first group that claims it, or a
chart of its own. Training curves are grouped by what they measure (loss, accuracy, time),
system gauges by their unit (a percentage and a MiB on one axis would flatten each other).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class ChartGroup:
    title: str
    unit: str
    claims: Callable[[str], bool]
    order: tuple[str, ...] = ()
    """Keys in the order their lines are drawn (the rest follow, sorted)."""


def _keys(*names: str) -> Callable[[str], bool]:
    return lambda key: key in names


def _listed(*names: str) -> tuple[Callable[[str], bool], tuple[str, ...]]:
    return _keys(*names), names


def _prefix(prefix: str) -> Callable[[str], bool]:
    return lambda key: key.startswith(prefix)


def _suffix(*suffixes: str) -> Callable[[str], bool]:
    return lambda key: key.endswith(suffixes)


CURVE_GROUPS: tuple[ChartGroup, ...] = (
    ChartGroup("Loss", "loss", *_listed("train.loss", "epoch.train_loss", "val.loss")),
    ChartGroup("Accuracy", "accuracy", *_listed("epoch.train_accuracy", "val.accuracy")),
    ChartGroup("Learning rate", "learning rate", *_listed("lr")),
    ChartGroup("Throughput", "images/s", *_listed("train.images_per_s", "epoch.images_per_s")),
    ChartGroup("Step time by phase", "ms", _prefix("time."), ("time.step_ms",)),
    ChartGroup("Epoch time", "s", *_listed("epoch.seconds", "epoch.eval_s")),
)

SYSTEM_GROUPS: tuple[ChartGroup, ...] = (
    ChartGroup("CPU cores", "% of a core", _prefix("cpu.core")),
    ChartGroup("Use", "%", _suffix("percent")),
    ChartGroup("Disk", "MiB/s", _suffix("_mb_s")),
    ChartGroup("Memory", "MiB", _suffix("_mb")),
    ChartGroup("GPU temperature", "°C", _suffix("temp_c")),
    ChartGroup("GPU power", "W", _suffix("_w")),
    ChartGroup("GPU clock", "MHz", _suffix("_mhz")),
)


def _rank(order: tuple[str, ...]) -> Callable[[str], tuple[int, str]]:
    return lambda key: (order.index(key) if key in order else len(order), key)


def group_keys(
    keys: Iterable[str], groups: tuple[ChartGroup, ...]
) -> list[tuple[str, str, list[str]]]:
    """(title, unit, keys) per chart, groups in registry order, then lone keys sorted."""
    claimed: dict[int, list[str]] = {}
    alone: list[str] = []
    for key in sorted(keys):
        index = next((i for i, g in enumerate(groups) if g.claims(key)), None)
        if index is None:
            alone.append(key)
        else:
            claimed.setdefault(index, []).append(key)
    charts = [
        (groups[i].title, groups[i].unit, sorted(claimed[i], key=_rank(groups[i].order)))
        for i in sorted(claimed)
    ]
    return charts + [(key, "", [key]) for key in alone]
