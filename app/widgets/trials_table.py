"""The trials table: one row per finished trial, filled as the sweep reports them.

Rows are keyed by trial number, so a trial that is reported again (a resumed sweep's
summary, or an interrupted trial that ran again) replaces its row instead of adding one.
Selecting rows emits the selected trials' run ids, which the Sweep panel draws as curves.
"""

from __future__ import annotations

import math
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem

COLUMNS = ("#", "State", "Parameters", "Value", "Epochs", "Run")


def format_params(params: dict[str, Any]) -> str:
    """``lr=0.01, batch_size=16``: the last part of each path is enough to read a row."""
    return ", ".join(
        f"{path.rsplit('.', 1)[-1]}={value:g}"
        if isinstance(value, float)
        else f"{path.rsplit('.', 1)[-1]}={value}"
        for path, value in params.items()
    )


def _item(value: Any, text: str | None = None) -> QTableWidgetItem:
    """A read-only cell that sorts by ``value`` (numbers as numbers) and shows ``text``."""
    item = QTableWidgetItem()
    item.setData(Qt.ItemDataRole.DisplayRole, value if text is None else text)
    item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
    return item


class TrialsTable(QTableWidget):
    """Finished trials, newest last; ``runs_selected`` carries the selected rows' run ids."""

    runs_selected = Signal(list)

    def __init__(self) -> None:
        super().__init__(0, len(COLUMNS))
        self.setHorizontalHeaderLabels(COLUMNS)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.verticalHeader().setVisible(False)
        header = self.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.outcomes: dict[int, dict[str, Any]] = {}
        self.itemSelectionChanged.connect(self._on_selection)

    def clear_trials(self) -> None:
        self.outcomes.clear()
        self.setRowCount(0)

    def add_outcome(self, outcome: dict[str, Any]) -> None:
        """Show one trial (a ``TrialOutcome.to_dict()``), replacing its row if it is listed."""
        number = int(outcome["number"])
        rows = sorted(self.outcomes)
        if number in self.outcomes:
            row = rows.index(number)
        else:
            rows.append(number)
            rows.sort()
            row = rows.index(number)
            self.insertRow(row)
        self.outcomes[number] = outcome
        value = outcome.get("value")
        shown = "" if value is None or not math.isfinite(value) else f"{value:.4f}"
        run_id = outcome.get("run_id")
        state = str(outcome.get("state", ""))
        cells = [
            _item(number),
            _item(state),
            _item(format_params(outcome.get("params", {}))),
            _item(value if value is not None else -math.inf, shown),
            _item(int(outcome.get("epochs", 0))),
            _item(run_id if run_id is not None else -1, "" if run_id is None else str(run_id)),
        ]
        if outcome.get("reason"):
            cells[1].setToolTip(str(outcome["reason"]))
        for column, cell in enumerate(cells):
            self.setItem(row, column, cell)

    def set_outcomes(self, outcomes: list[dict[str, Any]]) -> None:
        for outcome in outcomes:
            self.add_outcome(outcome)

    def selected_run_ids(self) -> list[int]:
        numbers = sorted(self.outcomes)
        rows = sorted({index.row() for index in self.selectedIndexes()})
        ids = [self.outcomes[numbers[row]].get("run_id") for row in rows if row < len(numbers)]
        return [int(i) for i in ids if i is not None]

    def _on_selection(self) -> None:
        self.runs_selected.emit(self.selected_run_ids())


__all__ = ["TrialsTable", "format_params"]
