"""Which options in a widget tree have no tooltip: used by the tooltip tests of every panel.

An option is a control a person sets (spin box, combo box, check box, slider, line edit). It
counts as explained when it, or the label that a QFormLayout puts beside it, has a tooltip.
Line edits inside spin and combo boxes are parts of those, not options of their own.
"""

from __future__ import annotations

from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QCheckBox,
    QComboBox,
    QFormLayout,
    QLineEdit,
    QSlider,
    QWidget,
)

OPTION_TYPES = (QAbstractSpinBox, QComboBox, QCheckBox, QSlider, QLineEdit)


def _form_label_tooltip(widget: QWidget) -> str:
    parent = widget.parentWidget()
    while parent is not None:
        layout = parent.layout()
        if isinstance(layout, QFormLayout):
            label = layout.labelForField(widget)
            if label is not None and label.toolTip():
                return label.toolTip()
        parent = parent.parentWidget()
    return ""


def _describe(widget: QWidget) -> str:
    text = getattr(widget, "text", None)
    shown = text() if callable(text) else ""
    return f"{type(widget).__name__} {widget.objectName() or shown or hex(id(widget))}"


def options_without_tooltips(root: QWidget) -> list[str]:
    """The options under ``root`` that nothing explains, described for a failure message."""
    missing = []
    for widget in root.findChildren(QWidget):
        if not isinstance(widget, OPTION_TYPES):
            continue
        if isinstance(widget, QLineEdit) and isinstance(
            widget.parentWidget(), (QAbstractSpinBox, QComboBox)
        ):
            continue
        if widget.toolTip() or _form_label_tooltip(widget):
            continue
        missing.append(_describe(widget))
    return missing
