"""The Compare panel's state: which runs, their recipes and spec differences, which metric,
the curves read so far, and the lines each chart draws.

Every curve is read downsampled (engine/store/compare.py), and what was read is kept, so
choosing another metric reads one curve per run and turning aggregation on or off reads
nothing. The lines are plain arrays (a run's curve, or a recipe's mean with its band), so
what a chart shows can be tested without drawing it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cnn_lab.engine.errors import RunNotFound, UserError
from cnn_lab.engine.store import MetricPoint, RunRecord, RunRepository
from cnn_lab.engine.store.compare import (
    DiffRow,
    Group,
    MetricRow,
    Spread,
    aggregate_curves,
    axis_for,
    curve_xy,
    group_metric_table,
    group_runs,
    metric_table,
    parse_spec,
    read_curves,
    run_label,
    spec_diff,
)

EMPTY_TITLE = "Nothing to compare yet"
EMPTY_TEXT = (
    "Compare overlays the curves of several runs, lists their results side by side and shows "
    "the settings they differ in; runs that repeat a recipe with other seeds or folds can be "
    "averaged. In Runs, select two or more runs (Ctrl+click or Shift+click) and press Compare."
)


@dataclass(frozen=True)
class ChartSlot:
    """One chart of the panel: its title, legend corner and fixed metric (None: chosen)."""

    title: str
    key: str | None
    y_label: str = ""
    legend_at: str = "top-right"


CHARTS: dict[str, ChartSlot] = {
    "loss": ChartSlot("Training loss", "train.loss", "cross-entropy"),
    "accuracy": ChartSlot("Validation accuracy", "val.accuracy", legend_at="bottom-right"),
    "metric": ChartSlot("Chosen metric", None),
}
"""The panel's charts by id; tests and the window read curves by these ids."""

SPREADS: dict[str, Spread] = {"mean ± std": "std", "min to max": "minmax"}
"""What the band around a group's mean spans, as the spread chooser offers it."""

PREFERRED_CHOICE = ("val.loss", "epoch.train_accuracy", "lr")
"""The chosen-metric chart's first pick when the runs have it (the fixed charts show the
training loss and the validation accuracy already)."""


@dataclass(frozen=True)
class Line:
    """One line of a chart: a run's curve, or a recipe's mean (with its band, if repeated)."""

    name: str
    colour: int
    """Its place in the chart palette (the same run or recipe keeps it in every chart)."""
    xs: np.ndarray
    ys: np.ndarray
    band: tuple[np.ndarray, np.ndarray] | None = None
    """The spread's low and high at ``xs``; None for one run."""


@dataclass(frozen=True)
class ComparisonRead:
    """What one read of the store gives a comparison: done off the GUI thread in one go."""

    records: list[RunRecord]
    keys: list[str]
    curves: dict[str, dict[int, list[MetricPoint]]]
    note: str


def read_comparison(store: RunRepository, run_ids: Sequence[int]) -> ComparisonRead:
    """Read these runs (repeats once), their metric keys and the fixed charts' curves; runs
    no longer in the store are named in ``note``."""
    ids = list(dict.fromkeys(run_ids))
    records: list[RunRecord] = []
    lost: list[int] = []
    for run_id in ids:
        try:
            records.append(store.get_run(run_id))
        except RunNotFound:
            lost.append(run_id)
    found = [r.id for r in records]
    curves = {
        slot.key: read_curves(store, found, slot.key)
        for slot in CHARTS.values()
        if slot.key is not None
    }
    note = ""
    if lost:
        listed = ", ".join(f"#{i}" for i in lost)
        were = "Runs {} are" if len(lost) > 1 else "Run {} is"
        note = f"{were.format(listed)} no longer in the store."
    return ComparisonRead(records, store.keys_logged(found), curves, note)


class Comparison:
    """The runs being compared and everything read of them (plain data, no widgets).

    It never reads the store itself: the panel hands ``read_comparison`` and
    ``read_curves`` to the window's store link and gives the answers to ``take`` and
    ``take_curves`` (``load`` does both, for a caller that holds a store)."""

    def __init__(self) -> None:
        self.records: list[RunRecord] = []
        self.groups: list[Group] = []
        self.diff: list[DiffRow] = []
        self.keys: list[str] = []
        """Every metric any of the runs logged (the metric chooser's list)."""
        self.note = ""
        """What went wrong reading them (runs gone, an unreadable store), or empty."""
        self._curves: dict[str, dict[int, list[MetricPoint]]] = {}

    def load(self, store: RunRepository, run_ids: Sequence[int]) -> None:
        """Read and take these runs now (the store's sentence in ``note`` if it failed)."""
        try:
            self.take(read_comparison(store, run_ids))
        except UserError as exc:
            self.fail(str(exc))

    def take(self, read: ComparisonRead) -> None:
        self.records, self.keys, self.note = list(read.records), list(read.keys), read.note
        self._curves = dict(read.curves)
        self.groups = group_runs(self.records)
        self.diff = spec_diff({r.id: parse_spec(r.spec_json) for r in self.records})

    def fail(self, sentence: str) -> None:
        """The store could not be read: nothing to compare, and why."""
        self.take(ComparisonRead([], [], {}, sentence))

    def run_ids(self) -> list[int]:
        return [r.id for r in self.records]

    def comparable(self) -> bool:
        """Whether there is a comparison to show: two runs at least."""
        return len(self.records) >= 2

    def empty_text(self) -> str:
        """The empty state's text: what went wrong, if anything, then how to choose runs."""
        return f"{self.note}\n\n{EMPTY_TEXT}".strip()

    def describe(self) -> str:
        """The line above the charts: how many runs and recipes, how many settings differ."""
        text = f"{len(self.records)} runs"
        if len(self.groups) < len(self.records):
            text += f" in {len(self.groups)} recipes (runs differing only in seed or fold)"
        same = "; their specs are the same."
        text += f"; they differ in {len(self.diff)} spec settings." if self.diff else same
        return f"{text} {self.note}".strip()

    def pick_metric(self, previous: str) -> str:
        """The metric chart's key: the one shown before if the runs have it, else a preferred
        one, else the first they logged ("" if none)."""
        candidates = (previous, *PREFERRED_CHOICE)
        return next((k for k in candidates if k in self.keys), self.keys[0] if self.keys else "")

    def needs(self, key: str) -> bool:
        """Whether ``key``'s curves are still to be read (``read_curves`` on the store)."""
        return bool(key) and key not in self._curves

    def take_curves(self, key: str, curves: dict[int, list[MetricPoint]]) -> None:
        """Keep ``key``'s curves as read (empty when the read failed: drawn as nothing)."""
        self._curves[key] = curves

    def read_metric(self, store: RunRepository, key: str) -> str:
        """Read ``key``'s curves now unless already read; the store's sentence if it failed."""
        if not self.needs(key):
            return ""
        try:
            self.take_curves(key, read_curves(store, self.run_ids(), key))
        except UserError as exc:
            self.take_curves(key, {})
            return str(exc)
        return ""

    def lines(self, key: str, *, aggregate: bool, spread: Spread = "std") -> list[Line]:
        """What a chart of ``key`` draws: one line a run, or one mean line a recipe."""
        curves = self._curves.get(key, {})
        axis = axis_for(key)
        if not aggregate:
            return [
                Line(run_label(record), i, *curve_xy(curves.get(record.id, []), axis))
                for i, record in enumerate(self.records)
            ]
        lines = []
        for i, group in enumerate(self.groups):
            band = aggregate_curves([curves.get(r, []) for r in group.run_ids], axis, spread)
            spread_at = (band.low, band.high) if len(group.records) > 1 and len(band.x) else None
            lines.append(Line(group.label, i, band.x, band.mean, spread_at))
        return lines

    def metric_rows(self, *, aggregate: bool) -> list[MetricRow]:
        """The results table's rows: one a run, or one a recipe (mean ± spread)."""
        return group_metric_table(self.groups) if aggregate else metric_table(self.records)


__all__ = [
    "CHARTS",
    "EMPTY_TEXT",
    "EMPTY_TITLE",
    "PREFERRED_CHOICE",
    "SPREADS",
    "ChartSlot",
    "Comparison",
    "ComparisonRead",
    "Line",
    "read_comparison",
]
