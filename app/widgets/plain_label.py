"""Labels for text that comes from runs and the engine, which must never be read as HTML.

QLabel guesses rich text from a ``<`` in the string (``Qt.AutoText``), so a failure reason
or a file name could restyle the panel or inject a link. Every label built here is plain.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel


def plain_label(text: str = "", *, wrap: bool = True, selectable: bool = True) -> QLabel:
    """A label that shows ``text`` literally; selectable so a person can copy a reason."""
    label = QLabel(text)
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setWordWrap(wrap)
    if selectable:
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label
