"""The Runs panel: every recorded run, and the curves of the one selected."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from cnn_lab.app.bridge.task import Task
from cnn_lab.app.state import AppState
from cnn_lab.app.widgets.charts import LiveChart
from cnn_lab.engine.job_queue import RESUMABLE
from cnn_lab.engine.store import RunRecord
from cnn_lab.engine.store.curves import downsampled

# What "Export model…" offers: file-dialog filter → export format of engine/models/export.py.
EXPORT_FILTERS = {
    "TorchScript (*.pt)": "torchscript",
    "ONNX (*.onnx)": "onnx",
    "torch.export program (*.pt2)": "torch_export",
}

_Index = QModelIndex | QPersistentModelIndex
RESIZE_ROWS = 100
"""Rows whose text sizes the columns (about a screenful)."""


def _percent(value: Any) -> str:
    return (
        "" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.1%}"
    )


COLUMNS: list[tuple[str, Any]] = [
    ("ID", lambda r: r.id),
    ("Status", lambda r: r.status),
    ("Name", lambda r: r.name),
    ("Data", lambda r: r.dataset),
    ("Model", lambda r: r.model),
    ("Epochs", lambda r: r.summary.get("epochs", "")),
    ("Best val acc", lambda r: _percent(r.summary.get("best_val_accuracy"))),
    (
        "Images/s",
        lambda r: (
            f"{r.summary['train_images_per_s']:,.0f}" if r.summary.get("train_images_per_s") else ""
        ),
    ),
    ("Device", lambda r: r.summary.get("device") or r.device),
    (
        "Created",
        lambda r: (
            datetime.fromtimestamp(r.created_at).strftime("%Y-%m-%d %H:%M:%S")
            if r.created_at
            else ""
        ),
    ),
    ("Duration", lambda r: f"{r.duration_s:.1f} s" if r.duration_s is not None else ""),
]


class RunsTableModel(QAbstractTableModel):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[RunRecord] = []

    def set_records(self, records: list[RunRecord]) -> None:
        self.beginResetModel()
        self.records = records
        self.endResetModel()

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.records)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return len(COLUMNS)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        record = self.records[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return str(COLUMNS[index.column()][1](record))
        if role == Qt.ItemDataRole.ToolTipRole and record.reason:
            return record.reason + (f"\n{record.hint}" if record.hint else "")
        return None

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return COLUMNS[section][0]
        return None


class RunsPanel(QWidget):
    title = "Runs"
    run_selected = Signal(int)
    resume_requested = Signal(int)  # the window queues the run again (JobController.resume)

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.model = RunsTableModel()
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setAlternatingRowColors(True)
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        # Column widths from the first rows only: measuring Qt's default 1,000 rows calls the
        # model tens of thousands of times and made 10,000 runs take over a second to list.
        header.setResizeContentsPrecision(RESIZE_ROWS)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.refresh_button = QPushButton("Refresh")
        self.export_button = QPushButton("Export model…")
        self.export_button.setToolTip(
            "Write the selected run's trained network as TorchScript, ONNX or a torch.export "
            "program; the file is checked against PyTorch's outputs before it is kept."
        )
        self.export_button.setEnabled(False)
        self.export_task: Task | None = None
        self.resume_button = QPushButton("Resume")
        self.resume_button.setToolTip(
            "Queue the selected stopped, failed or crashed run again; it continues from its "
            "last checkpoint."
        )
        self.resume_button.setEnabled(False)
        self.count_label = QLabel()
        self.detail = QLabel("Select a run to see its curves.")
        self.detail.setWordWrap(True)
        self.loss_chart = LiveChart("Training loss", y_label="cross-entropy")
        self.accuracy_chart = LiveChart("Validation accuracy", x_label="epoch")

        top = QHBoxLayout()
        top.addWidget(self.count_label)
        top.addStretch(1)
        top.addWidget(self.resume_button)
        top.addWidget(self.export_button)
        top.addWidget(self.refresh_button)
        charts = QWidget()
        charts_layout = QHBoxLayout(charts)
        charts_layout.addWidget(self.loss_chart)
        charts_layout.addWidget(self.accuracy_chart)
        lower = QWidget()
        lower_layout = QVBoxLayout(lower)
        lower_layout.addWidget(self.detail)
        lower_layout.addWidget(charts, 1)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.table)
        splitter.addWidget(lower)
        splitter.setSizes([300, 300])
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(splitter, 1)

        self.refresh_button.clicked.connect(self.refresh)
        self.export_button.clicked.connect(self._choose_export)
        self.resume_button.clicked.connect(self._request_resume)
        self.table.selectionModel().selectionChanged.connect(self._on_selection)
        state.db_changed.connect(lambda _path: self.refresh())
        self.refresh()

    def refresh(self) -> None:
        selected = self.selected_run_id()
        with self.state.open_store() as store:
            records = store.list_runs(limit=10_000)
        self.model.set_records(records)
        self.count_label.setText(f"{len(records)} runs in {self.state.db_path}")
        # Keep the person's choice; with none yet, show the newest run so the curves are not empty.
        if not (selected is not None and self.select_run(selected)) and records:
            self.table.selectRow(0)

    def selected_run_id(self) -> int | None:
        rows = self.table.selectionModel().selectedRows()
        return self.model.records[rows[0].row()].id if rows else None

    def select_run(self, run_id: int) -> bool:
        for row, record in enumerate(self.model.records):
            if record.id == run_id:
                self.table.selectRow(row)
                return True
        return False

    def _on_selection(self) -> None:
        run_id = self.selected_run_id()
        if run_id is None:
            return
        with self.state.open_store() as store:
            record = store.get_run(run_id)
            loss = downsampled(store, run_id, "train.loss")
            accuracy = downsampled(store, run_id, "val.accuracy")
            has_weights = any(a["kind"] == "weights" for a in store.artifacts(run_id))
        self.export_button.setEnabled(has_weights and self.export_task is None)
        self.resume_button.setEnabled(record.status in RESUMABLE)
        text = f"Run {record.id}: {record.status}"
        if record.reason:
            text += f" — {record.reason}"
        if record.hint:
            text += f" {record.hint}"
        self.detail.setText(text)
        self.loss_chart.set("train", [p.step for p in loss], [p.value for p in loss])
        self.accuracy_chart.set(
            "validation", [p.epoch for p in accuracy], [p.value for p in accuracy]
        )
        self.run_selected.emit(run_id)

    def _request_resume(self) -> None:
        run_id = self.selected_run_id()
        if run_id is not None:
            self.resume_requested.emit(run_id)

    def _choose_export(self) -> None:
        run_id = self.selected_run_id()
        if run_id is None:
            return
        path, chosen = QFileDialog.getSaveFileName(
            self, f"Export run {run_id}'s model", f"run-{run_id}.pt", ";;".join(EXPORT_FILTERS)
        )
        if path:
            self.export_run(run_id, path, EXPORT_FILTERS.get(chosen, "torchscript"))

    def export_run(self, run_id: int, path: str, fmt: str) -> Task:
        """Export in the background (it loads torch and traces the net); report in the label."""
        from functools import partial

        def work(progress: Any, should_stop: Any) -> str:
            from cnn_lab.engine.models.export import export_run

            result, _ = export_run(self.state.db_path, run_id, path, fmt)
            return result.sentence()

        task = Task(work, name="export", parent=self)
        self.export_task = task
        self.export_button.setEnabled(False)
        self.detail.setText(f"Exporting run {run_id} as {fmt}…")
        task.finished.connect(partial(self._export_done, True))
        task.failed.connect(partial(self._export_done, False))
        for signal in (task.finished, task.failed, task.cancelled):
            signal.connect(task.deleteLater)
        return task.start()

    def _export_done(self, ok: bool, message: str) -> None:
        self.export_task = None
        self.export_button.setEnabled(self.selected_run_id() is not None)
        self.detail.setText(message if ok else f"Export failed: {message}")


if __name__ == "__main__":
    from cnn_lab.app.panels._standalone import run_standalone

    raise SystemExit(run_standalone(RunsPanel))
