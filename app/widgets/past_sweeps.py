"""The "Past sweeps" row of the Sweep panel: a chooser of the database's sweeps, Open, Resume.

It lists every sweep the run database remembers (one run before a restart, or with
``cnn-lab sweep`` on a terminal). Open reads one back in a background Task
(engine/search/past.py) into the very result dict a sweep's child sends at its end, so its
results show exactly as if it had just finished; Resume runs an unfinished one again.
Opening leaves the editor and the recipe alone: it is for reading, and Resume (not Launch)
continues a saved search as it was saved. While a sweep runs, the results side is its own,
so nothing can be opened (the panel says when it is busy). Which buttons are usable is
decided by app/models/sweep_past.py.

The read runs in a task the panel makes (``make_task``: the bridge's Task; widgets do not
import the bridge), one at a time; a launch or another database drops the one in flight.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QPushButton, QWidget

from cnn_lab.app.models.sweep_past import PastSweeps, SavedButtons
from cnn_lab.engine.search.history import SavedSweep
from cnn_lab.engine.search.past import OpenedSweep, open_sweep

MakeTask = Callable[[Callable[[Any, Any], OpenedSweep]], Any]
"""Wraps the read (a function of progress and stop) in a Task that is not started yet."""

PAST_HELP = (
    "Every sweep in this database, newest first: launched here, before a restart, or with "
    "`cnn-lab sweep` on a terminal. Unfinished ones stopped before their budget was spent."
)
NO_PAST = "No sweeps in this database yet"


class PastSweepsRow(QWidget):
    """The chooser and its buttons; the panel says what they list and when it is busy."""

    opened = Signal(object)  # the OpenedSweep read back
    open_failed = Signal(str)  # the sentence: which sweep, and why

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = PastSweeps()
        self._busy = False
        self.task: Any = None
        """The read in flight, if any."""
        self.box = QComboBox()
        self.box.setToolTip(PAST_HELP)
        self.box.setPlaceholderText(NO_PAST)
        self.open_button = QPushButton("Open")
        self.open_button.setToolTip(
            "Show the chosen sweep's trials, curves, parallel coordinates and parameter "
            "importance here, as when it ended (not while a sweep is running)"
        )
        self.resume_button = QPushButton("Resume")
        self.resume_button.setToolTip(
            "Run the chosen unfinished sweep again: finished trials are kept, cut-off ones "
            "run again"
        )
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        past = QLabel("Past sweeps")
        past.setToolTip(PAST_HELP)
        row.addWidget(past)
        row.addWidget(self.box, 1)
        row.addWidget(self.open_button)
        row.addWidget(self.resume_button)
        self.box.currentIndexChanged.connect(self._update_buttons)
        self._update_buttons()

    def set_sweeps(self, saved: list[SavedSweep]) -> None:
        """List ``saved``, keeping the one chosen if it is still there (no change signal)."""
        index = self.model.replace(saved, self.chosen())
        self.box.blockSignals(True)
        self.box.clear()
        self.box.addItems([s.label() for s in saved])
        self.box.setCurrentIndex(index)
        self.box.blockSignals(False)
        self._update_buttons()

    def chosen(self) -> SavedSweep | None:
        return self.model.chosen(self.box.currentIndex())

    def open_chosen(self, db_path: str | Path, make_task: MakeTask) -> Any:
        """Start reading the chosen sweep back; the started task, or None when nothing is
        chosen, the results side is busy, or a read is in flight already."""
        chosen = self.chosen()
        if chosen is None or not self._buttons().open:
            return None
        name = chosen.name
        task = make_task(lambda _progress, _stop: open_sweep(db_path, name))
        self.task = task

        def ended() -> bool:
            """Whether ``task`` is still the one wanted (``drop_open`` forgets it)."""
            if self.task is not task:
                return False
            self.task = None
            self._update_buttons()
            return True

        def shown(opened: OpenedSweep) -> None:
            if ended():
                self.opened.emit(opened)

        def failed(message: str) -> None:
            if ended():
                self.open_failed.emit(f"Sweep {name} could not be opened: {message}")

        task.connect_outcomes(finished=shown, failed=failed, cancelled=ended)
        self._update_buttons()
        return task

    def drop_open(self) -> bool:
        """Cancel and forget the read in flight; whether there was one."""
        task, self.task = self.task, None
        if task is not None:
            task.cancel()
            self._update_buttons()
        return task is not None

    def set_busy(self, busy: bool) -> None:
        """Whether the results side is taken by a sweep (launched, or running)."""
        self._busy = busy
        self._update_buttons()

    def _buttons(self) -> SavedButtons:
        busy = self._busy or self.task is not None
        return self.model.buttons(self.box.currentIndex(), busy=busy)

    def _update_buttons(self) -> None:
        buttons = self._buttons()
        self.box.setEnabled(buttons.chooser)
        self.open_button.setEnabled(buttons.open)
        self.resume_button.setEnabled(buttons.resume)
