"""The Data panel's right side: the import's status line and progress, the import report, the
images per class, and the example images before and after augmentation.

It shows what it is given; the panel decides when to import and what to say.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from cnn_lab.app.models.data_import import EXAMPLES_PER_CLASS, Imported
from cnn_lab.app.widgets.class_histogram import ClassHistogram
from cnn_lab.app.widgets.image_grid import ClassImageGrid
from cnn_lab.app.widgets.report_view import ReportView
from cnn_lab.app.widgets.task_progress import TaskProgress

CELL_TARGET = 64
"""Small images are enlarged by a whole factor to about this many pixels on screen..."""
CELL_MAX = 96
"""...and images larger than this are shrunk to it, so a 224 px dataset still fits."""
ERROR_STYLE = "color: #c62828;"


def _scrolling(widget: QWidget) -> QScrollArea:
    scroll = QScrollArea()
    scroll.setWidget(widget)
    scroll.setWidgetResizable(True)
    scroll.setFrameShape(QFrame.Shape.NoFrame)
    return scroll


def _grid() -> ClassImageGrid:
    grid = ClassImageGrid(per_class=EXAMPLES_PER_CLASS, scale=2, max_side=CELL_MAX)
    grid.layout().setContentsMargins(0, 0, 0, 0)
    return grid


class ImportResults(QWidget):
    """Status row over the report and histogram, over the example and augmented grids."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.progress = TaskProgress(bar_width=220)
        """The import's stage, count and time left (shown while an import runs)."""
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the import; the report below stays as it was")
        self.cancel_button.setVisible(False)
        self.retry_button = QPushButton("Import again")
        self.retry_button.setVisible(False)
        status_row = QHBoxLayout()
        status_row.addWidget(self.status, 1)
        status_row.addWidget(self.progress)
        status_row.addWidget(self.cancel_button)
        status_row.addWidget(self.retry_button)

        self.report_view = ReportView()
        report_box = QGroupBox("Import report")
        QVBoxLayout(report_box).addWidget(self.report_view)
        self.histogram = ClassHistogram(title="")
        self.histogram.setMinimumWidth(240)
        histogram_box = QGroupBox("Images per class")
        QVBoxLayout(histogram_box).addWidget(self.histogram)
        top = QSplitter(Qt.Orientation.Horizontal)
        top.addWidget(report_box)
        top.addWidget(histogram_box)
        top.setSizes([480, 380])

        self.grid = _grid()
        self.examples_box = QGroupBox("Examples")
        QVBoxLayout(self.examples_box).addWidget(_scrolling(self.grid))
        self.augmented_grid = _grid()
        self.reroll_button = QPushButton("Re-roll")
        self.reroll_button.setToolTip("Draw the random augmentations again with a new seed")
        self.preview_status = QLabel()
        self.preview_status.setStyleSheet("color: palette(mid);")
        self.preview_status.setWordWrap(True)  # long on a narrow window: wrap, never widen it
        head = QHBoxLayout()
        head.addWidget(self.preview_status, 1)
        head.addWidget(self.reroll_button)
        self.augmented_box = QGroupBox("After augmentation")
        augmented_layout = QVBoxLayout(self.augmented_box)
        augmented_layout.addLayout(head)
        augmented_layout.addWidget(_scrolling(self.augmented_grid))
        bottom = QSplitter(Qt.Orientation.Horizontal)
        bottom.addWidget(self.examples_box)
        bottom.addWidget(self.augmented_box)
        bottom.setSizes([430, 430])

        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(top)
        split.addWidget(bottom)
        split.setStretchFactor(0, 2)
        split.setStretchFactor(1, 3)
        split.setSizes([330, 370])

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(status_row)
        layout.addWidget(split, 1)

    def set_busy(self, busy: bool, text: str) -> None:
        """Start or end an import: the status text, the progress bar and the Cancel button."""
        self.status.setText(text)
        self.status.setStyleSheet("")
        if busy:
            self.progress.start("Starting")
        else:
            self.progress.finish()
        self.cancel_button.setVisible(busy)
        self.cancel_button.setEnabled(busy)
        self.retry_button.setVisible(False)

    def show_outcome(self, text: str, error: bool = False, retry: bool = False) -> None:
        """How an import ended: done, or (``error``, in red) why no dataset can train; with
        ``retry``, the Import again button (after a failure or a cancel)."""
        self.set_busy(False, text)
        if error:
            self.status.setStyleSheet(ERROR_STYLE)
        self.retry_button.setVisible(retry)

    def show_cancelling(self) -> None:
        self.status.setText("Cancelling…")
        self.cancel_button.setEnabled(False)

    def show_import(self, report: Any, imported: Imported) -> None:
        """The report, the class counts and the example images of an import that completed."""
        self.report_view.show_report(report)
        self.histogram.set_counts(report.classes)
        size = int(imported.examples.shape[1]) if imported.examples.ndim == 4 else CELL_TARGET
        scale = max(1, CELL_TARGET // max(size, 1))
        self.grid.scale = self.augmented_grid.scale = scale
        self.grid.show_images(
            imported.examples, imported.example_labels, imported.classes, imported.counts
        )
        self.examples_box.setTitle(f"Examples ({report.image_size}×{report.image_size} px)")

    def show_preview(self, imported: Imported, images: np.ndarray, text: str) -> None:
        """``images``: the examples after augmentation (or as they are); ``text`` says which."""
        self.preview_status.setText(text)
        self.augmented_grid.show_images(
            images, imported.example_labels, imported.classes, imported.counts
        )
