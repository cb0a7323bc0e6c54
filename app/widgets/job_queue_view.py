"""The Jobs view: which run trains where, which wait and for what, and buttons to reorder them.

It shows rows (engine.jobs.queue.JobRow) and asks for changes through signals; the window
passes those to the JobController, so this widget never touches a job itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSpinBox,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from cnn_lab.engine.jobs.queue import QUEUED, RUNNING, JobRow
from cnn_lab.engine.util.durations import format_duration as format_eta

_Index = QModelIndex | QPersistentModelIndex
QWIDGETSIZE_MAX = 16_777_215  # Qt's "no maximum" (not exported by PySide6)


def _progress(row: JobRow) -> str:
    if row.state == QUEUED:
        return f"done in ~{format_eta(row.eta_s)}" if row.eta_s is not None else ""
    if row.progress is None:
        return row.activity or "starting…"
    text = f"{row.progress:.0%}"
    return text + (f" · ETA {format_eta(row.eta_s)}" if row.eta_s is not None else "")


COLUMNS: list[tuple[str, Callable[[JobRow], Any]]] = [
    ("Run", lambda r: r.run_id),
    ("Name", lambda r: r.name),
    ("State", lambda r: r.state + (" (resume)" if r.resume else "")),
    ("Slot", lambda r: r.where),
    ("Priority", lambda r: r.priority),
    ("Progress", _progress),
]


def _key(row: JobRow) -> tuple[object, ...]:
    """Everything a row shows but its progress."""
    return (row.run_id, row.name, row.state, row.where, row.priority, row.resume)


class JobTableModel(QAbstractTableModel):
    def __init__(self) -> None:
        super().__init__()
        self.rows: list[JobRow] = []
        self._bold: QFont | None = None  # made once: data() runs for every cell painted

    def set_rows(self, rows: list[JobRow]) -> bool:
        """Show ``rows``; True if only their progress changed (then only that column redraws).

        Progress ticks arrive several times a second, so they cost one signal, not a reset.
        """
        if rows and [_key(r) for r in rows] == [_key(r) for r in self.rows]:
            self.rows = rows
            column = len(COLUMNS) - 1
            self.dataChanged.emit(self.index(0, column), self.index(len(rows) - 1, column))
            return True
        self.beginResetModel()
        self.rows = rows
        self.endResetModel()
        return False

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return len(COLUMNS)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row = self.rows[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return str(COLUMNS[index.column()][1](row))
        if role == Qt.ItemDataRole.FontRole and row.state == RUNNING:
            if self._bold is None:  # the application font, bold for what is running now
                self._bold = QFont()
                self._bold.setBold(True)
            return self._bold
        return None

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return COLUMNS[section][0]
        return None


class JobQueueView(QWidget):
    """The running and waiting runs, with Up, Down, Priority and Cancel/Stop."""

    move_requested = Signal(int, int)  # run id, new index among the waiting runs
    priority_requested = Signal(int, int)  # run id, priority
    cancel_requested = Signal(int)  # a waiting run
    stop_requested = Signal(int)  # a running run
    collapsed_changed = Signal(bool)  # True: no jobs, the view is one line

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = JobTableModel()
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(22)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.summary = QLabel("No jobs.")
        self.up_button = QPushButton("Up")
        self.down_button = QPushButton("Down")
        self.priority = QSpinBox()
        self.priority.setRange(-99, 99)
        self.priority.setPrefix("Priority ")
        self.priority.setToolTip("Higher starts first; equal priorities start in queue order.")
        self.cancel_button = QPushButton("Cancel")
        buttons = QHBoxLayout()
        buttons.addWidget(self.summary, 1)
        for widget in (self.up_button, self.down_button, self.priority, self.cancel_button):
            buttons.addWidget(widget)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)

        self.up_button.clicked.connect(lambda: self._move(-1))
        self.down_button.clicked.connect(lambda: self._move(+1))
        self.priority.valueChanged.connect(self._priority_edited)
        self.cancel_button.clicked.connect(self._cancel_or_stop)
        self.table.selectionModel().selectionChanged.connect(self._sync_buttons)
        self._sync_buttons()
        self.collapsed: bool | None = None
        self._fit_to_rows()

    # ----------------------------------------------------------------- showing

    def set_rows(self, rows: list[JobRow]) -> None:
        """Show ``rows`` (running first, then waiting in order), keeping the selected run."""
        selected = self.selected_run_id()
        progress_only = self.model.set_rows(rows)
        self.summary.setText(queue_summary(rows))
        self._fit_to_rows()
        if progress_only:
            return  # selection and buttons are as they were
        if selected is not None:
            self.select_run(selected)
        self._sync_buttons()

    def _fit_to_rows(self) -> None:
        """No jobs: only the summary line shows, so an empty dock takes one line, not ~150 px."""
        empty = not self.model.rows
        if empty == self.collapsed:
            return
        self.collapsed = empty
        for widget in (self.table, self.up_button, self.down_button, self.priority):
            widget.setVisible(not empty)
        self.cancel_button.setVisible(not empty)
        if empty:
            margins = self.layout().contentsMargins()
            line = max(self.summary.sizeHint().height(), self.cancel_button.sizeHint().height())
            self.setMaximumHeight(line + margins.top() + margins.bottom())
        else:
            self.setMaximumHeight(QWIDGETSIZE_MAX)
        self.collapsed_changed.emit(empty)

    def rows(self) -> list[JobRow]:
        return list(self.model.rows)

    def selected_row(self) -> JobRow | None:
        chosen = self.table.selectionModel().selectedRows()
        return self.model.rows[chosen[0].row()] if chosen else None

    def selected_run_id(self) -> int | None:
        row = self.selected_row()
        return row.run_id if row else None

    def select_run(self, run_id: int) -> bool:
        for index, row in enumerate(self.model.rows):
            if row.run_id == run_id:
                self.table.selectRow(index)
                return True
        self.table.clearSelection()
        return False

    # ----------------------------------------------------------------- asking

    def _queued(self) -> list[int]:
        return [r.run_id for r in self.model.rows if r.state == QUEUED]

    def _move(self, step: int) -> None:
        row = self.selected_row()
        if row is None or row.state != QUEUED:
            return
        queued = self._queued()
        self.move_requested.emit(row.run_id, queued.index(row.run_id) + step)

    def _priority_edited(self, value: int) -> None:
        row = self.selected_row()
        if row is not None and row.state == QUEUED and value != row.priority:
            self.priority_requested.emit(row.run_id, value)

    def _cancel_or_stop(self) -> None:
        row = self.selected_row()
        if row is None:
            return
        if row.state == QUEUED:
            self.cancel_requested.emit(row.run_id)
        else:
            self.stop_requested.emit(row.run_id)

    def _sync_buttons(self) -> None:
        row = self.selected_row()
        queued = self._queued()
        waiting = row is not None and row.state == QUEUED
        position = queued.index(row.run_id) if waiting and row else -1
        self.up_button.setEnabled(waiting and position > 0)
        self.down_button.setEnabled(waiting and position < len(queued) - 1)
        self.priority.setEnabled(waiting)
        self.priority.blockSignals(True)
        self.priority.setValue(row.priority if row is not None else 0)
        self.priority.blockSignals(False)
        self.cancel_button.setEnabled(row is not None)
        self.cancel_button.setText("Stop" if row is not None and row.state == RUNNING else "Cancel")
        self.cancel_button.setToolTip(
            "Finish the current step, record the run and stop it"
            if row is not None and row.state == RUNNING
            else "Take the selected run out of the queue"
        )


def queue_summary(rows: list[JobRow]) -> str:
    """The counts, and when everything should be done if every run has an estimate."""
    running = sum(r.state == RUNNING for r in rows)
    text = summary_text(running, len(rows) - running) or "No jobs."
    ends = [r.eta_s for r in rows if r.eta_s is not None]
    if rows and len(ends) == len(rows):
        text += f" · all done in ~{format_eta(max(ends))}"
    return text


def summary_text(running: int, queued: int, holds: dict[str, list[str]] | None = None) -> str:
    """The counts as the status bar shows them ("2 running, 3 queued"); empty when idle.

    ``holds`` are slots taken outside the queue ("sweep lr on cuda:0, cpu"), so a person
    whose queued run waits sees what it waits for.
    """
    parts = [f"{running} running"] if running else []
    if queued:
        parts.append(f"{queued} queued")
    parts += [f"{owner} on {', '.join(slots)}" for owner, slots in (holds or {}).items()]
    return ", ".join(parts)


if __name__ == "__main__":
    import sys

    from PySide6.QtWidgets import QApplication

    app = QApplication(sys.argv[:1])
    view = JobQueueView()
    view.set_rows(
        [
            JobRow(1, "baseline", RUNNING, "cuda:0 (H100)", 0, progress=0.42, eta_s=83),
            JobRow(2, "wide", RUNNING, "cpu", 0),
            JobRow(3, "lr sweep", QUEUED, "waiting for a GPU", 1),
            JobRow(4, "", QUEUED, "waiting for the CPU", 0, resume=True),
        ]
    )
    view.resize(720, 220)
    view.show()
    raise SystemExit(app.exec())
