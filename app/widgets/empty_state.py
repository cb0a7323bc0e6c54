"""What a panel shows while it has nothing to show: what would be here, and how to fill it.

Blank charts and empty tables tell a newcomer nothing; a sentence in their place says what the
panel is for and which step fills it (press Train, select runs, drop images). Each panel keeps
one ``EmptyState`` that stands in for the widgets it names (``replaces``) and decides from its
own data (the store, its selection) when to show it: ``set_empty(True)`` hides those widgets
and shows the sentence, ``set_empty(False)`` the other way round. Panels expose it the same
way, ``panel.empty_state`` and ``panel.is_empty()``, so tests and the window treat them alike.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import QFrame, QHBoxLayout, QPushButton, QVBoxLayout, QWidget

from cnn_lab.app.widgets.plain_label import plain_label

TEXT_WIDTH = 560
"""The sentences wrap at about this many pixels: a long line across a wide panel is hard to
read, and the block stays centred where the content would be."""
TITLE_SCALE = 1.3


class EmptyState(QFrame):
    """A heading, a sentence or two, and optional buttons, centred where content would be.

    The texts are plain (a search term or run name in them is never read as HTML).
    """

    def __init__(
        self,
        title: str = "",
        text: str = "",
        parent: QWidget | None = None,
        *,
        replaces: Sequence[QWidget] = (),
        text_width: int = TEXT_WIDTH,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("emptyState")
        self._replaces: list[QWidget] = list(replaces)
        self._text_width = text_width
        self.title_label = plain_label(selectable=False)
        font = self.title_label.font()
        font.setBold(True)
        font.setPointSizeF(font.pointSizeF() * TITLE_SCALE)
        self.title_label.setFont(font)
        self.text_label = plain_label()
        self.text_label.setStyleSheet("color: palette(placeholder-text);")
        for label in (self.title_label, self.text_label):
            label.setAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
        self.buttons = QHBoxLayout()
        self.buttons.setContentsMargins(0, 8, 0, 0)
        self.buttons.addStretch(1)
        self.buttons.addStretch(1)
        # The labels span the layout (so a wrapped label is as tall as its lines need); the
        # side margins, set on resize, keep the lines short and centred.
        self._layout = QVBoxLayout(self)
        self._layout.addStretch(1)
        self._layout.addWidget(self.title_label)
        self._layout.addWidget(self.text_label)
        self._layout.addLayout(self.buttons)
        self._layout.addStretch(2)  # a little above the middle, where the eye lands first
        self.set_message(title, text)

    def resizeEvent(self, event: QResizeEvent) -> None:
        side = max(0, (event.size().width() - self._text_width) // 2)
        margins = self._layout.contentsMargins()
        if margins.left() != side:
            self._layout.setContentsMargins(side, margins.top(), side, margins.bottom())
        super().resizeEvent(event)

    def minimumSizeHint(self) -> QSize:
        """Without the centring margins: they follow the width, so counting them would keep
        a panel as wide as it once was (the window could not be made narrower again)."""
        hint = super().minimumSizeHint()
        margins = self._layout.contentsMargins()
        return QSize(max(0, hint.width() - margins.left() - margins.right()), hint.height())

    # ------------------------------------------------------------------ texts

    def set_message(self, title: str, text: str = "") -> None:
        """The heading (one short line) and the sentences under it (hidden when empty)."""
        self.title_label.setText(title)
        self.text_label.setText(text)
        self.text_label.setVisible(bool(text))

    def title(self) -> str:
        return self.title_label.text()

    def text(self) -> str:
        return self.text_label.text()

    def message(self) -> str:
        """Heading and sentences in one string, for tests and the accessible description."""
        return "\n".join(part for part in (self.title(), self.text()) if part)

    # ------------------------------------------------------------------ buttons

    def add_action(self, text: str, slot: Callable[[], Any], tooltip: str = "") -> QPushButton:
        """A button under the sentences (e.g. "Clear the search"); returned to be hidden or
        renamed later."""
        button = QPushButton(text)
        if tooltip:
            button.setToolTip(tooltip)
        button.clicked.connect(lambda _checked=False: slot())
        self.buttons.insertWidget(self.buttons.count() - 1, button)
        return button

    # ------------------------------------------------------------------ showing

    def replace(self, *widgets: QWidget) -> None:
        """More widgets this state stands in for."""
        self._replaces.extend(widgets)

    def set_empty(self, empty: bool) -> None:
        """Show the sentence instead of the content (True), or the content (False)."""
        for widget in self._replaces:
            widget.setVisible(not empty)
        self.setVisible(empty)

    def is_shown(self) -> bool:
        """Whether the panel shows this state now (whether or not the panel is on screen)."""
        return not self.isHidden()
