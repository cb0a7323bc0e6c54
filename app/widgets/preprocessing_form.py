"""The Data panel's "Preprocessing and splits" box: one control per DatasetSpec field that the
import or the splits depend on, each labelled and explained from the form model.

The controls hold plain values (0 for auto or "all images"); the form model turns them into
spec fields, so this box has no rules of its own beyond the ranges of its boxes.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QSignalBlocker, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from cnn_lab.app.models.data_form import AUTO_CHANNELS, EMPTY_TEXT, HELP, LABELS, choices
from cnn_lab.engine.specs import DatasetSpec

ROWS = (
    "image_size",
    "channels",
    "resize",
    "normalize",
    "limit",
    "val_fraction",
    "test_fraction",
    "split_seed",
)
"""The fields above the split summary; class balance comes below it."""


def _spin(name: str, low: int, high: int, step: int) -> QSpinBox:
    box = QSpinBox()
    box.setRange(low, high)
    box.setSingleStep(step)
    box.setSpecialValueText(EMPTY_TEXT.get(name, ""))
    box.setToolTip(HELP[name])
    return box


def _fraction(name: str, low: float) -> QDoubleSpinBox:
    box = QDoubleSpinBox()
    box.setRange(low, 0.5)
    box.setSingleStep(0.05)
    box.setSpecialValueText(EMPTY_TEXT.get(name, ""))
    box.setToolTip(HELP[name])
    return box


def _combo(name: str) -> QComboBox:
    box = QComboBox()
    for data, label in choices(name):
        box.addItem(label, data)
    box.setToolTip(HELP[name])
    return box


class PreprocessingForm(QGroupBox):
    """Emits ``changed`` when any control moves (not when ``load`` sets them)."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Preprocessing and splits", parent)
        self.image_size = _spin("image_size", 0, 1024, 8)
        self.image_size.setSuffix(" px")
        self.channels = _combo("channels")
        self.resize_policy = _combo("resize")
        self.resize_policy.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self.resize_policy.setMinimumContentsLength(16)
        self.normalize = _combo("normalize")
        self.val_fraction = _fraction("val_fraction", 0.05)
        self.test_fraction = _fraction("test_fraction", 0.0)
        self.split_seed = _spin("split_seed", 0, 2**31 - 1, 1)
        self.limit = _spin("limit", 0, 10_000_000, 500)
        self.limit.setGroupSeparatorShown(True)
        self.class_balance = _combo("class_balance")
        self.split_summary = QLabel()
        self.split_summary.setWordWrap(True)
        self.split_summary.setStyleSheet("color: palette(mid);")
        self.spec_error = QLabel()
        self.spec_error.setWordWrap(True)
        self.spec_error.setStyleSheet("color: #c62828;")
        self.spec_error.setVisible(False)
        self.expected = QLabel()
        self.expected.setWordWrap(True)
        self.expected.setStyleSheet("color: palette(placeholder-text);")
        self.expected.setToolTip(
            "What the network's pretrained weights were trained on (set in the Architecture "
            "panel). Matching it usually gives the best accuracy; a smaller image size trains "
            "faster."
        )
        self.expected.setVisible(False)

        form = QFormLayout()
        form.addRow(self.expected)
        for name in ROWS:
            self._add_row(form, name)
        form.addRow(self.split_summary)
        self._add_row(form, "class_balance")
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.spec_error)

        for spin in (self.image_size, self.limit, self.split_seed):
            spin.valueChanged.connect(lambda _: self.changed.emit())
        for fraction in (self.val_fraction, self.test_fraction):
            fraction.valueChanged.connect(lambda _: self.changed.emit())
        for combo in (self.channels, self.resize_policy, self.normalize, self.class_balance):
            combo.currentIndexChanged.connect(lambda _: self.changed.emit())

    def _add_row(self, form: QFormLayout, name: str) -> None:
        label = QLabel(LABELS[name])
        label.setToolTip(HELP[name])
        form.addRow(label, self.control(name))

    def control(self, name: str) -> QWidget:
        """The control that sets DatasetSpec field ``name``."""
        return self.resize_policy if name == "resize" else getattr(self, name)

    def load(self, spec: DatasetSpec) -> None:
        """Show ``spec``'s fields, quietly: the caller pushes the spec itself."""
        blockers = [QSignalBlocker(self.control(name)) for name in (*ROWS, "class_balance")]
        self.image_size.setValue(spec.image_size or 0)
        self.channels.setCurrentIndex(self.channels.findData(spec.channels or AUTO_CHANNELS))
        self.resize_policy.setCurrentIndex(max(0, self.resize_policy.findData(spec.resize)))
        self.normalize.setCurrentIndex(max(0, self.normalize.findData(spec.normalize)))
        self.limit.setValue(spec.limit or 0)
        self.val_fraction.setValue(spec.val_fraction)
        self.test_fraction.setValue(spec.test_fraction)
        self.split_seed.setValue(spec.split_seed)
        self.class_balance.setCurrentIndex(self.class_balance.findData(spec.class_balance))
        for blocker in blockers:
            blocker.unblock()

    def values(self) -> dict[str, Any]:
        """What the controls hold, as plain values (the form model makes spec fields of them)."""
        return {
            "image_size": self.image_size.value(),
            "channels": self.channels.currentData(),
            "resize": self.resize_policy.currentData(),
            "normalize": self.normalize.currentData(),
            "limit": self.limit.value(),
            "val_fraction": self.val_fraction.value(),
            "test_fraction": self.test_fraction.value(),
            "split_seed": self.split_seed.value(),
            "class_balance": self.class_balance.currentData(),
        }

    def show_expected(self, text: str) -> None:
        """What the architecture's published weights expect; empty hides the line."""
        self.expected.setText(text)
        self.expected.setVisible(bool(text))

    def show_error(self, text: str) -> None:
        """The sentence saying why the controls make no valid spec; empty hides it."""
        self.spec_error.setText(text)
        self.spec_error.setVisible(bool(text))
