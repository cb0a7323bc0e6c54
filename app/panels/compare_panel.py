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
from typing import Any

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

from cnn_lab.app.models.compare_form import (
    CHARTS,
    EMPTY_TEXT,
    EMPTY_TITLE,
    SPREADS,
    Comparison,
    ComparisonRead,
    Line,
    read_comparison,
)
from cnn_lab.app.state import AppState
from cnn_lab.app.widgets.charts import PALETTE, LiveChart
from cnn_lab.app.widgets.empty_state import EmptyState
from cnn_lab.app.widgets.plain_label import plain_label
from cnn_lab.engine.store import RunRecord
from cnn_lab.engine.store.compare import (
    METRIC_COLUMNS,
    DiffRow,
    Group,
    MetricRow,
    axis_for,
    best_row,
    read_curves,
    run_label,
)

BAND_ALPHA = 60
"""Opacity (of 255) of a group's spread band: the mean line stays readable through it."""
MARKED_POINTS = 100
"""Per-epoch curves with at most this many points get markers, so short runs show."""


class ComparePanel(QWidget):
    title = "Compare"

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.comparison = Comparison()
        self._metric_rows: list[MetricRow] = []
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

    @property
    def records(self) -> list[RunRecord]:
        """The runs compared, in the order given."""
        return self.comparison.records

    def show_runs(self, run_ids: Sequence[int]) -> None:
        """Compare these runs once the store has answered; fewer than two show the hint."""
        ids = list(run_ids)
        self.state.store.call(
            lambda store: read_comparison(store, ids),
            self._show_read,
            self._show_failed,
            key=f"compare-{id(self)}",
            what="the runs to compare",
        )

    def _show_failed(self, sentence: str) -> None:
        self.comparison.fail(sentence)
        self._show_comparison()

    def _show_read(self, read: ComparisonRead) -> None:
        self.comparison.take(read)
        self._show_comparison()

    def _show_comparison(self) -> None:
        comparison = self.comparison
        if not comparison.comparable():
            self.empty_state.set_message(EMPTY_TITLE, comparison.empty_text())
            self.empty_state.set_empty(True)
            self._clear_charts()
            self._fill_tables()
            return
        self.empty_state.set_empty(False)
        self.info.setText(comparison.describe())
        self._fill_metric_choices()
        self._fill_diff_table()
        self._redraw()

    def run_ids(self) -> list[int]:
        return self.comparison.run_ids()

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
        return list(self.comparison.diff)

    def metric_rows(self) -> list[MetricRow]:
        return list(self._metric_rows)

    def groups(self) -> list[Group]:
        return list(self.comparison.groups)

    def chosen_metric(self) -> str:
        return self.metric_choice.currentText()

    # ----------------------------------------------------------------------- drawing

    def _fill_metric_choices(self) -> None:
        pick = self.comparison.pick_metric(self.metric_choice.currentText())
        self.metric_choice.blockSignals(True)
        self.metric_choice.clear()
        self.metric_choice.addItems(self.comparison.keys)
        self.metric_choice.setCurrentText(pick)
        self.metric_choice.blockSignals(False)
        self._load_chosen()

    def _load_chosen(self) -> None:
        key = self.metric_choice.currentText()
        if self.comparison.needs(key):
            ids = self.comparison.run_ids()
            self.state.store.call(
                lambda store: read_curves(store, ids, key),
                lambda curves: self._take_curves(key, ids, curves),
                lambda sentence: self._take_curves(key, ids, {}, sentence),
                key=f"compare-metric-{id(self)}",
                what=f"the {key} curves",
            )
        chart = self.charts["metric"]
        chart.plot.getPlotItem().setTitle(key or CHARTS["metric"].title)
        chart.plot.getPlotItem().setLabel("bottom", axis_for(key))

    def _take_curves(
        self, key: str, ids: list[int], curves: dict[int, Any], problem: str = ""
    ) -> None:
        if ids != self.comparison.run_ids():
            return  # other runs are compared now
        self.comparison.take_curves(key, curves)
        if problem:
            self.info.setText(problem)
        if key == self.metric_choice.currentText():
            self._draw_chart("metric")

    def _on_metric(self, _key: str) -> None:
        if self.records:
            self._load_chosen()
            self._draw_chart("metric")

    def _on_aggregate(self, on: bool) -> None:
        self.spread.setEnabled(on)
        self._redraw()

    def _redraw(self) -> None:
        if not self.comparison.comparable():
            return
        for cid in CHARTS:
            self._draw_chart(cid)
        self._fill_metric_table()

    def _draw_chart(self, cid: str) -> None:
        self._clear_chart(cid)
        key = CHARTS[cid].key or self.metric_choice.currentText()
        markers = axis_for(key) == "epoch"
        lines = self.comparison.lines(
            key,
            aggregate=self.aggregate.isChecked(),
            spread=SPREADS[self.spread.currentText()],
        )
        for line in lines:
            self._draw_line(cid, line, markers=markers and len(line.xs) <= MARKED_POINTS)

    def _draw_line(self, cid: str, line: Line, *, markers: bool) -> None:
        chart = self.charts[cid]
        color = PALETTE[line.colour % len(PALETTE)]
        chart.add_curve(line.name, color=color, markers=markers)
        chart.set(line.name, line.xs, line.ys)
        if line.band is not None:
            self._band(cid, line.name, color, line.xs, *line.band)

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
        rows = self.comparison.metric_rows(aggregate=grouped)
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
        table.setRowCount(len(self.comparison.diff))
        for r, row in enumerate(self.comparison.diff):
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
    state.store.call(
        lambda store: [r.id for r in store.list_runs(limit=4)], panel.show_runs, lambda _: None
    )
    return panel


if __name__ == "__main__":
    from cnn_lab.app.panels._standalone import run_standalone

    raise SystemExit(run_standalone(_standalone_panel))
