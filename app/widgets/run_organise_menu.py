"""The Runs panel's Organise menu (also the table's context menu): rename, tags, note,
archive, unarchive and delete, with their keys active while the table has the focus."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMenu, QToolButton, QWidget


class RunOrganiseMenu(QMenu):
    """The actions call the slots they are given; the panel enables them for the selection."""

    def __init__(
        self,
        table: QWidget,
        *,
        rename: Callable[[], Any],
        tags: Callable[[], Any],
        note: Callable[[], Any],
        archive: Callable[[bool], Any],
        delete: Callable[[], Any],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._table = table
        self.rename_action = self._action("Rename…", rename, "F2")
        self.tags_action = self._action("Tags…", tags, "Ctrl+T")
        self.note_action = self._action("Note…", note)
        self.archive_action = self._action("Archive", lambda: archive(True))
        self.unarchive_action = self._action("Unarchive", lambda: archive(False))
        self.delete_action = self._action("Delete…", delete, "Delete")
        for made in (self.rename_action, self.tags_action, self.note_action):
            self.addAction(made)
        self.addSeparator()
        self.addAction(self.archive_action)
        self.addAction(self.unarchive_action)
        self.addSeparator()
        self.addAction(self.delete_action)

    def tool_button(self, text: str) -> QToolButton:
        """A button that opens this menu at once (the panel's "Organise")."""
        button = QToolButton()
        button.setText(text)
        button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        button.setMenu(self)
        return button

    def _action(self, text: str, slot: Callable[[], Any], shortcut: str | None = None) -> QAction:
        made = QAction(text, self.parent() or self)
        if shortcut:  # the key works while the table (or a child) has the focus
            made.setShortcut(QKeySequence(shortcut))
            made.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            self._table.addAction(made)
        made.triggered.connect(lambda _checked=False: slot())
        return made
