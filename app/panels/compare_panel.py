"""The Compare panel: several runs' curves overlaid, their results side by side, and the spec
paths they differ in.

The window hands it run ids (the Runs panel's selection) through ``show_runs``. Every curve is
read downsampled (engine/store/curves.py), so comparing long runs costs a few thousand points
each; what was read is kept, so switching the chosen metric reads one curve per run and
turning aggregation on or off reads nothing. With "Aggregate seeds and folds" the runs that
repeat one recipe (engine/store/compare.py ``group_runs``) draw as one mean line inside a
shaded band, so a gap between recipes can be read against their seed-to-seed spread.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from cnn_lab.app.state import AppState
from cnn_lab.app.widgets.charts import PALETTE, LiveChart
from cnn_lab.app.widgets.empty_state import EmptyState
from cnn_lab.app.widgets.plain_label import plain_label
from cnn_lab.engine.errors import RunNotFound, UserError
from cnn_lab.engine.store import MetricPoint, RunRecord
from cnn_lab.engine.store.compare import (
    METRIC_COLUMNS,
    DiffRow,
    Group,
    MetricRow,
    Spread,
    aggregate_curves,
    axis_for,
    best_row,
    curve_xy,
    group_metric_table,
    group_runs,
    metric_keys,
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
BAND_ALPHA = 60
"""Opacity (of 255) of a group's spread band: the mean line stays readable through it."""
MARKED_POINTS = 100
"""Per-epoch curves with at most this many points get markers, so short runs show."""


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


class ComparePanel(QWidget):
    title = "Compare"

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.records: list[RunRecord] = []
        self._groups: list[Group] = []
        self._diff: list[DiffRow] = []
        self._metric_rows: list[MetricRow] = []
        self._curves: dict[str, dict[int, list[MetricPoint]]] = {}
        self._bands: dict[str, dict[str, pg.FillBetweenItem]] = {c: {} for c in CHARTS}

        self.aggregate = QCheckBox("Aggregate seeds and folds")
        self.aggregate.setToolTip(
            "Draw the runs that differ only in their seed or cross-validation fold as one mean "
            "line with a shaded band, so differences between recipes read against their noise."
        )
        self.spread = QComboBox()
        self.spread.addItems(list(SPREADS))
        self.spread.setToolTip("What the band around each group's mean spans.")
        self.spread.setEnabled(False)
        self.metric_choice = QComboBox()
        self.metric_choice.setToolTip("Any metric the runs logged, overlaid in the third chart.")
        self.metric_choice.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.info = plain_label()
        self.charts = {
            cid: LiveChart(
                slot.title,
                x_label="step" if slot.key is None else axis_for(slot.key),
                y_label=slot.y_label,
                legend_at=slot.legend_at,
            )
            for cid, slot in CHARTS.items()
        }
        self.metric_table = _table()
        self.diff_table = _table()

        controls = QHBoxLayout()
        controls.addWidget(self.aggregate)
        controls.addWidget(self.spread)
        controls.addSpacing(16)
        controls.addWidget(QLabel("Metric:"))
        controls.addWidget(self.metric_choice)
        controls.addStretch(1)
        chart_row = QWidget()
        chart_layout = QHBoxLayout(chart_row)
        chart_layout.setContentsMargins(0, 0, 0, 0)
        for chart in self.charts.values():
            chart_layout.addWidget(chart)
        tables = QSplitter(Qt.Orientation.Horizontal)
        tables.addWidget(_titled("Results", self.metric_table))
        tables.addWidget(_titled("Spec differences", self.diff_table))
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(chart_row)
        splitter.addWidget(tables)
        splitter.setSizes([400, 250])
        content = QWidget()
        content_layout = QVBoxLayout(content)
        content_layout.setContentsMargins(0, 0, 0, 0)
        content_layout.addLayout(controls)
        content_layout.addWidget(self.info)
        content_layout.addWidget(splitter, 1)
        self.empty_state = EmptyState(EMPTY_TITLE, EMPTY_TEXT, replaces=[content])
        layout = QVBoxLayout(self)
        layout.addWidget(content, 1)
        layout.addWidget(self.empty_state, 1)
        self.empty_state.set_empty(True)

        self.aggregate.toggled.connect(self._on_aggregate)
        self.spread.currentIndexChanged.connect(
            lambda _i: self._redraw() if self.aggregate.isChecked() else None
        )
        self.metric_choice.currentTextChanged.connect(self._on_metric)
        state.db_changed.connect(lambda _path: self.show_runs([]))

    # ------------------------------------------------------------------------- the API

    def show_runs(self, run_ids: Sequence[int]) -> None:
        """Compare these runs (read from the store now); fewer than two show the hint."""
        ids = list(dict.fromkeys(run_ids))
        self._curves.clear()
        records: list[RunRecord] = []
        lost: list[int] = []
        keys: list[str] = []
        note = ""
        try:
            with self.state.open_store() as store:
                for run_id in ids:
                    try:
                        records.append(store.get_run(run_id))
                    except RunNotFound:
                        lost.append(run_id)
                found = [r.id for r in records]
                keys = metric_keys(store, found)
                for cid in ("loss", "accuracy"):
                    key = CHARTS[cid].key
                    assert key is not None
                    self._curves[key] = read_curves(store, found, key)
        except UserError as exc:
            records, note = [], str(exc)
        if lost:
            listed = ", ".join(f"#{i}" for i in lost)
            were = "Runs {} are" if len(lost) > 1 else "Run {} is"
            note = f"{were.format(listed)} no longer in the store."
        self.records = records
        self._groups = group_runs(records)
        self._diff = spec_diff({r.id: parse_spec(r.spec_json) for r in records})
        if len(records) < 2:
            self.empty_state.set_message(EMPTY_TITLE, f"{note}\n\n{EMPTY_TEXT}".strip())
            self.empty_state.set_empty(True)
            self._clear_charts()
            self._fill_tables()
            return
        self.empty_state.set_empty(False)
        self.info.setText(self._describe(note))
        self._fill_metric_choices(keys)
        self._fill_diff_table()
        self._redraw()

    def run_ids(self) -> list[int]:
        return [r.id for r in self.records]

    def is_empty(self) -> bool:
        """Whether the panel shows its empty state (fewer than two runs) instead of a comparison."""
        return self.empty_state.is_shown()

    def curve_names(self, chart: str = "loss") -> list[str]:
        """The legend names of one chart's lines ("#id name", or group labels aggregated)."""
        return self.charts[chart].curve_names()

    def band_names(self, chart: str = "loss") -> list[str]:
        """The groups that have a spread band in one chart."""
        return list(self._bands[chart])

    def diff_rows(self) -> list[DiffRow]:
        return list(self._diff)

    def metric_rows(self) -> list[MetricRow]:
        return list(self._metric_rows)

    def groups(self) -> list[Group]:
        return list(self._groups)

    def chosen_metric(self) -> str:
        return self.metric_choice.currentText()

    # ----------------------------------------------------------------------- drawing

    def _describe(self, note: str) -> str:
        repeats = len(self._groups) < len(self.records)
        text = f"{len(self.records)} runs"
        if repeats:
            text += f" in {len(self._groups)} recipes (runs differing only in seed or fold)"
        same = "; their specs are the same."
        text += f"; they differ in {len(self._diff)} spec settings." if self._diff else same
        return f"{text} {note}".strip()

    def _fill_metric_choices(self, keys: list[str]) -> None:
        previous = self.metric_choice.currentText()
        pick = next(
            (k for k in (previous, *PREFERRED_CHOICE) if k in keys), keys[0] if keys else ""
        )
        self.metric_choice.blockSignals(True)
        self.metric_choice.clear()
        self.metric_choice.addItems(keys)
        self.metric_choice.setCurrentText(pick)
        self.metric_choice.blockSignals(False)
        self._load_chosen()

    def _load_chosen(self) -> None:
        key = self.metric_choice.currentText()
        if key and key not in self._curves:
            try:
                with self.state.open_store() as store:
                    self._curves[key] = read_curves(store, self.run_ids(), key)
            except UserError as exc:
                self.info.setText(str(exc))
                self._curves[key] = {}
        chart = self.charts["metric"]
        chart.plot.getPlotItem().setTitle(key or CHARTS["metric"].title)
        chart.plot.getPlotItem().setLabel("bottom", axis_for(key))

    def _on_metric(self, _key: str) -> None:
        if self.records:
            self._load_chosen()
            self._draw_chart("metric")

    def _on_aggregate(self, on: bool) -> None:
        self.spread.setEnabled(on)
        self._redraw()

    def _redraw(self) -> None:
        if len(self.records) < 2:
            return
        for cid in CHARTS:
            self._draw_chart(cid)
        self._fill_metric_table()

    def _key(self, cid: str) -> str:
        return CHARTS[cid].key or self.metric_choice.currentText()

    def _draw_chart(self, cid: str) -> None:
        chart = self.charts[cid]
        self._clear_chart(cid)
        key = self._key(cid)
        curves = self._curves.get(key, {})
        axis = axis_for(key)
        if not self.aggregate.isChecked():
            for i, record in enumerate(self.records):
                xs, ys = curve_xy(curves.get(record.id, []), axis)
                self._line(chart, run_label(record), PALETTE[i % len(PALETTE)], xs, ys, axis)
            return
        spread = SPREADS[self.spread.currentText()]
        for i, group in enumerate(self._groups):
            color = PALETTE[i % len(PALETTE)]
            band = aggregate_curves([curves.get(r, []) for r in group.run_ids], axis, spread)
            self._line(chart, group.label, color, band.x, band.mean, axis)
            if len(group.records) > 1 and len(band.x):
                self._band(cid, group.label, color, band.x, band.low, band.high)

    @staticmethod
    def _line(
        chart: LiveChart, name: str, color: str, xs: np.ndarray, ys: np.ndarray, axis: str
    ) -> None:
        chart.add_curve(name, color=color, markers=axis == "epoch" and len(xs) <= MARKED_POINTS)
        chart.set(name, xs, ys)

    def _band(
        self, cid: str, name: str, color: str, xs: np.ndarray, low: np.ndarray, high: np.ndarray
    ) -> None:
        fill = QColor(color)
        fill.setAlpha(BAND_ALPHA)
        item = pg.FillBetweenItem(
            pg.PlotCurveItem(xs, low), pg.PlotCurveItem(xs, high), brush=pg.mkBrush(fill)
        )
        item.setZValue(-10)  # under every line
        self.charts[cid].plot.addItem(item)
        self._bands[cid][name] = item

    def _clear_chart(self, cid: str) -> None:
        chart = self.charts[cid]
        for item in self._bands[cid].values():
            chart.plot.removeItem(item)
        self._bands[cid].clear()
        chart.clear()

    def _clear_charts(self) -> None:
        for cid in CHARTS:
            self._clear_chart(cid)

    # ------------------------------------------------------------------------ tables

    def _fill_tables(self) -> None:
        self._fill_metric_table()
        self._fill_diff_table()

    def _fill_metric_table(self) -> None:
        grouped = self.aggregate.isChecked()
        rows = group_metric_table(self._groups) if grouped else metric_table(self.records)
        self._metric_rows = rows
        table = self.metric_table
        table.clear()
        table.setColumnCount(1 + len(METRIC_COLUMNS))
        table.setHorizontalHeaderLabels(
            ["Recipe" if grouped else "Run", *(c.title for c in METRIC_COLUMNS)]
        )
        table.setRowCount(len(rows))
        bold = QFont(table.font())
        bold.setBold(True)
        for r, row in enumerate(rows):
            table.setItem(r, 0, _item(row.label))
        for c, column in enumerate(METRIC_COLUMNS, start=1):
            best = best_row(rows, column)
            for r, row in enumerate(rows):
                cell = _item(row.texts[column.title], right=True)
                if r == best:
                    cell.setFont(bold)
                    cell.setToolTip(f"The best {column.title.lower()} of these runs.")
                table.setItem(r, c, cell)

    def _fill_diff_table(self) -> None:
        table = self.diff_table
        table.clear()
        table.setColumnCount(1 + len(self.records))
        table.setHorizontalHeaderLabels(["Setting", *(run_label(r) for r in self.records)])
        table.setRowCount(len(self._diff))
        for r, row in enumerate(self._diff):
            table.setItem(r, 0, _item(row.path))
            for c, record in enumerate(self.records, start=1):
                table.setItem(r, c, _item(row.values.get(record.id, "")))


def _table() -> QTableWidget:
    table = QTableWidget(0, 0)
    table.verticalHeader().setVisible(False)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setAlternatingRowColors(True)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    table.horizontalHeader().setStretchLastSection(True)
    return table


def _item(text: str, *, right: bool = False) -> QTableWidgetItem:
    item = QTableWidgetItem(text)
    item.setToolTip(text)
    if right:
        item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    return item


def _titled(title: str, widget: QWidget) -> QWidget:
    box = QWidget()
    layout = QVBoxLayout(box)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.addWidget(QLabel(title))
    layout.addWidget(widget, 1)
    return box


def _standalone_panel(state: AppState) -> ComparePanel:
    """The panel on the newest runs of the store, for a quick look (``--real-db``)."""
    panel = ComparePanel(state)
    try:
        with state.open_store() as store:
            newest = [r.id for r in store.list_runs(limit=4)]
    except UserError:
        newest = []
    panel.show_runs(newest)
    return panel


if __name__ == "__main__":
    from cnn_lab.app.panels._standalone import run_standalone

    raise SystemExit(run_standalone(_standalone_panel))
