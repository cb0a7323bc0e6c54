"""The Runs panel's filter line: the search box, the status filter and "Show archived", and
under them the sentence when a search cannot be read.

Typing waits for a pause before asking again (10,000 runs are a store query each time);
Return, the status filter and the archived switch ask at once.
"""

from __future__ import annotations

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from cnn_lab.app.models.runs_listing import SEARCH_HELP, RunsListing
from cnn_lab.engine.store import ALL
from cnn_lab.engine.store.run_query import RunQuery

FILTER_DELAY_MS = 250
"""Typing pauses this long before the store is asked again."""


class RunsFilterBar(QWidget):
    """``changed`` fires when the list should be asked for again."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Filter: status:completed tag:baseline lr<0.01 words…")
        self.search.setToolTip(SEARCH_HELP)
        self.search.setClearButtonEnabled(True)
        self.status_filter = QComboBox()
        self.status_filter.addItem("Any status", None)
        for status in sorted(ALL):
            self.status_filter.addItem(status.capitalize(), status)
        self.status_filter.setToolTip(
            "List only the runs with this status (completed, failed, crashed, stopped, "
            "running, queued); the same as status:NAME in the search."
        )
        self.archived_box = QCheckBox("Show archived")
        self.archived_box.setToolTip(
            "Also list the runs you archived (Organise ▸ Archive). Archiving only hides a "
            "run from the list; nothing of it is deleted."
        )
        self.query_error = QLabel()
        self.query_error.setStyleSheet("color: #c0392b;")
        self.query_error.setWordWrap(True)
        self.query_error.hide()
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(FILTER_DELAY_MS)

        row = QHBoxLayout()
        row.addWidget(self.search, 1)
        row.addWidget(self.status_filter)
        row.addWidget(self.archived_box)
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.addLayout(row)
        column.addWidget(self.query_error)

        self.search.textChanged.connect(lambda _text: self._timer.start())
        self.search.returnPressed.connect(self.changed)
        self._timer.timeout.connect(self.changed)
        self.status_filter.currentIndexChanged.connect(lambda _i: self.changed.emit())
        self.archived_box.toggled.connect(lambda _on: self.changed.emit())

    def read_into(self, listing: RunsListing) -> RunQuery:
        """Copy the search, status and archived switch into ``listing`` and return its query;
        a typed search waiting for its pause is taken now."""
        self._timer.stop()
        return listing.set_filters(
            self.search.text(), self.status_filter.currentData(), self.archived_box.isChecked()
        )

    def set_text(self, text: str) -> None:
        """Put ``text`` in the search box without the pause's ``changed``."""
        self.search.setText(text)
        self._timer.stop()

    def clear(self) -> None:
        """Every filter off, quietly: the caller asks for the list once."""
        for widget in (self.status_filter, self.archived_box):
            widget.blockSignals(True)
        self.status_filter.setCurrentIndex(0)
        self.archived_box.setChecked(False)
        for widget in (self.status_filter, self.archived_box):
            widget.blockSignals(False)
        self.set_text("")

    def show_error(self, text: str | None) -> None:
        """A search that cannot be read says why under the line (None: it reads)."""
        self.query_error.setText(text or "")
        self.query_error.setVisible(text is not None)
