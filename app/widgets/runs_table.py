"""The Runs table: one row per recorded run, sorted by the store (not by the view).

Sorting happens in SQL (``engine/store/run_query.SORTS``) so that 10,000 runs sort as fast as
they list; clicking a header only says which order the panel should ask the store for.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QBrush, QColor

from cnn_lab.engine.store import RunRecord

_Index = QModelIndex | QPersistentModelIndex


def _percent(value: Any) -> str:
    return (
        "" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.1%}"
    )


def _created(record: RunRecord) -> str:
    if not record.created_at:
        return ""
    return datetime.fromtimestamp(record.created_at).strftime("%Y-%m-%d %H:%M:%S")


@dataclass(frozen=True)
class Column:
    """A table column: its header, the store order it sorts by (None: not sortable), its text."""

    title: str
    sort: str | None
    text: Callable[[RunRecord], Any]


COLUMNS: list[Column] = [
    Column("ID", "id", lambda r: r.id),
    Column("Status", "status", lambda r: r.status + (" (archived)" if r.archived else "")),
    Column("Name", "name", lambda r: r.name),
    Column("Tags", None, lambda r: ", ".join(r.tags)),
    Column("Data", "dataset", lambda r: r.dataset),
    Column("Model", "model", lambda r: r.model),
    Column("Epochs", "epochs", lambda r: r.summary.get("epochs", "")),
    Column(
        "Best val acc", "best_val_accuracy", lambda r: _percent(r.summary.get("best_val_accuracy"))
    ),
    Column(
        "Images/s",
        "images_per_s",
        lambda r: (
            f"{r.summary['train_images_per_s']:,.0f}" if r.summary.get("train_images_per_s") else ""
        ),
    ),
    Column("Device", "device", lambda r: r.summary.get("device") or r.device),
    Column("Created", "created", _created),
    Column(
        "Duration",
        "duration",
        lambda r: f"{r.duration_s:.1f} s" if r.duration_s is not None else "",
    ),
]

SUMMARY_KEYS = ("epochs", "best_val_accuracy", "train_images_per_s", "device")
"""The summary values the columns show: the store extracts only these when listing."""

_ARCHIVED = QBrush(QColor(130, 130, 130))


class RunsTableModel(QAbstractTableModel):
    """The listed runs, as the store returned them (already filtered and sorted)."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[RunRecord] = []

    def set_records(self, records: list[RunRecord]) -> None:
        self.beginResetModel()
        self.records = records
        self.endResetModel()

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.records)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return len(COLUMNS)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        record = self.records[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return str(COLUMNS[index.column()].text(record))
        if role == Qt.ItemDataRole.ToolTipRole:
            lines = [text for text in (record.reason, record.hint, record.note) if text]
            return "\n".join(lines) or None
        if role == Qt.ItemDataRole.ForegroundRole and record.archived:
            return _ARCHIVED
        return None

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation != Qt.Orientation.Horizontal:
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section].title
        if role == Qt.ItemDataRole.ToolTipRole:
            return "Click to sort" if COLUMNS[section].sort else "Not sortable"
        return None
