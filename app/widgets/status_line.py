"""A panel's one-line status: what it is doing or just did, in red when it is an error.

The Evaluate and Predict panels each say what their run allows and how their task ended on
such a line; the text comes from runs and the engine, so it is plain (never HTML) and can be
selected to copy a reason.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QWidget

ERROR_STYLE = "color: #c62828;"


class StatusLine(QLabel):
    """A plain, wrapping, selectable label that shows errors in red."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.setWordWrap(True)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

    def say(self, text: str, *, error: bool = False) -> None:
        """Show ``text``; ``error`` shows it in red until the next sentence."""
        self.setText(text)
        self.setStyleSheet(ERROR_STYLE if error else "")
