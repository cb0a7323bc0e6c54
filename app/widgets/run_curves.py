"""The selected run's story under the Runs table: a line about it (status, reason, tags, note)
and its training-loss and validation-accuracy curves."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QVBoxLayout, QWidget

from cnn_lab.app.widgets.charts import LiveChart


class RunCurves(QWidget):
    """``detail`` also carries the panel's sentences (exports, reports, refusals)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.detail = QLabel("Select a run to see its curves.")
        self.detail.setWordWrap(True)
        self.detail.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.loss_chart = LiveChart("Training loss", y_label="cross-entropy")
        self.accuracy_chart = LiveChart("Validation accuracy", x_label="epoch")
        charts = QWidget()
        charts_layout = QHBoxLayout(charts)
        charts_layout.addWidget(self.loss_chart)
        charts_layout.addWidget(self.accuracy_chart)
        column = QVBoxLayout(self)
        column.addWidget(self.detail)
        column.addWidget(charts, 1)

    def show_run(self, text: str, loss: Sequence[Any], accuracy: Sequence[Any]) -> None:
        """``text`` about the run; ``loss`` by step and ``accuracy`` by epoch (store points)."""
        self.detail.setText(text)
        self.loss_chart.set("train", [p.step for p in loss], [p.value for p in loss])
        self.accuracy_chart.set(
            "validation", [p.epoch for p in accuracy], [p.value for p in accuracy]
        )
