"""The Runs panel: find, organise and act on recorded runs, and see the selected run's curves.

The search line, the status filter and the column order all become one store query
(``engine/store/run_query``), so 10,000 runs filter and sort inside SQLite. Selecting several
runs enables Compare; rename, tags, note, archive and delete act on the selection.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QItemSelection, QPoint, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMenu,
    QMessageBox,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QTableView,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from cnn_lab.app.bridge.report_task import report_task
from cnn_lab.app.bridge.task import Task
from cnn_lab.app.state import AppState
from cnn_lab.app.widgets.charts import LiveChart
from cnn_lab.app.widgets.empty_state import EmptyState
from cnn_lab.app.widgets.report_export import ask_report_path
from cnn_lab.app.widgets.runs_table import COLUMNS, SUMMARY_KEYS, RunsTableModel
from cnn_lab.app.widgets.task_progress import TaskProgress
from cnn_lab.engine.errors import UserError
from cnn_lab.engine.jobs.queue import RESUMABLE
from cnn_lab.engine.store import ALL, artifact_kinds
from cnn_lab.engine.store.curves import downsampled
from cnn_lab.engine.store.run_files import delete_runs, run_files
from cnn_lab.engine.store.run_query import RunQuery

# What "Export model…" offers: file-dialog filter → export format of engine/models/export.py.
EXPORT_FILTERS = {
    "TorchScript (*.pt)": "torchscript",
    "ONNX (*.onnx)": "onnx",
    "torch.export program (*.pt2)": "torch_export",
}

RESIZE_ROWS = 100
"""Rows whose text sizes the columns (about a screenful)."""
LIST_LIMIT = 10_000
"""Runs listed at once; the search narrows the rest down."""
FILTER_DELAY_MS = 250
"""Typing pauses this long before the store is asked again."""
SEARCH_HELP = (
    "Filter runs: status:completed  tag:baseline  dataset:cats  model:resnet  lr<0.01  "
    "batch_size>=64  architecture.preset=resnet18  summary.best_val_accuracy>0.9  "
    "sort:-lr  is:archived  or words of the name"
)
NO_RUNS_TITLE = "No runs yet"
NO_RUNS_TEXT = (
    "Every run you train is saved here with its settings, curves and results, to search, "
    "compare, evaluate, predict with and export later. Press Train (Ctrl+Return) to train "
    "the current data, architecture and hyperparameters, or open another run database from "
    "the File menu. Runs are saved in {path}."
)
ALL_ARCHIVED_TITLE = "Every run here is archived"
ALL_ARCHIVED_TEXT = "Archived runs are hidden from the list; Show archived lists them again."
NO_MATCH_TITLE = "No run matches {what}"
NO_MATCH_TEXT = (
    "Loosen the search or the status filter, or clear them to list every run. "
    "Hover the search box for the terms it understands."
)

Confirm = Callable[[str, str], bool]


def _ask_yes(parent: QWidget) -> Confirm:
    def ask(title: str, text: str) -> bool:
        answer = QMessageBox.question(
            parent,
            title,
            text,
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Cancel,
        )
        return answer == QMessageBox.StandardButton.Yes

    return ask


class RunsPanel(QWidget):
    title = "Runs"
    run_selected = Signal(int)
    resume_requested = Signal(int)  # the window queues the run again (JobController.resume)
    compare_requested = Signal(list)  # run ids, oldest first; the window shows Compare
    runs_deleted = Signal(list)  # ids gone from the store; other panels forget them

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.confirm: Confirm = _ask_yes(self)
        self.sort_key = "created"
        self.sort_descending = True
        self.model = RunsTableModel()
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setAlternatingRowColors(True)
        self.table.verticalHeader().setVisible(False)
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        # Column widths from the first rows only: measuring Qt's default 1,000 rows calls the
        # model tens of thousands of times and made 10,000 runs take over a second to list.
        header.setResizeContentsPrecision(RESIZE_ROWS)
        header.setStretchLastSection(True)
        header.setSectionsClickable(True)
        header.setSortIndicatorShown(True)
        header.setSortIndicator(self._sort_column(), Qt.SortOrder.DescendingOrder)

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
        self._filter_timer = QTimer(self)
        self._filter_timer.setSingleShot(True)
        self._filter_timer.setInterval(FILTER_DELAY_MS)

        self.refresh_button = QPushButton("Refresh")
        self.compare_button = QPushButton("Compare")
        self.compare_button.setToolTip(
            "Overlay the selected runs' curves, see how their settings differ and average "
            "seeds or folds (select two or more runs)"
        )
        self.export_button = QPushButton("Export model…")
        self.export_button.setToolTip(
            "Write the selected run's trained network as TorchScript, ONNX or a torch.export "
            "program; the file is checked against PyTorch's outputs before it is kept."
        )
        self.export_task: Task | None = None
        self.report_button = QPushButton("Report…")
        self.report_button.setToolTip(
            "Write the selected run's report: a self-contained HTML page or a PDF with its "
            "data, architecture, recipe, curves, system use, verdict and evaluation, or every "
            "metric as CSV or JSON."
        )
        self.report_task: Task | None = None
        self.export_progress = TaskProgress(bar_width=120)
        self.report_progress = TaskProgress(bar_width=120)
        self.resume_button = QPushButton("Resume")
        self.resume_button.setToolTip(
            "Queue the selected stopped, failed or crashed run again; it continues from its "
            "last checkpoint."
        )
        self._build_actions()
        self.organise_button = QToolButton()
        self.organise_button.setText("Organise")
        self.organise_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.organise_button.setMenu(self.organise_menu)
        for button in (
            self.compare_button,
            self.export_button,
            self.resume_button,
            self.report_button,
        ):
            button.setEnabled(False)
        self.count_label = QLabel()
        self.detail = QLabel("Select a run to see its curves.")
        self.detail.setWordWrap(True)
        self.detail.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.loss_chart = LiveChart("Training loss", y_label="cross-entropy")
        self.accuracy_chart = LiveChart("Validation accuracy", x_label="epoch")
        self.empty_state = EmptyState()
        self.clear_filters_button = self.empty_state.add_action(
            "Clear the search", self.clear_filters, "List every run that is not archived."
        )
        self.show_archived_button = self.empty_state.add_action(
            "Show archived", lambda: self.archived_box.setChecked(True)
        )
        self._lay_out()

        self.search.textChanged.connect(lambda _text: self._filter_timer.start())
        self.search.returnPressed.connect(self.refresh)
        self._filter_timer.timeout.connect(self.refresh)
        self.status_filter.currentIndexChanged.connect(lambda _i: self.refresh())
        self.archived_box.toggled.connect(lambda _on: self.refresh())
        header.sectionClicked.connect(self._sort_by_column)
        self.refresh_button.clicked.connect(self.refresh)
        self.compare_button.clicked.connect(self._request_compare)
        self.export_button.clicked.connect(self._choose_export)
        self.report_button.clicked.connect(self._choose_report)
        self.resume_button.clicked.connect(self._request_resume)
        self.table.customContextMenuRequested.connect(self._show_context_menu)
        self.table.selectionModel().selectionChanged.connect(self._on_selection)
        state.db_changed.connect(lambda _path: self.refresh())
        self.refresh()

    def _build_actions(self) -> None:
        def action(text: str, slot: Callable[[], Any], shortcut: str | None = None) -> QAction:
            made = QAction(text, self)
            if shortcut:
                made.setShortcut(QKeySequence(shortcut))
                made.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
                self.table.addAction(made)
            made.triggered.connect(slot)
            return made

        self.rename_action = action("Rename…", self._ask_rename, "F2")
        self.tags_action = action("Tags…", self._ask_tags, "Ctrl+T")
        self.note_action = action("Note…", self._ask_note)
        self.archive_action = action("Archive", lambda: self.archive_selected(True))
        self.unarchive_action = action("Unarchive", lambda: self.archive_selected(False))
        self.delete_action = action("Delete…", self.delete_selected, "Delete")
        self.organise_menu = QMenu(self)
        for made in (self.rename_action, self.tags_action, self.note_action):
            self.organise_menu.addAction(made)
        self.organise_menu.addSeparator()
        self.organise_menu.addAction(self.archive_action)
        self.organise_menu.addAction(self.unarchive_action)
        self.organise_menu.addSeparator()
        self.organise_menu.addAction(self.delete_action)

    def _lay_out(self) -> None:
        filters = QHBoxLayout()
        filters.addWidget(self.search, 1)
        filters.addWidget(self.status_filter)
        filters.addWidget(self.archived_box)
        top = QHBoxLayout()
        # The database's path can be long: it takes the room there is (the whole text is its
        # tooltip) and never widens the window.
        self.count_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        top.addWidget(self.count_label, 1)
        top.addWidget(self.export_progress)
        top.addWidget(self.report_progress)
        for widget in (
            self.compare_button,
            self.resume_button,
            self.export_button,
            self.report_button,
            self.organise_button,
            self.refresh_button,
        ):
            top.addWidget(widget)
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
        layout.addLayout(filters)
        layout.addWidget(self.query_error)
        layout.addLayout(top)
        layout.addWidget(splitter, 1)
        layout.addWidget(self.empty_state, 1)
        self.empty_state.replace(splitter)

    # ------------------------------------------------------------------ listing

    def query(self) -> RunQuery:
        return RunQuery(
            text=self.search.text(),
            status=self.status_filter.currentData(),
            include_archived=self.archived_box.isChecked(),
            sort=self.sort_key,
            descending=self.sort_descending,
            limit=LIST_LIMIT,
        )

    def set_filter(self, text: str) -> None:
        """Search at once (what typing does after a pause)."""
        self._filter_timer.stop()
        self.search.setText(text)
        self._filter_timer.stop()
        self.refresh()

    def refresh(self) -> None:
        self._filter_timer.stop()
        selected = self.selected_run_ids()
        try:
            with self.state.open_store() as store:
                records = store.query_runs(self.query(), summary_keys=SUMMARY_KEYS)
        except UserError as exc:  # a search term that cannot be read: say so, keep the list
            self.query_error.setText(str(exc))
            self.query_error.show()
            return
        self.query_error.hide()
        self.model.set_records(records)
        shown = f"{len(records):,} run{'s' * (len(records) != 1)}"
        if len(records) == LIST_LIMIT:
            shown = f"The first {shown} (narrow the search to see others)"
        self.count_label.setText(f"{shown} in {self.state.db_path}")
        self.count_label.setToolTip(self.count_label.text())
        self._show_empty_state(bool(records))
        # Keep the person's choice; with none yet, show the newest run so the curves are not empty.
        if not self.select_runs(selected) and records:
            self.table.selectRow(0)
        self._update_buttons()

    def is_empty(self) -> bool:
        """Whether the panel shows its empty state (no runs, or none matching) instead of the
        table."""
        return self.empty_state.is_shown()

    def clear_filters(self) -> None:
        """Back to every run that is not archived (the empty state's button)."""
        for widget in (self.status_filter, self.archived_box):
            widget.blockSignals(True)
        self.status_filter.setCurrentIndex(0)
        self.archived_box.setChecked(False)
        for widget in (self.status_filter, self.archived_box):
            widget.blockSignals(False)
        self.set_filter("")

    def _filtered(self) -> bool:
        query = self.query()
        return bool(query.text.strip()) or query.status is not None

    def _show_empty_state(self, listed: bool) -> None:
        """No runs listed: say whether the database has none, hides them all (archived), or
        the search matches none, and what to do about it."""
        self.empty_state.set_empty(not listed)
        if listed:
            return
        if self._filtered():
            words = [f"“{self.search.text().strip()}”"] if self.search.text().strip() else []
            if self.status_filter.currentData() is not None:
                words.append(f"with status {self.status_filter.currentData()}")
            self.empty_state.set_message(NO_MATCH_TITLE.format(what=" ".join(words)), NO_MATCH_TEXT)
            self.clear_filters_button.setVisible(True)
            self.show_archived_button.setVisible(False)
            return
        self.clear_filters_button.setVisible(False)
        try:
            with self.state.open_store() as store:
                stored = bool(store.list_runs(limit=1))
        except UserError:  # the listing worked a moment ago: assume the plain case
            stored = False
        all_archived = stored and not self.archived_box.isChecked()
        self.show_archived_button.setVisible(all_archived)
        if all_archived:
            self.empty_state.set_message(ALL_ARCHIVED_TITLE, ALL_ARCHIVED_TEXT)
        else:
            self.empty_state.set_message(
                NO_RUNS_TITLE, NO_RUNS_TEXT.format(path=self.state.db_path)
            )

    def _sort_column(self) -> int:
        return next(i for i, c in enumerate(COLUMNS) if c.sort == self.sort_key)

    def _sort_by_column(self, column: int) -> None:
        key = COLUMNS[column].sort
        if key is None:  # a column the store cannot order by: keep the indicator where it was
            self._show_sort_indicator()
            return
        self.sort_descending = (
            not self.sort_descending
            if key == self.sort_key
            else key
            in {
                "created",
                "best_val_accuracy",
                "images_per_s",
                "epochs",
                "duration",
            }
        )
        self.sort_key = key
        self._show_sort_indicator()
        self.refresh()

    def _show_sort_indicator(self) -> None:
        order = (
            Qt.SortOrder.DescendingOrder if self.sort_descending else Qt.SortOrder.AscendingOrder
        )
        self.table.horizontalHeader().setSortIndicator(self._sort_column(), order)

    # ---------------------------------------------------------------- selection

    def selected_run_ids(self) -> list[int]:
        rows = sorted(index.row() for index in self.table.selectionModel().selectedRows())
        return [self.model.records[row].id for row in rows]

    def selected_run_id(self) -> int | None:
        """The current run (the one whose curves show) among the selected."""
        ids = self.selected_run_ids()
        current = self.table.currentIndex()
        if current.isValid() and self.model.records[current.row()].id in ids:
            return self.model.records[current.row()].id
        return ids[0] if ids else None

    def select_run(self, run_id: int) -> bool:
        return self.select_runs([run_id])

    def select_runs(self, run_ids: list[int]) -> bool:
        """Select these runs (those listed); False when none of them is listed."""
        wanted = set(run_ids)
        rows = [row for row, record in enumerate(self.model.records) if record.id in wanted]
        if not rows:
            return False
        selection = self.table.selectionModel()
        # The current row first, then every row in one change: one selectionChanged, so the
        # curves load once (selecting rows one by one loaded them once per row).
        selection.setCurrentIndex(self.model.index(rows[0], 0), selection.SelectionFlag.NoUpdate)
        chosen = QItemSelection()
        for row in rows:
            chosen.select(self.model.index(row, 0), self.model.index(row, 0))
        flags = selection.SelectionFlag.ClearAndSelect | selection.SelectionFlag.Rows
        if set(self.selected_run_ids()) == wanted & {r.id for r in self.model.records}:
            self._on_selection()  # already selected: no signal would come, show it anyway
        else:
            selection.select(chosen, flags)
        return True

    def _update_buttons(self) -> None:
        ids = set(self.selected_run_ids())
        records = [r for r in self.model.records if r.id in ids]
        single = records[0] if len(records) == 1 else None
        self.compare_button.setEnabled(len(ids) >= 2)
        self.resume_button.setEnabled(single is not None and single.status in RESUMABLE)
        self.export_button.setEnabled(
            single is not None and self._has_weights(single.id) and self.export_task is None
        )
        self.report_button.setEnabled(single is not None and self.report_task is None)
        for made in (self.rename_action, self.note_action, self.tags_action):
            made.setEnabled(single is not None)
        self.archive_action.setEnabled(any(not r.archived for r in records))
        self.unarchive_action.setEnabled(any(r.archived for r in records))
        self.delete_action.setEnabled(bool(records))

    def _has_weights(self, run_id: int) -> bool:
        with self.state.open_store() as store:
            return store.has_artifact(run_id, artifact_kinds.WEIGHTS)

    def _on_selection(self) -> None:
        self._update_buttons()
        run_id = self.selected_run_id()
        if run_id is None:
            return
        with self.state.open_store() as store:
            record = store.get_run(run_id)
            loss = downsampled(store, run_id, "train.loss")
            accuracy = downsampled(store, run_id, "val.accuracy")
        text = f"Run {record.id}: {record.status}"
        if record.reason:
            text += f" — {record.reason}"
        if record.hint:
            text += f" {record.hint}"
        if record.tags:
            text += f"\nTags: {', '.join(record.tags)}"
        if record.note:
            text += f"\nNote: {record.note}"
        count = len(self.selected_run_ids())
        if count > 1:
            text += f"\n{count} runs selected: Compare overlays them."
        self.detail.setText(text)
        self.loss_chart.set("train", [p.step for p in loss], [p.value for p in loss])
        self.accuracy_chart.set(
            "validation", [p.epoch for p in accuracy], [p.value for p in accuracy]
        )
        self.run_selected.emit(run_id)

    def _show_context_menu(self, position: QPoint) -> None:
        self.organise_menu.exec(self.table.viewport().mapToGlobal(position))

    # ------------------------------------------------------------- organising

    def _act(self, work: Callable[[Any], None]) -> bool:
        """Run one store change; a refusal (locked store, missing run) shows in the detail."""
        try:
            with self.state.open_store() as store:
                work(store)
        except UserError as exc:
            self.detail.setText(str(exc))
            return False
        self.refresh()
        return True

    def rename_run(self, run_id: int, name: str) -> bool:
        return self._act(lambda store: store.rename_run(run_id, name))

    def set_tags(self, run_id: int, tags: list[str]) -> bool:
        return self._act(lambda store: store.set_tags(run_id, tags))

    def set_note(self, run_id: int, note: str) -> bool:
        return self._act(lambda store: store.set_note(run_id, note))

    def archive_selected(self, archived: bool = True) -> bool:
        ids = self.selected_run_ids()
        return bool(ids) and self._act(lambda store: store.set_archived(ids, archived))

    def delete_selected(self) -> bool:
        """Ask, then delete the selected runs with their folders; True when they are gone."""
        ids = sorted(self.selected_run_ids())
        if not ids:
            return False
        with self.state.open_store() as store:
            files = [run_files(store, run_id) for run_id in ids]
        size = sum(f.bytes for f in files) / 1e6
        kept = sum(len(f.kept) for f in files)
        what = f"run {ids[0]}" if len(ids) == 1 else f"{len(ids)} runs"
        text = (
            f"Delete {what} with {size:,.1f} MB of checkpoints and weights? "
            "Its metrics and files are removed for good."
        )
        if kept:
            text += f" {kept} exported file(s) outside the runs' folders are kept."
        if not self.confirm(f"Delete {what}", text):
            return False
        outcome: list[str] = []
        if not self._act(lambda store: outcome.append(delete_runs(store, ids).sentence())):
            return False
        self.detail.setText(outcome[0])
        self.runs_deleted.emit(ids)
        return True

    def _ask_rename(self) -> None:
        run_id = self.selected_run_id()
        record = next((r for r in self.model.records if r.id == run_id), None)
        if record is None:
            return
        name, ok = QInputDialog.getText(self, f"Rename run {run_id}", "Name:", text=record.name)
        if ok:
            self.rename_run(record.id, name)

    def _ask_tags(self) -> None:
        run_id = self.selected_run_id()
        record = next((r for r in self.model.records if r.id == run_id), None)
        if record is None:
            return
        with self.state.open_store() as store:
            known = ", ".join(tag for tag, _count in store.tags_in_use()[:12])
        text, ok = QInputDialog.getText(
            self,
            f"Tags of run {record.id}",
            f"Tags, separated by commas (in use: {known or 'none yet'}):",
            text=", ".join(record.tags),
        )
        if ok:
            self.set_tags(record.id, text.split(","))

    def _ask_note(self) -> None:
        run_id = self.selected_run_id()
        record = next((r for r in self.model.records if r.id == run_id), None)
        if record is None:
            return
        note, ok = QInputDialog.getMultiLineText(
            self, f"Note on run {record.id}", "Note:", record.note
        )
        if ok:
            self.set_note(record.id, note)

    # ---------------------------------------------------------------- requests

    def _request_compare(self) -> None:
        ids = sorted(self.selected_run_ids())
        if len(ids) >= 2:
            self.compare_requested.emit(ids)

    def _request_resume(self) -> None:
        run_id = self.selected_run_id()
        if run_id is not None:
            self.resume_requested.emit(run_id)

    def _choose_report(self) -> None:
        run_id = self.selected_run_id()
        if run_id is None:
            return
        chosen = ask_report_path(self, f"Report of run {run_id}", f"run-{run_id}-report.html")
        if chosen:
            self.export_report(run_id, *chosen)

    def export_report(self, run_id: int, path: str, fmt: str | None = None) -> Task:
        """Write the run's report in the background; the sentence lands in the detail line."""
        from functools import partial

        task = report_task(self.state.db_path, path, run_id=run_id, fmt=fmt, parent=self)
        self.report_task = task
        self.report_button.setEnabled(False)
        self.detail.setText(f"Writing run {run_id}'s report…")
        # The report writer says nothing until it is done: a busy bar, never a made-up ETA.
        self.report_progress.start(f"Run {run_id}'s report")
        task.connect_outcomes(
            finished=partial(self._report_done, True),
            failed=partial(self._report_done, False),
        )
        return task.start()

    def _report_done(self, ok: bool, message: str) -> None:
        self.report_task = None
        self.report_progress.finish()
        self._update_buttons()
        self.detail.setText(message if ok else f"The report was not written: {message}")

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
        self.export_progress.start(f"Exporting run {run_id}")  # no steps to count: busy
        task.connect_outcomes(
            finished=partial(self._export_done, True),
            failed=partial(self._export_done, False),
        )
        return task.start()

    def _export_done(self, ok: bool, message: str) -> None:
        self.export_task = None
        self.export_progress.finish()
        self._update_buttons()
        self.detail.setText(message if ok else f"Export failed: {message}")


if __name__ == "__main__":
    from cnn_lab.app.panels._standalone import run_standalone

    raise SystemExit(run_standalone(RunsPanel))
