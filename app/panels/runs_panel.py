"""The Runs panel: find, organise and act on recorded runs, and see the selected run's curves.

A thin view: which runs are listed and what it says when none are (app/models/runs_listing.py),
what the selection allows and the texts about it (app/models/runs_selection.py, whose Resume
asks the engine's one resume rule) are plain models; the filter line, the table, the curves
and the Organise menu are widgets of their own (app/widgets/runs_*.py, run_*.py). Selecting
several runs enables Compare; rename, tags, note, archive and delete act on the selection.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QPoint, Qt, QTimer, Signal
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from cnn_lab.app.bridge.report_task import report_task
from cnn_lab.app.bridge.task import Task
from cnn_lab.app.models.run_edits import RunEdits
from cnn_lab.app.models.runs_listing import RunsListing
from cnn_lab.app.models.runs_reads import Listing, RunCurvesRead, read_listing, read_run_curves
from cnn_lab.app.models.runs_selection import run_detail, runs_actions
from cnn_lab.app.state import AppState
from cnn_lab.app.widgets.empty_state import EmptyState
from cnn_lab.app.widgets.run_curves import RunCurves
from cnn_lab.app.widgets.run_edit_dialogs import Confirm, ask_name, ask_note, ask_tags, ask_yes
from cnn_lab.app.widgets.run_exports import RunExports
from cnn_lab.app.widgets.run_organise_menu import RunOrganiseMenu
from cnn_lab.app.widgets.runs_filter_bar import RunsFilterBar
from cnn_lab.app.widgets.runs_table import COLUMNS, SUMMARY_KEYS
from cnn_lab.app.widgets.runs_table_view import RunsTableView
from cnn_lab.engine.errors import UserError
from cnn_lab.engine.store.run_query import RunQuery

LIVE_REFRESH_S = 3.0
"""How often the shown list looks for runs that changed elsewhere (another process, another
machine of the lab): a listing of 10,000 runs takes the store's thread about 0.2 s."""


def _button(text: str, tip: str = "") -> QPushButton:
    button = QPushButton(text)
    button.setToolTip(tip)
    return button


class RunsPanel(QWidget):
    title = "Runs"
    run_selected = Signal(int)
    resume_requested = Signal(int)  # the window queues the run again (JobController.resume)
    compare_requested = Signal(list)  # run ids, oldest first; the window shows Compare
    runs_deleted = Signal(list)  # ids gone from the store; other panels forget them

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.confirm: Confirm = ask_yes(self)
        say = lambda sentence: self.detail.setText(sentence)  # noqa: E731 (detail comes later)
        self.edits = RunEdits(self.state.store.call, changed=self.refresh, say=say)
        self.listing = RunsListing()
        self._weights: set[int] = set()  # listed runs that kept weights
        self._notice = ""  # what the last change did, kept over the next run's details
        self.table = RunsTableView()
        self.model = self.table.runs
        self.table.show_sort(self.listing.query.sort, self.listing.query.descending)
        self.filters = RunsFilterBar()
        self.search = self.filters.search
        self.status_filter = self.filters.status_filter
        self.archived_box = self.filters.archived_box
        self.query_error = self.filters.query_error

        self.refresh_button = QPushButton("Refresh")
        self.compare_button = _button("Compare", (
            "Overlay the selected runs' curves, see how their settings differ and average "
            "seeds or folds (select two or more runs)"
        ))  # fmt: skip
        self.exports = RunExports(
            self.selected_run_id, export=self._export_task, report=self._report_task, parent=self
        )
        self.export_button = self.exports.export_button
        self.report_button = self.exports.report_button
        self.resume_button = _button("Resume", (
            "Queue the selected stopped, failed or crashed run again; it continues from its "
            "last checkpoint."
        ))  # fmt: skip
        self.organise_menu = RunOrganiseMenu(
            self.table, rename=self._ask_rename, tags=self._ask_tags, note=self._ask_note,
            archive=self.archive_selected, delete=self.delete_selected, parent=self,
        )  # fmt: skip
        menu = self.organise_menu
        self.rename_action, self.tags_action = menu.rename_action, menu.tags_action
        self.note_action, self.delete_action = menu.note_action, menu.delete_action
        self.archive_action, self.unarchive_action = menu.archive_action, menu.unarchive_action
        self.organise_button = menu.tool_button("Organise")
        for button in (self.compare_button, self.export_button, self.resume_button):
            button.setEnabled(False)
        self.report_button.setEnabled(False)
        self.count_label = QLabel()
        self.curves = RunCurves()
        self.detail, self.loss_chart = self.curves.detail, self.curves.loss_chart
        self.empty_state = EmptyState()
        self.clear_filters_button = self.empty_state.add_action(
            "Clear the search", self.clear_filters, "List every run that is not archived."
        )
        self.show_archived_button = self.empty_state.add_action(
            "Show archived", lambda: self.archived_box.setChecked(True)
        )
        self._lay_out()

        self.filters.changed.connect(self.refresh)
        self.table.horizontalHeader().sectionClicked.connect(self._sort_by_column)
        self.refresh_button.clicked.connect(self.refresh)
        self.compare_button.clicked.connect(self._request_compare)
        self.exports.message.connect(self.detail.setText)
        self.exports.idle.connect(self._update_buttons)
        self.resume_button.clicked.connect(self._request_resume)
        self.table.customContextMenuRequested.connect(self._show_context_menu)
        self.table.selection_shown.connect(self._on_selection)
        state.db_changed.connect(lambda _path: self.refresh())
        self._live = QTimer(self, interval=int(LIVE_REFRESH_S * 1000), timeout=self._refresh_live)
        self._live.start()
        self.refresh()

    def _lay_out(self) -> None:
        top = QHBoxLayout()
        # The database's path can be long: it takes the room there is (the whole text is its
        # tooltip) and never widens the window.
        self.count_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        top.addWidget(self.count_label, 1)
        top.addWidget(self.exports.export_progress)
        top.addWidget(self.exports.report_progress)
        for widget in (self.compare_button, self.resume_button, self.export_button,
                       self.report_button, self.organise_button, self.refresh_button):  # fmt: skip
            top.addWidget(widget)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.table)
        splitter.addWidget(self.curves)
        splitter.setSizes([300, 300])
        layout = QVBoxLayout(self)
        layout.addWidget(self.filters)
        layout.addLayout(top)
        layout.addWidget(splitter, 1)
        layout.addWidget(self.empty_state, 1)
        self.empty_state.replace(splitter)

    # ------------------------------------------------------------------ listing

    def query(self) -> RunQuery:
        """The store query the filter line and the sort order ask for."""
        return self.filters.read_into(self.listing)

    def set_filter(self, text: str) -> None:
        """Search at once (what typing does after a pause)."""
        self.filters.set_text(text)
        self.refresh()

    def refresh(self, *, live: bool = False) -> None:
        """Ask the store for the runs the filters and sort select; the table follows when the
        answer comes (the window never waits on the store). ``live``: the periodic look for
        other processes' and machines' runs, which leaves an unchanged table alone."""
        try:
            query = self.query()
        except UserError as exc:  # a search term that cannot be read: say so, keep the list
            self.filters.show_error(str(exc))
            return
        filtered = self.listing.filtered()
        self.state.store.call(
            lambda store: read_listing(store, query, SUMMARY_KEYS, ask_stored=not filtered),
            lambda listing: self._show_listing(listing, live=live),
            self.filters.show_error,
            key=f"runs-listing-{id(self)}",
            what="the run list",
        )

    def _refresh_live(self) -> None:
        """Runs started, ended or crashed elsewhere (a terminal, a sweep worker, another
        machine of the lab) appear without a click: while the panel shows and the store has
        answered everything asked before, so a slow store is never asked twice."""
        if self.isVisible() and self.state.store.idle():
            self.refresh(live=True)

    def showEvent(self, event: QShowEvent) -> None:
        """Shown again (its tab chosen): what changed meanwhile shows at once."""
        super().showEvent(event)
        self._refresh_live()

    def _show_listing(self, listing: Listing, *, live: bool = False) -> None:
        if live and listing.records == self.model.records:
            return  # nothing changed: the selection and the curves stay as they are
        selected = self.selected_run_ids()
        self.filters.show_error(None)
        self.model.set_records(listing.records)
        self.count_label.setText(self.listing.count_text(len(listing.records), self.state.db_path))
        self.count_label.setToolTip(self.count_label.text())
        self._show_empty_state(bool(listing.records), listing.stored)
        # Keep the person's choice; with none yet, show the newest run so the curves are not empty.
        if not self.select_runs(selected) and listing.records:
            self.table.selectRow(0)
        self._update_buttons()

    def is_empty(self) -> bool:
        """Whether the panel shows its empty state (no runs, or none matching) instead of the
        table."""
        return self.empty_state.is_shown()

    def clear_filters(self) -> None:
        """Back to every run that is not archived (the empty state's button)."""
        self.filters.clear()
        self.refresh()

    def _show_empty_state(self, listed: bool, stored: bool) -> None:
        """No runs listed: say whether the database has none, hides them all (archived), or
        the search matches none, and what to do about it."""
        self.empty_state.set_empty(not listed)
        if listed:
            return
        message = self.listing.empty_message(stored, self.state.db_path)
        self.empty_state.set_message(message.title, message.text)
        self.clear_filters_button.setVisible(message.offer_clear)
        self.show_archived_button.setVisible(message.offer_archived)

    def _sort_by_column(self, column: int) -> None:
        key = COLUMNS[column].sort
        if key is not None:  # else a column the store cannot order by: the indicator stays
            self.listing.sort_by(key)
        self.table.show_sort(self.listing.query.sort, self.listing.query.descending)
        if key is not None:
            self.refresh()

    # ---------------------------------------------------------------- selection

    def selected_run_ids(self) -> list[int]:
        return self.table.selected_ids()

    def selected_run_id(self) -> int | None:
        """The current run (the one whose curves show) among the selected."""
        return self.table.current_id()

    def select_run(self, run_id: int) -> bool:
        return self.select_runs([run_id])

    def select_runs(self, run_ids: list[int]) -> bool:
        """Select these runs (those listed); False when none of them is listed."""
        return self.table.select_ids(run_ids)

    def _update_buttons(self) -> None:
        ids = set(self.selected_run_ids())
        allowed = runs_actions(
            [r for r in self.model.records if r.id in ids],
            has_weights=self._has_weights,
            exporting=self.exports.busy("export"),
            reporting=self.exports.busy("report"),
        )
        self.compare_button.setEnabled(allowed.compare)
        self.resume_button.setEnabled(allowed.resume)
        self.export_button.setEnabled(allowed.export)
        self.report_button.setEnabled(allowed.report)
        for made in (self.rename_action, self.note_action, self.tags_action):
            made.setEnabled(allowed.edit)
        self.archive_action.setEnabled(allowed.archive)
        self.unarchive_action.setEnabled(allowed.unarchive)
        self.delete_action.setEnabled(allowed.delete)

    def _has_weights(self, run_id: int) -> bool:
        """Whether the run kept weights (Export needs them), as read with its curves."""
        return run_id in self._weights

    def _on_selection(self) -> None:
        self._update_buttons()
        run_id = self.selected_run_id()
        if run_id is None:
            return
        self.state.store.call(
            lambda store: read_run_curves(store, run_id),
            lambda shown: self._show_curves(run_id, shown),
            self.detail.setText,
            key=f"runs-curves-{id(self)}",
            what=f"run {run_id}'s curves",
        )
        self.run_selected.emit(run_id)

    def _show_curves(self, run_id: int, shown: RunCurvesRead) -> None:
        if run_id != self.selected_run_id():
            return  # the person has moved on while the curves were read
        if shown.has_weights:
            self._weights.add(run_id)
        else:
            self._weights.discard(run_id)
        self.curves.show_run(
            run_detail(shown.record, len(self.selected_run_ids())), shown.loss, shown.accuracy
        )
        if self._notice:
            self.detail.setText(self._notice)
            self._notice = ""
        self._update_buttons()

    def _show_context_menu(self, position: QPoint) -> None:
        self.organise_menu.exec(self.table.viewport().mapToGlobal(position))

    # ------------------------------------------------------------- organising

    def rename_run(self, run_id: int, name: str) -> None:
        self.edits.rename(run_id, name)

    def set_tags(self, run_id: int, tags: list[str]) -> None:
        self.edits.set_tags(run_id, tags)

    def set_note(self, run_id: int, note: str) -> None:
        self.edits.set_note(run_id, note)

    def archive_selected(self, archived: bool = True) -> None:
        self.edits.archive(self.selected_run_ids(), archived)

    def delete_selected(self) -> None:
        """Ask, then delete the selected runs with their folders (``runs_deleted`` follows)."""
        self.edits.delete(self.selected_run_ids(), self.confirm, self._deleted)

    def _deleted(self, ids: list[int], sentence: str) -> None:
        self.detail.setText(sentence)
        self._notice = sentence  # outlives the newest run's details, selected next
        self.runs_deleted.emit(ids)

    def _current_record(self) -> Any:
        run_id = self.selected_run_id()
        return next((r for r in self.model.records if r.id == run_id), None)

    def _ask_rename(self) -> None:
        record = self._current_record()
        name = None if record is None else ask_name(self, record)
        if record is not None and name is not None:
            self.rename_run(record.id, name)

    def _ask_tags(self) -> None:
        record = self._current_record()
        if record is not None:
            self.state.store.call(
                lambda store: store.tags_in_use()[:12],
                lambda in_use: self._ask_tags_of(record, in_use),
                self.detail.setText,
                what="the tags in use",
            )

    def _ask_tags_of(self, record: Any, in_use: list[tuple[str, int]]) -> None:
        tags = ask_tags(self, record, in_use)
        if tags is not None:
            self.set_tags(record.id, tags)

    def _ask_note(self) -> None:
        record = self._current_record()
        note = None if record is None else ask_note(self, record)
        if record is not None and note is not None:
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

    def export_report(self, run_id: int, path: str, fmt: str | None = None) -> Task:
        """Write the run's report in the background; the sentence lands in the detail line."""
        return self.exports.export_report(run_id, path, fmt)

    def _report_task(self, run_id: int, path: str, fmt: str | None) -> Task:
        return report_task(self.state.db_path, path, run_id=run_id, fmt=fmt, parent=self)

    def export_run(self, run_id: int, path: str, fmt: str) -> Task:
        """Export in the background (it loads torch and traces the net); report in the label."""
        return self.exports.export_run(run_id, path, fmt)

    def _export_task(self, run_id: int, path: str, fmt: str) -> Task:
        def work(progress: Any, should_stop: Any) -> str:
            from cnn_lab.engine.models.export import export_run

            result, _ = export_run(self.state.db_path, run_id, path, fmt)
            return result.sentence()

        return Task(work, name="export", parent=self)


if __name__ == "__main__":
    from cnn_lab.app.panels._standalone import run_standalone

    raise SystemExit(run_standalone(RunsPanel))
