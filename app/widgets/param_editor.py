"""The property editor: a form generated from the selected layer kind's parameter model.

Each field of the kind's pydantic model becomes an input that fits its type: a spin box with
the field's bounds for int and float, a check box for bool, a combo box for a Literal, and
for ``int | None`` a spin box whose lowest value reads "auto" and means None (the field's
description says what None does). Descriptions become tooltips. The editor only reports
``param_changed(name, value)``: the panel makes the undoable edit and shows the result.
"""

from __future__ import annotations

import math
import types
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, Union, get_args, get_origin

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from cnn_lab.app.models.field_bounds import field_bounds
from cnn_lab.engine.models.layers.registry import LayerKind

if TYPE_CHECKING:  # not at run time: see app/panels/data_panel.py on importing pydantic
    from pydantic.fields import FieldInfo

AUTO = "auto"


def _optional_of(annotation: Any) -> Any | None:
    """``int`` for ``int | None`` (or Optional[int]); None for anything else."""
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1 and len(get_args(annotation)) == 2:
            return args[0]
    return None


def _decimals(default: Any) -> int:
    if isinstance(default, float) and 0 < abs(default) < 0.01:
        return min(8, 1 - math.floor(math.log10(abs(default))))
    return 3


class _Field:
    """One input: its widget and how to read and write its value."""

    def __init__(self, widget: QWidget, get: Callable[[], Any], put: Callable[[Any], None]) -> None:
        self.widget, self.get, self.put = widget, get, put


class ParamEditor(QWidget):
    """Edits the parameters of one layer; ``param_changed(name, value)`` on every change."""

    param_changed = Signal(str, object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.heading = QLabel()
        font = self.heading.font()
        font.setBold(True)
        font.setPointSizeF(font.pointSizeF() * 1.1)
        self.heading.setFont(font)
        self.description = QLabel()
        self.description.setWordWrap(True)
        self.description.setStyleSheet("color: palette(placeholder-text);")
        self.form_host = QWidget()
        self.form = QFormLayout(self.form_host)
        self.form.setContentsMargins(0, 6, 0, 0)
        self.form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        layout = QVBoxLayout(self)
        layout.addWidget(self.heading)
        layout.addWidget(self.description)
        layout.addWidget(self.form_host)
        layout.addStretch(1)
        self.fields: dict[str, _Field] = {}
        self._kind: str | None = None
        self.show_layer(None, {})

    def show_layer(self, kind: LayerKind | None, params: dict[str, Any], heading: str = "") -> None:
        """Show ``kind``'s form filled with ``params`` (missing ones at their defaults)."""
        if kind is None or kind.kind != self._kind:
            self._rebuild(kind)
        self.heading.setText(heading or (kind.title if kind else "No layer selected"))
        if kind is None:
            return
        for name, info in kind.params.model_fields.items():
            field = self.fields[name]
            field.widget.blockSignals(True)
            field.put(params.get(name, info.default))
            field.widget.blockSignals(False)

    def _rebuild(self, kind: LayerKind | None) -> None:
        while self.form.rowCount():
            self.form.removeRow(0)
        self.fields = {}
        self._kind = kind.kind if kind else None
        if kind is None:
            self.description.setText("Select a layer in the list to edit its parameters.")
            return
        self.description.setText(kind.description)
        if not kind.params.model_fields:
            self.form.addRow(QLabel("This layer has no parameters."))
        for name, info in kind.params.model_fields.items():
            field = self._make(name, info)
            tip = info.description or ""
            if _optional_of(info.annotation) is not None:
                tip += f" Lower it to “{AUTO}” to leave it empty."
            field.widget.setToolTip(tip.strip())
            label = QLabel(name.replace("_", " ").capitalize())
            label.setToolTip(tip.strip())
            self.form.addRow(label, field.widget)
            self.fields[name] = field

    def _make(self, name: str, info: FieldInfo) -> _Field:
        def changed(*_: Any) -> None:
            self.param_changed.emit(name, field.get())

        annotation = info.annotation
        inner = _optional_of(annotation)
        if annotation is bool:
            box = QCheckBox()
            box.toggled.connect(changed)
            field = _Field(box, box.isChecked, lambda v: box.setChecked(bool(v)))
        elif get_origin(annotation) is Literal:
            combo = QComboBox()
            for choice in get_args(annotation):
                combo.addItem(str(choice), choice)
            combo.currentIndexChanged.connect(changed)
            field = _Field(
                combo, combo.currentData, lambda v: combo.setCurrentIndex(combo.findData(v))
            )
        elif annotation is int or inner is int:
            field = self._int_field(inner is int, info, changed)
        elif annotation is float:
            field = self._float_field(info, changed)
        else:
            edit = QLineEdit()
            edit.editingFinished.connect(changed)
            field = _Field(edit, edit.text, lambda v: edit.setText("" if v is None else str(v)))
        return field

    def _int_field(self, optional: bool, info: FieldInfo, changed: Callable[..., None]) -> _Field:
        spin = QSpinBox()
        low, high = (int(b) for b in field_bounds(info, 1, (-1_000_000, 1_000_000)))
        spin.setRange(low - 1 if optional else low, high)
        spin.setKeyboardTracking(False)
        spin.setCorrectionMode(QAbstractSpinBox.CorrectionMode.CorrectToNearestValue)
        if optional:
            spin.setSpecialValueText(AUTO)
        spin.valueChanged.connect(changed)

        def get() -> int | None:
            return None if optional and spin.value() == spin.minimum() else spin.value()

        def put(value: Any) -> None:
            spin.setValue(spin.minimum() if value is None else int(value))

        return _Field(spin, get, put)

    def _float_field(self, info: FieldInfo, changed: Callable[..., None]) -> _Field:
        spin = QDoubleSpinBox()
        default = info.default
        decimals = _decimals(default)
        spin.setDecimals(decimals)
        spin.setRange(*field_bounds(info, 10.0**-decimals, (-1e6, 1e6)))
        step = 10.0 ** math.floor(math.log10(abs(default))) if default else 0.05
        spin.setSingleStep(step if step < 0.1 else 0.05)
        spin.setKeyboardTracking(False)
        spin.valueChanged.connect(changed)
        return _Field(spin, lambda: round(spin.value(), decimals), spin.setValue)

    def field_widget(self, name: str) -> QWidget:
        """The input of parameter ``name`` (tests drive it)."""
        return self.fields[name].widget
