"""A table of per-class scores (precision, recall, F1, support) that sorts by number.

The engine's class order shows until the person clicks a header; then their order stays
while the table is refilled.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QTableWidget,
    QTableWidgetItem,
    QWidget,
)

COLUMNS = ("Class", "Precision", "Recall", "F1", "Support")


class NumberItem(QTableWidgetItem):
    """A cell that sorts by its number, not by its text."""

    def __init__(self, value: float, text: str) -> None:
        super().__init__(text)
        self.value = value
        self.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)

    def __lt__(self, other: QTableWidgetItem) -> bool:
        if isinstance(other, NumberItem):
            return self.value < other.value
        return super().__lt__(other)


class ClassScoresTable(QTableWidget):
    """One row per class of an ``Evaluation.to_dict()``'s ``per_class`` list."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(0, len(COLUMNS), parent)
        self.setHorizontalHeaderLabels(COLUMNS)
        self.verticalHeader().setVisible(False)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setAlternatingRowColors(True)
        header = self.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        # The engine's class order until the person clicks a header (then their order stays).
        header.setSortIndicator(-1, Qt.SortOrder.AscendingOrder)

    def set_rows(self, per_class: Sequence[dict[str, Any]]) -> None:
        self.setSortingEnabled(False)
        self.setRowCount(len(per_class))
        for row, c in enumerate(per_class):
            self.setItem(row, 0, QTableWidgetItem(str(c["name"])))
            for column, key in enumerate(("precision", "recall", "f1"), start=1):
                value = float(c[key])
                self.setItem(row, column, NumberItem(value, f"{value:.3f}"))
            support = int(c["support"])
            self.setItem(row, 4, NumberItem(support, f"{support:,}"))
        self.setSortingEnabled(True)
