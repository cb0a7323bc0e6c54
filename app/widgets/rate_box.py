"""A spin box for rates that span decades: shows 1e-06 or 0.01, reads 1e-6, steps by ×10.

A range test's bounds are chosen by order of magnitude; a linear step (or six decimals
of zeros) would make 1e-7 hard to type and impossible to reach with the arrows.
"""

from __future__ import annotations

from PySide6.QtGui import QValidator
from PySide6.QtWidgets import QDoubleSpinBox, QWidget


class ScientificBox(QDoubleSpinBox):
    """A float spin box that writes 0.0003 or 5e-05 (``digits`` significant), reads 3e-4 or
    "3,5", and accepts half-typed numbers ("1e-") while they are being typed."""

    digits = 6

    def textFromValue(self, value: float) -> str:
        return f"{value:.{self.digits}g}"

    def valueFromText(self, text: str) -> float:
        try:
            return float(text.strip().replace(",", "."))
        except ValueError:
            return self.value()

    def validate(self, text: str, pos: int) -> tuple[QValidator.State, str, int]:
        cleaned = text.strip().replace(",", ".")
        try:
            value = float(cleaned)
        except ValueError:
            ok = all(c in "0123456789.eE+-" for c in cleaned)
            state = QValidator.State.Intermediate if ok else QValidator.State.Invalid
            return state, text, pos
        inside = self.minimum() <= value <= self.maximum()
        state = QValidator.State.Acceptable if inside else QValidator.State.Intermediate
        return state, text, pos


class RateBox(ScientificBox):
    """A positive float between ``low`` and ``high`` whose arrows multiply or divide by 10."""

    digits = 3

    def __init__(
        self, value: float, *, low: float = 1e-9, high: float = 10.0, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setDecimals(12)
        self.setRange(low, high)
        self.setValue(value)
        self.setKeyboardTracking(False)
        self.setMinimumWidth(86)

    def stepBy(self, steps: int) -> None:
        self.setValue(self.value() * 10.0**steps)
