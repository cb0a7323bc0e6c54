"""Augmentation controls: one checkbox and strength slider per registered augmentation.

Rows come from the engine's registry (metadata only, no torch), so a new augmentation shows up
here without touching the GUI. Each tooltip says what the augmentation does and, first, what
augmenting does to accuracy and speed in general.
"""

from __future__ import annotations

from collections.abc import Sequence
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
from cnn_lab.engine.errors import UserError
from cnn_lab.engine.specs import DatasetSpec
from cnn_lab.engine.specs.dataset import AugmentStep

EFFECT = (
    "Training only: more varied training images curb overfitting and usually raise "
    "validation accuracy on small datasets, at the price of more epochs to converge. "
    "Runs batched on the training device, so it barely slows a step."
)
"""What augmenting does to accuracy and speed, shown above each augmentation's own text."""
MIXUP_HELP = (
    "Mixup: blend pairs of images and their labels (alpha of the Beta draw; 0.2 is usual). "
    "A strong regulariser: often better accuracy and calibration in long runs, slower to "
    "converge in short ones; no speed cost per step."
)
CUTMIX_HELP = (
    "CutMix: paste a patch of one image into another, labels mixed by area (alpha 1 is "
    "usual). Regularises like cutout and mixup together: often more accurate in long runs, "
    "slower to converge in short ones; no speed cost per step."
)


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
            box.setToolTip(f"{EFFECT}\n\n{info.description}")
            slider = QSlider(Qt.Orientation.Horizontal)
            slider.setRange(0, 100)
            slider.setValue(round(info.default_strength * 100))
            slider.setToolTip(
                f"Strength (0 = off, 1 = strongest): stronger fights overfitting harder but "
                f"can cost accuracy when the images no longer look like the real ones."
                f"\n\n{info.description}"
            )
            slider.setMinimumWidth(70)
            value = QLabel()
            value.setMinimumWidth(28)
            self.boxes[name], self.sliders[name], self._values[name] = box, slider, value
            grid.addWidget(box, row, 0)
            grid.addWidget(slider, row, 1)
            grid.addWidget(value, row, 2)
            box.toggled.connect(self._moved)
            slider.valueChanged.connect(self._moved)
        self.mixup_alpha = _alpha_box(MIXUP_HELP)
        self.cutmix_alpha = _alpha_box(CUTMIX_HELP)
        for alpha in (self.mixup_alpha, self.cutmix_alpha):
            alpha.valueChanged.connect(self._moved)
        mixing = QHBoxLayout()
        for text, box in (("Mixup α", self.mixup_alpha), ("CutMix α", self.cutmix_alpha)):
            label = QLabel(text)
            label.setToolTip(box.toolTip())
            if box is self.cutmix_alpha:
                mixing.addSpacing(8)
            mixing.addWidget(label)
            mixing.addWidget(box, 1)
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


def describe_augment_change(
    before: Sequence[AugmentStep], after: Sequence[AugmentStep]
) -> tuple[str, str | None]:
    """The undo text of a change to the augmentation list, and its merge key.

    Dragging one strength slider merges into one step (the key names the augmentation);
    ticking or unticking a box is a step of its own.
    """
    old = {step.name: step.strength for step in before}
    new = {step.name: step.strength for step in after}
    names = [name for name in sorted({*old, *new}) if old.get(name) != new.get(name)]
    if len(names) != 1:
        return "Change Augmentation", None
    name = names[0]
    try:
        label = augmentation_info(name).label
    except UserError:  # a step from a newer spec file: its name will do
        label = name
    if name not in new:
        return f"Turn off {label}", None
    if name not in old:
        return f"Turn on {label}", None
    return f"Change {label} strength to {new[name]:g}", f"augment:{name}"
