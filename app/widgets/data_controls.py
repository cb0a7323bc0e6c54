"""The Data panel's left column: the source, preprocessing and splits, and augmentation boxes,
in one fixed-width column that scrolls on a short screen.

It shows a DatasetSpec (``load``) and reads back what the controls hold (``values``); the form
model (app/models/data_form.py) turns those values into a spec and says what is wrong.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QScrollArea, QVBoxLayout, QWidget

from cnn_lab.app.widgets.augment_controls import AugmentControls
from cnn_lab.app.widgets.data_source_picker import SourcePicker
from cnn_lab.app.widgets.preprocessing_form import PreprocessingForm
from cnn_lab.engine.specs import DatasetSpec

WIDTH = 410


class DataControls(QScrollArea):
    """Every control that sets a DatasetSpec field, grouped in three boxes."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.source = SourcePicker()
        self.preprocessing = PreprocessingForm()
        self.augmentation = AugmentControls()
        column = QWidget()
        layout = QVBoxLayout(column)
        layout.setContentsMargins(0, 0, 6, 0)
        layout.setSpacing(4)
        for box in (self.source, self.preprocessing, self.augmentation):
            layout.addWidget(box)
        layout.addStretch(1)
        self.setWidget(column)
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setFixedWidth(WIDTH)

    def load(self, spec: DatasetSpec) -> None:
        """Show ``spec`` in the controls, quietly: the caller pushes the spec itself."""
        if self.source.combo.findData(spec.source) < 0:
            self.source.add_source(spec.source)
        self.source.select_quietly(spec.source)
        self.preprocessing.load(spec)
        self.augmentation.set_from(spec)

    def values(self) -> dict[str, Any]:
        """What the controls hold, as plain values: the form model makes a spec of them."""
        return {
            "source": self.source.current(),
            **self.preprocessing.values(),
            **self.augmentation.fields(),
        }
