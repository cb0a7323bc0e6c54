"""The Data panel: choose a source, set preprocessing and augmentation, see what the import found.

Every control change becomes a new DatasetSpec in AppState at once. Changing what the import
depends on (the source, image size, channels, resize policy, the limit) also re-runs the
engine's ``prepare_dataset`` in a cancellable Task, a moment later so that spinning a box does
not start ten imports. Augmentation does not touch the import: it only re-draws the "After
augmentation" grid, computed in the background because the preview imports torch.

Every change made in the controls is one step on ``undo_stack`` (the window's Edit menu
drives it); undoing puts the controls back and behaves as if the person had moved them there,
re-import included. A source the person chose that fails to import (or whose import is
cancelled) is reverted and leaves no step behind. A DatasetSpec set in the state by someone
else (a spec file the window opened, a sweep trial applied) is loaded into the controls and
imported, without an undo step: it is not this panel's edit.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
from PySide6.QtCore import QTimer, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QUndoStack
from PySide6.QtWidgets import QHBoxLayout, QWidget

from cnn_lab.app.bridge.task import Task
from cnn_lab.app.models import data_form
from cnn_lab.app.models.data_form import UNDO_NAMES, DataForm, is_sample, shown_source
from cnn_lab.app.models.data_import import Imported, augment_examples, import_dataset
from cnn_lab.app.panels._spec_undo import (
    SpecEdit,
    change_text,
    changed_fields,
    plain_value,
    top_edit,
)
from cnn_lab.app.recent_sources import remember_source
from cnn_lab.app.state import AppState
from cnn_lab.app.widgets.augment_controls import describe_augment_change
from cnn_lab.app.widgets.data_controls import DataControls
from cnn_lab.app.widgets.data_source_picker import dropped_path
from cnn_lab.app.widgets.import_results import ImportResults
from cnn_lab.engine.specs import DatasetSpec


class DataPanel(QWidget):
    """Pick a dataset, set how it is prepared and augmented, and see what the import found."""

    title = "Data"

    import_finished = Signal(object)
    """The ImportReport of an import that completed (blockers or not)."""
    import_failed = Signal(str)
    import_cancelled = Signal()
    preview_ready = Signal()

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.form = DataForm()
        self.import_task: Task | None = None
        self.preview_task: Task | None = None
        self.report: Any = None  # the last ImportReport shown
        self.imported: Imported | None = None
        self._pushed: DatasetSpec = state.dataset  # what this panel last gave the state
        self._pushing = False  # True while this panel updates the state itself
        self.undo_stack = QUndoStack(self)
        """This panel's own edits; the window's Edit menu drives it through a QUndoGroup."""

        self._import_timer = QTimer(self, singleShot=True, interval=data_form.IMPORT_DELAY_MS)
        self._import_timer.timeout.connect(self._start_import)
        self._preview_timer = QTimer(self, singleShot=True, interval=data_form.PREVIEW_DELAY_MS)
        self._preview_timer.timeout.connect(self._start_preview)

        self.setAcceptDrops(True)
        self.controls = DataControls()
        self.source_picker = self.controls.source
        self.source_picker.opened.connect(self.open_source)
        self.preprocessing = self.controls.preprocessing
        self.augmentation = self.controls.augmentation
        self.results = ImportResults()
        self.results.cancel_button.clicked.connect(self.cancel_import)
        self.results.retry_button.clicked.connect(self.reimport)
        self.results.reroll_button.clicked.connect(self.reroll)
        self._name_controls()
        layout = QHBoxLayout(self)
        layout.addWidget(self.controls)
        layout.addWidget(self.results, 1)

        self.form.load(state.dataset)
        self.controls.load(state.dataset)  # quietly: the first change below pushes it
        self.source.currentIndexChanged.connect(lambda _: self._on_changed(immediate=True))
        self.preprocessing.changed.connect(self._on_changed)
        self.augmentation.changed.connect(self._on_changed)
        state.changed.connect(self._state_changed)  # first, so the first push shows the weights
        self._on_changed(immediate=True, record=False)

    def _name_controls(self) -> None:
        """Short names for tests and the window: the controls themselves live in the boxes."""
        self.source = self.source_picker.combo
        form, results = self.preprocessing, self.results
        self.image_size, self.channels = form.image_size, form.channels
        self.resize_policy, self.limit = form.resize_policy, form.limit
        self.val_fraction, self.test_fraction = form.val_fraction, form.test_fraction
        self.split_seed, self.class_balance = form.split_seed, form.class_balance
        self.split_summary, self.spec_error = form.split_summary, form.spec_error
        augmentation = self.augmentation
        self.augment_boxes, self.augment_sliders = augmentation.boxes, augmentation.sliders
        self.mixup_alpha, self.cutmix_alpha = augmentation.mixup_alpha, augmentation.cutmix_alpha
        self.status, self.progress = results.status, results.progress
        self.cancel_button, self.retry_button = results.cancel_button, results.retry_button
        self.report_view, self.histogram = results.report_view, results.histogram
        self.grid, self.augmented_grid = results.grid, results.augmented_grid
        self.reroll_button, self.preview_status = results.reroll_button, results.preview_status

    # ----------------------------------------------------------------- spec <-> controls

    def current_spec(self) -> DatasetSpec | None:
        """The controls as a DatasetSpec; None (with the reason shown) if they do not validate."""
        spec, error = self.form.spec(self.controls.values())
        self.preprocessing.show_error(error)
        return spec

    def _on_changed(self, immediate: bool = False, record: bool = True) -> None:
        """Any control moved: push the spec; re-import or re-draw the preview if needed.

        ``record``: the person moved a control, so a new spec is one undo step.
        """
        self.source_picker.show_description()
        spec = self.current_spec()
        if spec is None:
            return
        before = self._pushed
        self._push(spec)
        if record and spec != before:
            self._record(before, spec)
        self._show_split_summary(spec)
        if self.form.needs_import(spec):
            if immediate:
                self._start_import()
            else:
                self._import_timer.start()
        elif self.imported is not None and self.form.needs_preview(spec):
            self._preview_timer.start()
        self.reroll_button.setEnabled(data_form.augments(spec))

    def _push(self, spec: DatasetSpec) -> None:
        self._pushed = spec
        self._pushing = True
        try:
            self.state.update(dataset=spec)
        finally:
            self._pushing = False

    def _show_spec(self, spec: DatasetSpec, immediate: bool | None = None) -> None:
        """Put ``spec`` in the controls as if the person had moved them there (no undo step).

        The import starts at once for a new source (as choosing one in the combo does),
        otherwise a moment later; ``immediate`` overrides that.
        """
        if immediate is None:
            immediate = spec.source != self.source_picker.current()
        self.form.load(spec)
        self.controls.load(spec)
        self._on_changed(immediate=immediate, record=False)

    def _state_changed(self) -> None:
        """What the weights expect; a DatasetSpec set elsewhere (a spec file, a sweep trial) is
        shown and imported, its source kept even if it fails (what Train runs is what loaded)."""
        s = self.state
        self.preprocessing.show_expected(data_form.weights_expect(s.architecture, s.dataset))
        if not self._pushing and self.state.dataset != self._pushed:
            self.form.given_source = self.state.dataset.source
            self._show_spec(self.state.dataset, immediate=True)

    # ----------------------------------------------------------------- undo

    def _record(self, before: DatasetSpec, after: DatasetSpec) -> None:
        """One undo step; a field's consecutive edits merge (spinning a box is one step)."""
        changed = changed_fields(before, after)
        merge_key: str | None = None
        if "source" in changed:
            self.form.given_source = None  # the person's own choice from now on
            text = f"Open {shown_source(after.source)}"
        elif changed == ["augment"]:
            text, merge_key = describe_augment_change(before.augment, after.augment)
        else:
            text = change_text(changed, after, UNDO_NAMES, self._value_text)
            merge_key = changed[0] if len(changed) == 1 else None
        self.undo_stack.push(SpecEdit(before, after, text, self._show_spec, merge_key))

    @staticmethod
    def _value_text(name: str, value: Any) -> str:
        """A field's value as its control shows it: a combo's label, "auto", "all images"."""
        return data_form.value_text(name, value) or plain_value(value)

    def _drop_failed_source(self, failed: DatasetSpec, reverted: DatasetSpec) -> None:
        """Keep undo consistent after ``_revert_source``: the failed source leaves no step.

        When the last step opened the source that failed, it is removed (obsolete, then
        undone: its "before" is what the revert already shows). When other edits followed it,
        the revert becomes a step of its own, so the top of the stack is what is shown.
        """
        top = top_edit(self.undo_stack)
        if top is None or top.after != failed:
            return  # not the panel's last step (a reimport, an undo): nothing to take back
        if top.before == reverted:
            top.setObsolete(True)
            self.undo_stack.undo()  # deletes it; showing "before" again changes nothing
        else:
            text = f"Go back to {shown_source(reverted.source)}"
            self.undo_stack.push(SpecEdit(failed, reverted, text, self._show_spec))

    def _show_split_summary(self, spec: DatasetSpec) -> None:
        images = len(self.imported.prepared) if self.imported is not None else None
        self.split_summary.setText(data_form.split_summary(images, spec))

    # ----------------------------------------------------------------- sources

    def open_source(self, path: str) -> None:
        """Import ``path`` (a folder, archive, CSV, .npz, or ``sample:NAME``): one for all ways in.

        The Open buttons and drag-and-drop end here. A source that fails to import leaves
        the previous one selected and its report shown, with the reason in the status line.
        """
        source = data_form.normalise_source(path)
        if not source:
            return
        index = self.source_picker.index_of(source)
        if index == self.source.currentIndex():
            self.reimport()  # opened again: the files may have changed
        else:
            self.source.setCurrentIndex(index)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if dropped_path(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:
        path = dropped_path(event.mimeData())
        if path:
            event.acceptProposedAction()
            self.open_source(path)

    def _revert_source(self) -> None:
        """After a failed or cancelled import of a new source, go back to the one shown."""
        current = self.source.currentData()
        if not self.form.reverts(current):
            return
        failed = self._pushed
        self.source_picker.go_back(self.form.good_source or "", current)
        spec = self.current_spec()
        if spec is not None:
            self.form.import_key = data_form.import_key(spec)
            self._push(spec)
            self._drop_failed_source(failed, spec)
        self.source_picker.show_description()

    # ----------------------------------------------------------------- importing

    def reimport(self) -> None:
        """Run the import again with the current settings (after a cancel, or changed files)."""
        self.form.import_key = None
        self._start_import()

    def _start_import(self) -> None:
        self._import_timer.stop()
        spec = self.current_spec()
        if spec is None:
            return
        if self.import_task is not None:
            self.import_task.cancel()  # superseded: its result is no longer wanted
        self.form.import_key = data_form.import_key(spec)
        task = Task(partial(import_dataset, spec), name="import", parent=self)
        self.import_task = task
        task.connect_outcomes(
            progress=partial(self._on_import_progress, task),
            finished=partial(self._on_import_done, task, spec),
            failed=partial(self._on_import_failed, task),
            cancelled=partial(self._on_import_cancelled, task),
        )
        self.results.set_busy(True, f"Importing {shown_source(spec.source)}…")
        task.start()

    def cancel_import(self) -> None:
        self._import_timer.stop()
        if self.import_task is not None:
            self.import_task.cancel()
            self.results.show_cancelling()

    def cancel(self) -> None:
        """Stop every background import and preview, pending or running (the window closes):
        they stop at their next check instead of delivering to a panel that is going away."""
        self._import_timer.stop()
        self._preview_timer.stop()
        for task in (self.import_task, self.preview_task):
            if task is not None:
                task.cancel()

    def _on_import_progress(self, task: Task, stage: str, done: int, total: int) -> None:
        """``Decoding · 120 of 500 · 0:42 left`` beside the bar; the status names the source."""
        if task is not self.import_task:
            return
        self.progress.update_progress(stage, done, total)

    def _on_import_done(self, task: Task, spec: DatasetSpec, imported: Imported) -> None:
        if task is not self.import_task:
            return
        self.import_task = None
        self.imported = imported
        report = self.report = imported.prepared.report
        self.form.good_source = spec.source
        if not is_sample(spec.source):
            remember_source(spec.source)
        text = data_form.imported_text(report, len(imported.counts))
        self.results.show_outcome(text, error=bool(report.blockers))
        self.results.show_import(report, imported)
        current = self.current_spec()
        if current is not None:
            self._show_split_summary(current)
        shape = data_form.input_shape(report)
        if shape is not None:
            self.state.set_input_shape(shape)
        self.import_finished.emit(report)
        self._start_preview()

    def _on_import_failed(self, task: Task, message: str) -> None:
        if task is not self.import_task:
            return
        self.import_task = None
        self.results.show_outcome(f"Could not import: {message}", error=True, retry=True)
        self._revert_source()
        self.import_failed.emit(message)

    def _on_import_cancelled(self, task: Task) -> None:
        if task is not self.import_task:
            return
        self.import_task = None
        self.results.show_outcome(data_form.cancelled_text(self.report is not None), retry=True)
        self._revert_source()
        self.import_cancelled.emit()

    # ----------------------------------------------------------------- augmentation preview

    def reroll(self) -> None:
        """Draw the augmentations again with the next seed."""
        self.form.preview_seed += 1
        self._start_preview()

    def _start_preview(self) -> None:
        self._preview_timer.stop()
        spec = self.current_spec()
        if spec is None or self.imported is None:
            return
        if self.preview_task is not None:
            self.preview_task.cancel()
            self.preview_task = None
        self.form.augment_key = data_form.augment_key(spec)
        imported, seed = self.imported, self.form.preview_seed
        if not data_form.augments(spec):
            text = "No augmentation chosen: the images train as they are."
            self._show_preview(imported, imported.examples, text)
            return
        self.preview_status.setText(f"Augmenting (seed {seed})…")
        work = partial(augment_examples, imported.examples, spec, seed)
        task = Task(work, name="preview", parent=self)
        self.preview_task = task
        task.connect_outcomes(
            finished=partial(self._on_preview_done, task, imported),
            failed=partial(self._on_preview_failed, task),
        )
        task.start()

    def _on_preview_done(self, task: Task, imported: Imported, images: np.ndarray) -> None:
        if task is not self.preview_task or imported is not self.imported:
            return
        self.preview_task = None
        self._show_preview(imported, images, f"A random draw (seed {self.form.preview_seed}).")

    def _on_preview_failed(self, task: Task, message: str) -> None:
        if task is not self.preview_task:
            return
        self.preview_task = None
        self.preview_status.setText(f"Could not preview the augmentation: {message}")
        self.preview_ready.emit()

    def _show_preview(self, imported: Imported, images: np.ndarray, text: str) -> None:
        self.results.show_preview(imported, images, text)
        self.preview_ready.emit()


if __name__ == "__main__":
    from cnn_lab.app.panels._standalone import run_standalone

    raise SystemExit(run_standalone(DataPanel))
