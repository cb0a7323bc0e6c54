"""Inputs for a spec's fields: number boxes bounded by the spec, a number that may be off, and
a choice among any Python values.

The Hyperparameters form is built from these; each box takes its range from the spec field's
own constraints (app/models/field_bounds.py), so the form offers exactly what the spec allows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QSpinBox,
    QWidget,
)

from cnn_lab.app.models.field_bounds import INT_MAX, field_bounds, next_125
from cnn_lab.app.widgets.rate_box import ScientificBox

if TYPE_CHECKING:  # not at run time: see app/panels/data_panel.py on importing pydantic
    from pydantic.fields import FieldInfo

COUNT_RANGE = (0.0, float(INT_MAX))
"""Where a field leaves a side open, the boxes stop at 0 and at the largest int Qt holds."""
NOTE_STYLE = "color: palette(mid);"


def int_box(field: FieldInfo, suffix: str = "") -> QSpinBox:
    """A spin box over the whole numbers ``field`` allows."""
    box = QSpinBox()
    low, high = field_bounds(field, 1, COUNT_RANGE)
    box.setRange(int(low), int(min(high, INT_MAX)))
    box.setSuffix(suffix)
    return box


class NumberBox(ScientificBox):
    """A float spin box that writes 0.0003 or 5e-05 rather than 0.000300, and reads 3e-4.

    With ``log_steps`` the arrows move along 1, 2, 5 × 10^k, which is how learning rates and
    weight decays are searched; a linear step would take a hundred clicks from 1e-4 to 1e-2.
    """

    def __init__(self, field: FieldInfo, *, step: float = 0.1, log_steps: bool = False) -> None:
        super().__init__()
        self.setDecimals(12)
        low, high = field_bounds(field, 1e-6, COUNT_RANGE)
        self.setRange(low, min(high, INT_MAX))
        self.setSingleStep(step)
        self._log_steps = log_steps
        self._smallest = max(low, 1e-6)

    def stepBy(self, steps: int) -> None:
        if not self._log_steps:
            super().stepBy(steps)
            return
        value = self.value()
        for _ in range(abs(steps)):
            value = next_125(value, steps > 0, self._smallest)
        self.setValue(value)


class OptionalBox(QWidget):
    """A check box that switches a number on or off: ``value()`` is None while unticked.

    The number is kept while unticked, so ticking again brings back the last value used.
    """

    changed = Signal()

    def __init__(self, box: QAbstractSpinBox, default: float, text: str = "") -> None:
        super().__init__()
        self.check = QCheckBox(text)
        self.box = box
        box.setValue(default)  # type: ignore[attr-defined]
        box.setEnabled(False)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.check)
        layout.addWidget(box, 1)
        self.check.toggled.connect(self._toggled)
        box.valueChanged.connect(self._value_changed)  # type: ignore[attr-defined]

    def value(self) -> float | int | None:
        return self.box.value() if self.check.isChecked() else None  # type: ignore[attr-defined]

    def set_value(self, value: float | None) -> None:
        if value is not None:
            self.box.setValue(value)  # type: ignore[attr-defined]
        self.check.setChecked(value is not None)

    def _toggled(self, on: bool) -> None:
        self.box.setEnabled(on)
        self.changed.emit()

    def _value_changed(self) -> None:
        if self.check.isChecked():
            self.changed.emit()


class Choice(QComboBox):
    """A combo box of (label, value) items whose values may be any Python value (None too);
    an item may carry a tooltip as a third element.

    String values are also stored as item data, so ``findData("cpu")`` works as on any combo.
    """

    def __init__(self, items: Iterable[tuple[str, Any] | tuple[str, Any, str]] = ()) -> None:
        super().__init__()
        # Long labels (the schedules') must not widen the column; the popup shows them whole.
        self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.setMinimumContentsLength(14)
        self._values: list[Any] = []
        for item in items:
            self.add(*item)

    def add(self, label: str, value: Any, tooltip: str = "") -> None:
        self.addItem(label, value if isinstance(value, str) else None)
        self._values.append(value)
        if tooltip:
            self.setItemData(self.count() - 1, tooltip, Qt.ItemDataRole.ToolTipRole)

    def value(self) -> Any:
        index = self.currentIndex()
        return self._values[index] if 0 <= index < len(self._values) else None

    def label_of(self, value: Any) -> str | None:
        """The label shown for ``value`` (for undo texts), None if this combo lacks it."""
        index = self._index_of(value)
        return self.itemText(index) if index >= 0 else None

    def _index_of(self, value: Any) -> int:
        for index, known in enumerate(self._values):
            if known is value or (type(known) is type(value) and known == value):
                return index
        return -1

    def set_value(self, value: Any, missing_label: str | None = None) -> None:
        """Select ``value``; one this combo does not list is added (e.g. from a stored run)."""
        index = self._index_of(value)
        if index >= 0:
            self.setCurrentIndex(index)
            return
        self.add(missing_label or str(value), value)
        self.setCurrentIndex(self.count() - 1)


class SubSpecBox(QWidget):
    """A nested spec (TrainSpec.fine_tune, say) as a small form of its own: ``value()`` is
    the dict of its fields, ``set_value`` takes one, and a muted note below says what the
    values mean (``show_note``).

    ``inputs`` maps each field to its widget (built here: Choice, NumberBox, int_box);
    ``texts`` to its (label, tooltip).
    """

    changed = Signal()

    def __init__(self, inputs: Mapping[str, QWidget], texts: Mapping[str, tuple[str, str]]) -> None:
        super().__init__()
        self.inputs = {name: field_input(widget) for name, widget in inputs.items()}
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        for name, field in self.inputs.items():
            label, tip = texts.get(name, (name, ""))
            row = QLabel(label)
            row.setToolTip(tip)
            field.widget.setToolTip(tip)
            form.addRow(row, field.widget)
            field.changed.connect(lambda *_: self.changed.emit())
        self.note = note_label()
        form.addRow(self.note)

    @classmethod
    def of_fields(
        cls,
        fields: Mapping[str, FieldInfo],
        texts: Mapping[str, tuple[str, str]],
        choices: Mapping[str, Iterable[tuple[str, Any, str]]],
    ) -> SubSpecBox:
        """A box with one input per field of ``texts``, in its order: a Choice for those in
        ``choices``, a spin box for whole numbers, a number box on a 1-2-5 scale for others."""
        inputs: dict[str, QWidget] = {}
        for name in texts:
            if name in choices:
                inputs[name] = Choice(choices[name])
            elif fields[name].annotation is int:
                inputs[name] = int_box(fields[name])
            else:
                inputs[name] = NumberBox(fields[name], log_steps=True)
        return cls(inputs, texts)

    def value(self) -> dict[str, Any]:
        return {name: field.get() for name, field in self.inputs.items()}

    def set_value(self, value: Mapping[str, Any]) -> None:
        """Show ``value`` and say it changed once, not once per field."""
        self.blockSignals(True)
        try:
            for name, field in self.inputs.items():
                if name in value:
                    field.put(value[name])
        finally:
            self.blockSignals(False)

    def show_note(self, text: str) -> None:
        self.note.setText(text)


@dataclass(frozen=True)
class FieldInput:
    """How a form reads and writes one field's input, and hears the person change it."""

    widget: QWidget
    get: Callable[[], Any]
    put: Callable[[Any], None]
    changed: Any  # the widget's signal for "the person changed this"


def field_input(widget: QWidget) -> FieldInput:
    """The accessors of any input built here, of a check box, or of a spin box."""
    if isinstance(widget, Choice):
        return FieldInput(widget, widget.value, widget.set_value, widget.currentIndexChanged)
    if isinstance(widget, OptionalBox | SubSpecBox):
        return FieldInput(widget, widget.value, widget.set_value, widget.changed)
    if isinstance(widget, QCheckBox):
        return FieldInput(widget, widget.isChecked, widget.setChecked, widget.toggled)
    return FieldInput(widget, widget.value, widget.setValue, widget.valueChanged)  # type: ignore[attr-defined]


def set_help(widget: QWidget, text: str) -> None:
    """The tooltip on a field's widget, and on the check and number of an OptionalBox too
    (each is hovered on its own, and a form label only explains the row's own widget)."""
    widget.setToolTip(text)
    if isinstance(widget, OptionalBox):
        widget.check.setToolTip(text)
        widget.box.setToolTip(text)


def note_label() -> QLabel:
    """A muted, wrapped note under a field: what the choice does, the effective batch."""
    label = QLabel()
    label.setWordWrap(True)
    label.setStyleSheet(NOTE_STYLE)
    # Top-aligned: a form may give a wrapped label more height than its text needs, and
    # centred text would then float away from the field it describes.
    label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
    return label


def sentence_label(style: str) -> QLabel:
    """A wrapped sentence under a form (a refusal, advice) in ``style``; see ``say``."""
    label = QLabel()
    label.setWordWrap(True)
    label.setStyleSheet(style)
    return label


def say(label: QLabel, text: str) -> None:
    """Put a sentence under the form; the label hides while it has none."""
    label.setText(text)
    label.setVisible(bool(text))
