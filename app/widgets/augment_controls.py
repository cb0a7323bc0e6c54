"""Augmentation controls: one checkbox and strength slider per registered augmentation.

Rows come from the engine's registry (metadata only, no torch), so a new augmentation shows up
here without touching the GUI.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDoubleSpinBox,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from cnn_lab.engine.data.augment import augmentation_info, augmentation_names
from cnn_lab.engine.specs import DatasetSpec


def _alpha_box(tooltip: str) -> QDoubleSpinBox:
    box = QDoubleSpinBox()
    box.setRange(0.0, 10.0)
    box.setSingleStep(0.1)
    box.setSpecialValueText("off")
    box.setToolTip(tooltip)
    return box


class AugmentControls(QGroupBox):
    """Emits ``changed`` when any box, slider or alpha moves."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Augmentation (training only)", parent)
        self.boxes: dict[str, QCheckBox] = {}
        self.sliders: dict[str, QSlider] = {}
        self._values: dict[str, QLabel] = {}
        grid = QGridLayout()
        grid.setColumnStretch(1, 1)
        for row, name in enumerate(augmentation_names()):
            info = augmentation_info(name)
            box = QCheckBox(info.label)
            box.setToolTip(info.description)
            slider = QSlider(Qt.Orientation.Horizontal)
            slider.setRange(0, 100)
            slider.setValue(round(info.default_strength * 100))
            slider.setToolTip(f"Strength (0 = off, 1 = strongest)\n\n{info.description}")
            slider.setMinimumWidth(70)
            value = QLabel()
            value.setMinimumWidth(28)
            self.boxes[name], self.sliders[name], self._values[name] = box, slider, value
            grid.addWidget(box, row, 0)
            grid.addWidget(slider, row, 1)
            grid.addWidget(value, row, 2)
            box.toggled.connect(self._moved)
            slider.valueChanged.connect(self._moved)
        self.mixup_alpha = _alpha_box(
            "Blend pairs of images and their labels (alpha of the Beta draw)"
        )
        self.cutmix_alpha = _alpha_box(
            "Paste a patch of one image into another, labels mixed by area"
        )
        for alpha in (self.mixup_alpha, self.cutmix_alpha):
            alpha.valueChanged.connect(self._moved)
        mixing = QHBoxLayout()
        mixing.addWidget(QLabel("Mixup α"))
        mixing.addWidget(self.mixup_alpha, 1)
        mixing.addSpacing(8)
        mixing.addWidget(QLabel("CutMix α"))
        mixing.addWidget(self.cutmix_alpha, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(grid)
        layout.addLayout(mixing)
        self._show_values()

    def _moved(self, *_: object) -> None:
        self._show_values()
        self.changed.emit()

    def _show_values(self) -> None:
        for name, label in self._values.items():
            label.setText(f"{self.sliders[name].value() / 100:.2f}")
            label.setEnabled(self.boxes[name].isChecked())

    def set_from(self, spec: DatasetSpec) -> None:
        """Show the spec's augmentation; quietly, since the caller pushes the spec itself."""
        chosen = {step.name: step.strength for step in spec.augment}
        self.blockSignals(True)
        try:
            for name, box in self.boxes.items():
                box.setChecked(name in chosen)
                if name in chosen:
                    self.sliders[name].setValue(round(chosen[name] * 100))
            self.mixup_alpha.setValue(spec.mixup_alpha)
            self.cutmix_alpha.setValue(spec.cutmix_alpha)
        finally:
            self.blockSignals(False)
        self._show_values()

    def fields(self) -> dict[str, Any]:
        """The DatasetSpec fields these controls set."""
        return {
            "augment": [
                {"name": name, "strength": round(self.sliders[name].value() / 100, 2)}
                for name, box in self.boxes.items()
                if box.isChecked()
            ],
            "mixup_alpha": round(self.mixup_alpha.value(), 3),
            "cutmix_alpha": round(self.cutmix_alpha.value(), 3),
        }
