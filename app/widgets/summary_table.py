"""The live summary: one row per layer (or per unit of a preset) and the totals under it.

It shows a ModelSummary (engine/models/summary.py) as a person reads it: shapes as
[64, 16, 16], counts as 1.2 M and 3.4 G, bytes as MiB. The totals carry the estimated
training memory at the batch size and optimizer chosen in the Hyperparameters panel. When
the network has an error the last good summary stays, greyed, so the person keeps their
bearings while fixing it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from cnn_lab.engine.util.formatting import format_bytes, format_count, format_shape

COLUMNS = ("#", "Layer", "Output shape", "Params", "MACs", "Activations", "RF")


class SummaryTable(QWidget):
    """The per-layer table, a totals line, and a "computing…" mark while a summary runs."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.summary: Any = None
        self.batch_size = 64
        self.optimizer = "sgd"
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setAlternatingRowColors(True)
        self.table.verticalHeader().setDefaultSectionSize(22)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.totals = QLabel("No summary yet.")
        self.totals.setWordWrap(True)
        self.totals.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.busy_label = QLabel("computing…")
        self.busy_label.setStyleSheet("color: palette(placeholder-text); font-style: italic;")
        self.busy_label.setVisible(False)
        bottom = QHBoxLayout()
        bottom.addWidget(self.totals, 1)
        bottom.addWidget(self.busy_label, 0, Qt.AlignmentFlag.AlignTop)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.table, 1)
        layout.addLayout(bottom)

    def show_summary(self, summary: Any, labels: Sequence[str] | None = None) -> None:
        """Fill the table from ``summary``; ``labels`` name the rows of a layer-built net."""
        self.summary = summary
        rows = summary.layers
        self.table.setRowCount(len(rows))
        for i, row in enumerate(rows):
            name = labels[i] if labels is not None and i < len(labels) else row.name
            values = (
                str(i + 1),
                name,
                format_shape(row.output_shape),
                format_count(row.params),
                format_count(row.macs),
                format_bytes(row.activation_bytes),
                "—" if row.receptive_field is None else str(row.receptive_field),
            )
            for column, text in enumerate(values):
                item = QTableWidgetItem(text)
                if column != 1:
                    item.setTextAlignment(
                        Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
                    )
                if column == 1:
                    item.setToolTip(f"{row.name} ({row.kind})")
                self.table.setItem(i, column, item)
        self.set_stale(False)
        self._show_totals()

    def set_training(self, batch_size: int, optimizer: str) -> None:
        """The batch size and optimizer the training-memory estimate is for."""
        self.batch_size, self.optimizer = batch_size, optimizer
        self._show_totals()

    def _show_totals(self) -> None:
        s = self.summary
        if s is None:
            self.totals.setText("No summary yet.")
            return
        frozen = s.params - s.trainable_params
        trainable = (
            "all trainable" if not frozen else f"{format_count(s.trainable_params)} trainable"
        )
        memory = s.training_memory_bytes(self.batch_size, self.optimizer)
        rf = "—" if s.receptive_field is None else f"{s.receptive_field} px"
        self.totals.setText(
            f"<b>Parameters</b> {s.params:,} ({format_count(s.params)}, {trainable})"
            f" &nbsp;·&nbsp; <b>Receptive field</b> {rf}<br>"
            f"<b>MACs</b> {format_count(s.macs)} per image &nbsp;·&nbsp; "
            f"<b>Activations</b> {format_bytes(s.activation_bytes)} per image<br>"
            f"<b>Training memory</b> ≈ {format_bytes(memory)} at batch {self.batch_size} "
            f"with {self.optimizer}"
        )
        self.totals.setToolTip(
            "Training memory counts weights, gradients, optimizer state, the input batch and "
            "the activations autograd saves for backward, in fp32. The framework's own "
            "workspace (cuDNN, allocator caching, the CUDA context) comes on top."
        )

    def totals_text(self) -> str:
        """The totals as plain text (tests read it)."""
        text = self.totals.text().replace("&nbsp;", " ").replace("<br>", "\n")
        return text.replace("<b>", "").replace("</b>", "")

    def set_busy(self, busy: bool) -> None:
        self.busy_label.setVisible(busy)

    def set_stale(self, stale: bool) -> None:
        """Grey the table and totals: they belong to an earlier version of the network."""
        self.table.setStyleSheet("QTableWidget { color: gray; }" if stale else "")
        self.totals.setStyleSheet("color: gray;" if stale else "")

    def clear(self) -> None:
        self.summary = None
        self.table.setRowCount(0)
        self._show_totals()
