"""The Runs panel's table: the runs a store query listed, sorted by the header, selected by
run id.

Selection is by run id (rows move as the list is asked again), and ``selection_shown`` fires
once per change of selection, also when the runs asked for were selected already, so the
panel loads the current run's curves once either way.
"""

from __future__ import annotations

from PySide6.QtCore import QItemSelection, Qt, Signal
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableView, QWidget

from cnn_lab.app.widgets.runs_table import COLUMNS, RunsTableModel

RESIZE_ROWS = 100
"""Rows whose text sizes the columns (about a screenful)."""


def sort_column(key: str) -> int:
    """The column a store sort key orders by."""
    return next(i for i, c in enumerate(COLUMNS) if c.sort == key)


class RunsTableView(QTableView):
    """Rows of runs; ``records`` are the listed runs, in the table's order."""

    selection_shown = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.runs = RunsTableModel()
        self.setModel(self.runs)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setAlternatingRowColors(True)
        self.verticalHeader().setVisible(False)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        header = self.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        # Column widths from the first rows only: measuring Qt's default 1,000 rows calls the
        # model tens of thousands of times and made 10,000 runs take over a second to list.
        header.setResizeContentsPrecision(RESIZE_ROWS)
        header.setStretchLastSection(True)
        header.setSectionsClickable(True)
        header.setSortIndicatorShown(True)
        self.selectionModel().selectionChanged.connect(lambda *_: self.selection_shown.emit())

    def show_sort(self, key: str, descending: bool) -> None:
        order = Qt.SortOrder.DescendingOrder if descending else Qt.SortOrder.AscendingOrder
        self.horizontalHeader().setSortIndicator(sort_column(key), order)

    def selected_ids(self) -> list[int]:
        rows = sorted(index.row() for index in self.selectionModel().selectedRows())
        return [self.runs.records[row].id for row in rows]

    def current_id(self) -> int | None:
        """The current run (the one whose curves show) among the selected."""
        ids = self.selected_ids()
        current = self.currentIndex()
        if current.isValid() and self.runs.records[current.row()].id in ids:
            return self.runs.records[current.row()].id
        return ids[0] if ids else None

    def select_ids(self, run_ids: list[int]) -> bool:
        """Select these runs (those listed); False when none of them is listed."""
        wanted = set(run_ids)
        rows = [row for row, record in enumerate(self.runs.records) if record.id in wanted]
        if not rows:
            return False
        selection = self.selectionModel()
        # The current row first, then every row in one change: one selectionChanged, so the
        # curves load once (selecting rows one by one loaded them once per row).
        selection.setCurrentIndex(self.runs.index(rows[0], 0), selection.SelectionFlag.NoUpdate)
        chosen = QItemSelection()
        for row in rows:
            chosen.select(self.runs.index(row, 0), self.runs.index(row, 0))
        flags = selection.SelectionFlag.ClearAndSelect | selection.SelectionFlag.Rows
        if set(self.selected_ids()) == wanted & {r.id for r in self.runs.records}:
            self.selection_shown.emit()  # already selected: no signal would come, show it anyway
        else:
            selection.select(chosen, flags)
        return True
