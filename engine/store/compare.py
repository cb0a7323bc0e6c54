"""Comparing runs: what their specs change, how their results differ, and seeds as one curve.

A person comparing runs asks three things: *what did I change* (only the spec paths whose
values differ, since a RunSpec has a hundred fields and most never move), *what did it give*
(a few result numbers side by side), and *is the difference real* (runs that differ only in
their seed or cross-validation fold are repeats of one recipe, shown as their mean with a
spread band, so a gap between two recipes can be read against their seed-to-seed noise).

Everything here is plain data in, plain data out: the Compare panel draws it and a report
or a command could print it. Curves come from ``RunStore.curve`` so a million-step run
costs a few thousand points.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

import numpy as np

from cnn_lab.engine.store.repository import RunRepository
from cnn_lab.engine.store.store import DEFAULT_BUCKETS, MetricPoint, RunRecord
from cnn_lab.engine.util.durations import format_duration

MISSING = "—"
"""What a cell shows for a path a run's spec does not have."""

SEED_PATH = "train.seed"
FOLD_PATH = "dataset.fold"
REPEAT_PATHS = (SEED_PATH, FOLD_PATH)
"""Paths whose values make repeats of one recipe: different seeds, or the folds of a k-fold
sweep (engine/search/spec.py sets ``dataset.fold`` per fold and ``dataset.folds`` for all)."""

UNSCORED_PATHS = ("name", "tags")
"""Paths that change no result (``RunSpec.spec_hash`` leaves them out), so runs that differ
only there still group together. A sweep names every fold and seed differently."""

SHORT_NAMES: dict[str, str] = {
    "train.lr": "lr",
    "train.weight_decay": "wd",
    "train.batch_size": "batch",
    "train.optimizer": "opt",
    "train.schedule": "sched",
    "train.label_smoothing": "ls",
    "train.epochs": "epochs",
    "dataset.source": "data",
    "architecture.preset": "model",
}
"""How a group label names a path it varies; others use their last component."""

CurveAxis = Literal["step", "epoch"]
Spread = Literal["std", "minmax"]

EPOCH_PREFIXES = ("val.", "epoch.", "test.")
"""Metric keys logged once per epoch: drawn against the epoch, not the step."""


# --------------------------------------------------------------------------- spec diff


@dataclass(frozen=True)
class DiffRow:
    """One spec path whose value is not the same in every compared run."""

    path: str
    values: dict[int, str]
    """Run id → the value as text (``MISSING`` where the run's spec lacks the path)."""


def flatten_spec(spec: Any, prefix: str = "") -> dict[str, Any]:
    """A spec's JSON as ``{"train.lr": 0.01, "architecture.layers.0.kind": "conv", ...}``.

    Lists are indexed, so a layer added in the middle of a network shows as the paths it
    shifts; an empty list or object stays a leaf, so it still compares against a full one.
    """
    items: Iterable[tuple[str, Any]]
    if isinstance(spec, Mapping) and spec:
        items = ((str(k), v) for k, v in spec.items())
    elif isinstance(spec, list | tuple) and spec:
        items = ((str(i), v) for i, v in enumerate(spec))
    else:
        return {prefix: spec} if prefix else {}
    flat: dict[str, Any] = {}
    for key, value in items:
        flat.update(flatten_spec(value, f"{prefix}.{key}" if prefix else key))
    return flat


def parse_spec(spec_json: str) -> dict[str, Any]:
    """A run's stored spec as a dict; an unreadable one as empty (it then differs everywhere
    it can, which is the honest answer for a run whose spec cannot be read)."""
    try:
        loaded = json.loads(spec_json) if spec_json else {}
    except (ValueError, TypeError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def spec_diff(specs: Mapping[int, Mapping[str, Any]]) -> list[DiffRow]:
    """The paths whose values differ between the runs' specs, in the specs' own order.

    ``specs`` maps run id → spec dict (``parse_spec(record.spec_json)``). A path one run has
    and another lacks differs. With fewer than two runs nothing differs.
    """
    if len(specs) < 2:
        return []
    flat = {run_id: flatten_spec(spec) for run_id, spec in specs.items()}
    rows = []
    for path in _merged_order(flat.values()):
        present = [values[path] for values in flat.values() if path in values]
        if len(present) == len(flat) and all(_same(present[0], v) for v in present[1:]):
            continue
        texts = {
            run_id: format_value(values[path]) if path in values else MISSING
            for run_id, values in flat.items()
        }
        rows.append(DiffRow(path, texts))
    return rows


def _merged_order(flats: Iterable[Mapping[str, Any]]) -> list[str]:
    """Every path of the specs once, each where its own spec has it: a path only a later
    run has (a third augmentation) lands beside its siblings, not at the end."""
    order: list[str] = []
    seen: set[str] = set()
    for flat in flats:
        at = 0
        for path in flat:
            if path in seen:
                at = order.index(path) + 1
                continue
            order.insert(at, path)
            seen.add(path)
            at += 1
    return order


def _same(a: Any, b: Any) -> bool:
    # 1 and 1.0 are one value in JSON; True and 1 are not.
    return (type(a) is type(b) and a == b) or (_is_number(a) and _is_number(b) and a == b)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def format_value(value: Any) -> str:
    """A spec value as a person reads it: ``5e-4``, ``adamw``, ``true``, ``none``, ``[]``."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return short_number(value)
    if isinstance(value, str):
        return value
    return json.dumps(value)


def short_number(value: float) -> str:
    """``0.01``, ``5e-4``, ``1e+06``: small and large numbers in their shortest exact form."""
    if not math.isfinite(value) or value == 0 or 0.01 <= abs(value) < 1e5:
        return f"{value:g}"
    mantissa, exponent = f"{value:.6e}".split("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{int(exponent)}"


# ------------------------------------------------------------------------ metric table


@dataclass(frozen=True)
class MetricColumn:
    """One result a run's summary holds, how it reads, and which way is better."""

    title: str
    read: Callable[[RunRecord], float | None]
    show: Callable[[float], str]
    better: Literal["high", "low"] | None = None


def _summary(key: str) -> Callable[[RunRecord], float | None]:
    def read(record: RunRecord) -> float | None:
        return _number(record.summary.get(key))

    return read


def _number(value: Any) -> float | None:
    if not _is_number(value) or not math.isfinite(value):
        return None
    return float(value)


def _duration(record: RunRecord) -> float | None:
    # The store's clock (start to end) includes loading data; the loop's own wall time is the
    # fallback for a run whose times were not recorded (one imported from elsewhere).
    return record.duration_s if record.duration_s is not None else _summary("wall_time_s")(record)


METRIC_COLUMNS: tuple[MetricColumn, ...] = (
    MetricColumn("Best val acc", _summary("best_val_accuracy"), "{:.1%}".format, "high"),
    MetricColumn("Test acc", _summary("test_accuracy"), "{:.1%}".format, "high"),
    MetricColumn("Final train loss", _summary("final_train_loss"), "{:.4f}".format, "low"),
    MetricColumn("Epochs", _summary("epochs"), "{:.0f}".format),
    MetricColumn("Duration", _duration, partial(format_duration, style="precise"), "low"),
    MetricColumn("Images/s", _summary("train_images_per_s"), "{:,.0f}".format, "high"),
)
"""The metric table's columns; the training loop's summary (engine/train/loop.py) holds them."""


@dataclass(frozen=True)
class MetricRow:
    """One line of the metric table: a run, or a group of repeats (means over its runs)."""

    label: str
    run_ids: tuple[int, ...]
    values: dict[str, float | None]
    """Column title → the value (a group's mean); None where no run has it."""
    texts: dict[str, str]
    """Column title → the cell text; a group's reads ``mean ± std``."""


def run_label(record: RunRecord) -> str:
    """``#12 lr sweep`` : how a run is named in legends and column heads."""
    return f"#{record.id} {record.name}".strip()


def metric_table(records: Sequence[RunRecord]) -> list[MetricRow]:
    """One row per run with the result columns of ``METRIC_COLUMNS`` ("" where missing)."""
    rows = []
    for record in records:
        values = {column.title: column.read(record) for column in METRIC_COLUMNS}
        texts = {
            column.title: "" if values[column.title] is None else column.show(values[column.title])
            for column in METRIC_COLUMNS
        }
        rows.append(MetricRow(run_label(record), (record.id,), values, texts))
    return rows


def group_metric_table(groups: Sequence[Group]) -> list[MetricRow]:
    """One row per group: each column's mean over the group's runs, ``± std`` with several."""
    rows = []
    for group in groups:
        values: dict[str, float | None] = {}
        texts: dict[str, str] = {}
        for column in METRIC_COLUMNS:
            found = [v for v in (column.read(r) for r in group.records) if v is not None]
            if not found:
                values[column.title], texts[column.title] = None, ""
                continue
            mean = float(np.mean(found))
            values[column.title] = mean
            texts[column.title] = column.show(mean)
            if len(found) > 1:
                texts[column.title] += f" ± {column.show(float(np.std(found, ddof=1)))}"
        rows.append(MetricRow(group.label, group.run_ids, values, texts))
    return rows


def best_row(rows: Sequence[MetricRow], column: MetricColumn) -> int | None:
    """The index of the row with the best value in ``column`` (None if it has no direction,
    fewer than two rows have a value, or they are all equal)."""
    found = [
        (v, i) for i, row in enumerate(rows) if (v := row.values.get(column.title)) is not None
    ]
    if column.better is None or len(found) < 2 or len({v for v, _ in found}) == 1:
        return None
    pick = max if column.better == "high" else min
    return pick(found, key=lambda pair: pair[0])[1]


# ------------------------------------------------------------------- curves and bands


@dataclass(frozen=True)
class Band:
    """Several runs' curves as one: the mean and a spread at each x, with how many runs
    reach that x (a run that stopped early stops counting)."""

    x: np.ndarray
    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray
    n: np.ndarray


def axis_for(key: str) -> CurveAxis:
    """Whether a metric is drawn against the epoch (logged once per epoch) or the step."""
    return "epoch" if key.startswith(EPOCH_PREFIXES) else "step"


def curve_xy(points: Sequence[MetricPoint], x: CurveAxis = "step") -> tuple[np.ndarray, np.ndarray]:
    """A curve as sorted, unique x with finite y (several points at one x averaged)."""
    xs = np.fromiter((getattr(p, x) for p in points), dtype=np.float64, count=len(points))
    ys = np.fromiter((p.value for p in points), dtype=np.float64, count=len(points))
    keep = np.isfinite(ys)
    xs, ys = xs[keep], ys[keep]
    if not len(xs):
        return xs, ys
    unique, inverse = np.unique(xs, return_inverse=True)
    if len(unique) == len(xs):
        return unique, ys[np.argsort(xs, kind="stable")]
    sums = np.bincount(inverse, weights=ys)
    counts = np.bincount(inverse)
    return unique, sums / counts


def aggregate_curves(
    curves: Sequence[Sequence[MetricPoint]], x: CurveAxis = "step", spread: Spread = "std"
) -> Band:
    """The runs' curves aligned on ``x`` as mean and spread (``std``: mean ± sample standard
    deviation; ``minmax``: the lowest and highest run).

    Every x any run has is kept. A run counts at an x within its own first and last x: at
    its own points exactly, between them by linear interpolation (downsampled curves keep
    each run's peaks at different steps, so exact matches alone would leave most x with
    one run). Outside its range it does not count, and ``n`` says how many did.
    """
    pairs = [curve_xy(points, x) for points in curves]
    pairs = [(xs, ys) for xs, ys in pairs if len(xs)]
    if not pairs:
        empty = np.empty(0)
        return Band(empty, empty, empty, empty, np.empty(0, dtype=np.int64))
    grid = np.unique(np.concatenate([xs for xs, _ in pairs]))
    table = np.full((len(pairs), len(grid)), np.nan)
    for row, (xs, ys) in enumerate(pairs):
        inside = (grid >= xs[0]) & (grid <= xs[-1])
        table[row, inside] = np.interp(grid[inside], xs, ys)
    n = np.sum(np.isfinite(table), axis=0)
    mean = np.nanmean(table, axis=0)
    if spread == "minmax":
        low, high = np.nanmin(table, axis=0), np.nanmax(table, axis=0)
    else:
        deviation = np.zeros(len(grid))
        several = n > 1
        deviation[several] = np.nanstd(table[:, several], axis=0, ddof=1)
        low, high = mean - deviation, mean + deviation
    return Band(grid, mean, low, high, n.astype(np.int64))


def read_curves(
    store: RunRepository, run_ids: Iterable[int], key: str, buckets: int = DEFAULT_BUCKETS
) -> dict[int, list[MetricPoint]]:
    """Each run's curve of ``key``, downsampled (a million-point run costs a few thousand)."""
    return {run_id: store.curve(run_id, key, buckets) for run_id in run_ids}


# ---------------------------------------------------------------------------- groups


@dataclass(frozen=True)
class Group:
    """Runs whose specs differ only in seed or fold (or name and tags): one recipe."""

    label: str
    records: tuple[RunRecord, ...]
    params: dict[str, str]
    """The paths this group's recipe sets differently from the other groups, as text."""

    @property
    def run_ids(self) -> tuple[int, ...]:
        return tuple(r.id for r in self.records)


def _recipe(flat: Mapping[str, Any]) -> dict[str, Any]:
    """A flattened spec without the paths that make repeats or change no result."""
    dropped = (*REPEAT_PATHS, *UNSCORED_PATHS)
    return {
        path: value
        for path, value in flat.items()
        if not any(path == d or path.startswith(f"{d}.") for d in dropped)
    }


def group_runs(records: Sequence[RunRecord]) -> list[Group]:
    """Runs gathered into recipes, in the order of each recipe's first run.

    The label names what sets each recipe apart from the others (``lr=0.01, wd=5e-4``) and
    how many repeats it holds (``3 seeds``, ``5 folds``, ``2 seeds × 5 folds``).
    """
    flats = {r.id: flatten_spec(parse_spec(r.spec_json)) for r in records}
    keyed: dict[str, list[RunRecord]] = {}
    recipes: dict[str, dict[str, Any]] = {}
    for record in records:
        recipe = _recipe(flats[record.id])
        key = json.dumps(recipe, sort_keys=True, default=str)
        keyed.setdefault(key, []).append(record)
        recipes.setdefault(key, recipe)
    varying = [row.path for row in spec_diff(dict(enumerate(recipes.values())))]
    names = _short_names(varying)
    groups = []
    for key, members in keyed.items():
        recipe = recipes[key]
        params = {
            path: format_value(recipe[path]) if path in recipe else MISSING for path in varying
        }
        described = ", ".join(f"{names[path]}={text}" for path, text in params.items())
        label = described or _fallback_name(members[0])
        repeats = _repeats(members, flats)
        groups.append(Group(f"{label} ({repeats})" if repeats else label, tuple(members), params))
    return groups


def _short_names(paths: Sequence[str]) -> dict[str, str]:
    """Each path's name in a label: a known short name, else its last component (the full
    path where two varying paths end alike, such as two layers' ``channels``)."""
    short = {p: SHORT_NAMES.get(p, p.rsplit(".", 1)[-1]) for p in paths}
    taken = list(short.values())
    return {p: name if taken.count(name) == 1 else p for p, name in short.items()}


def _fallback_name(record: RunRecord) -> str:
    return record.model or record.name or f"#{record.id}"


def _repeats(members: Sequence[RunRecord], flats: Mapping[int, Mapping[str, Any]]) -> str:
    """``3 seeds``, ``5 folds``, ``6 runs: 2 seeds × 3 folds``, ``2 runs`` or ""."""
    if len(members) < 2:
        return ""
    counts = {
        word: len({json.dumps(flats[r.id].get(path)) for r in members})
        for word, path in (("seeds", SEED_PATH), ("folds", FOLD_PATH))
    }
    varied = {word: count for word, count in counts.items() if count > 1}
    parts = " × ".join(f"{count} {word}" for word, count in varied.items())
    if len(varied) == 1 and next(iter(varied.values())) == len(members):
        return parts
    return f"{len(members)} runs: {parts}" if parts else f"{len(members)} runs"


__all__ = [
    "EPOCH_PREFIXES",
    "FOLD_PATH",
    "METRIC_COLUMNS",
    "MISSING",
    "SEED_PATH",
    "Band",
    "DiffRow",
    "Group",
    "MetricColumn",
    "MetricRow",
    "aggregate_curves",
    "axis_for",
    "best_row",
    "curve_xy",
    "flatten_spec",
    "format_value",
    "group_metric_table",
    "group_runs",
    "metric_table",
    "parse_spec",
    "read_curves",
    "run_label",
    "short_number",
    "spec_diff",
]
