"""A dialog to find a timm model by name or family: type, see the matches, choose one.

Searching asks timm (seconds for its first import), so the dialog never searches itself: the
panel gives it ``search(text, deliver)``, which runs off the GUI thread and calls
``deliver(number, results_or_message)`` back on it. The dialog searches a moment after the
last keystroke and shows only the newest search's answer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QLineEdit,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from cnn_lab.app.models.network_sources import timm_row, timm_status

SEARCH_DELAY_MS = 250
"""A search starts this long after the last keystroke: typing "resnet" is one search."""
LIMIT = 50
COLUMNS = ("Model", "Family", "Pretrained tags", "Parameters")
Deliver = Callable[[int, Any], None]
Search = Callable[[str, int, Deliver], None]
"""``search(text, number, deliver)``: find up to LIMIT models, then ``deliver(number, found)``
with a list of TimmModelInfo, or a sentence (str) when the search failed."""


class TimmPicker(QDialog):
    """Search field, results table, OK/Cancel; ``chosen()`` is the selected model name."""

    def __init__(self, search: Search, current: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Choose a timm model")
        self.resize(720, 460)
        self._search, self._number = search, 0
        self.field = QLineEdit(current)
        self.field.setPlaceholderText("resnet, efficientnet_b*, convnext…")
        self.field.setClearButtonEnabled(True)
        self.field.setToolTip(
            "Part of a model name, a family (resnet), or a wildcard (efficientnet_b*). "
            "Smaller models train faster; larger ones are usually more accurate."
        )
        self.results = QTreeWidget()
        self.results.setHeaderLabels(list(COLUMNS))
        self.results.setRootIsDecorated(False)
        self.results.setToolTip("Double-click a model to choose it.")
        self.results.setColumnWidth(0, 260)
        self.status = QLabel("Type part of a name or a family.")
        self.status.setWordWrap(True)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.ok_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok_button.setEnabled(False)
        layout = QVBoxLayout(self)
        for widget in (self.field, self.results, self.status, self.buttons):
            layout.addWidget(widget)
        self._timer = QTimer(self, singleShot=True, interval=SEARCH_DELAY_MS)
        self._timer.timeout.connect(self.search_now)
        self.field.textChanged.connect(lambda _: self._timer.start())
        self.results.itemSelectionChanged.connect(
            lambda: self.ok_button.setEnabled(bool(self.chosen()))
        )
        self.results.itemDoubleClicked.connect(lambda *_: self.accept())
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.searching = False
        self._timer.start()

    def search_now(self) -> None:
        """Search for the field's text (the timer calls this after the last keystroke)."""
        self._timer.stop()
        self._number += 1
        self.searching = True
        self.status.setText("Searching timm…")
        self._search(self.field.text().strip(), self._number, self.deliver)

    def deliver(self, number: int, found: Any) -> None:
        """A search's answer; only the newest search's is shown."""
        if number != self._number:
            return
        self.searching = False
        self.results.clear()
        if isinstance(found, str):
            self.status.setText(found)
            return
        for info in found:
            row = timm_row(info)
            item = QTreeWidgetItem([row.name, row.family, row.tags, row.params])
            item.setData(0, Qt.ItemDataRole.UserRole, row.name)
            for column in range(len(COLUMNS)):
                item.setToolTip(column, row.tip)
            self.results.addTopLevelItem(item)
        self.status.setText(timm_status(self.field.text().strip(), len(found), LIMIT))
        if found:
            self.results.setCurrentItem(self.results.topLevelItem(0))

    def select(self, name: str) -> bool:
        """Select the result called ``name``; False if it is not listed."""
        for index in range(self.results.topLevelItemCount()):
            item = self.results.topLevelItem(index)
            if item.data(0, Qt.ItemDataRole.UserRole) == name:
                self.results.setCurrentItem(item)
                return True
        return False

    def chosen(self) -> str:
        item = self.results.currentItem()
        return str(item.data(0, Qt.ItemDataRole.UserRole)) if item is not None else ""
