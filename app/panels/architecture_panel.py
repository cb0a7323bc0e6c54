"""The Architecture panel: start from a preset or build a network layer by layer.

The spec being edited and the edit rules live in a plain form (app/models/architecture_form.py);
the panel holds the undo stack. Every edit (a palette double-click, a drop, a button, a
property, a preset choice, a loaded file) is one form Edit on that stack, holding the spec
before and after, so undo is always exact. A spec that does not validate (a custom net with no
layers yet) stays the form's draft with a sentence in the banner; only valid specs reach
AppState. The summary is recomputed off the GUI thread after every edit, and a build error
marks the layer that causes it instead of ever showing a traceback.

The panel has no undo shortcuts of its own: the window's Edit menu owns Ctrl+Z and Ctrl+Y
through a QUndoGroup whose active stack is the current tab's ``undo_stack`` (a second action
with the same shortcut would make Qt's shortcut ambiguous, and neither would fire). The bar's
Undo and Redo buttons stay; run on its own, ``run_standalone`` adds the shortcuts.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path as FilePath
from typing import Any

from pydantic_core import ValidationError
from PySide6.QtCore import Qt
from PySide6.QtGui import QShowEvent, QUndoCommand, QUndoStack
from PySide6.QtWidgets import QFileDialog, QLabel, QMessageBox, QVBoxLayout, QWidget

from cnn_lab.app.bridge.live_summary import LiveSummary
from cnn_lab.app.models.architecture_form import ArchitectureForm, Edit, Problem, validated
from cnn_lab.app.models.network_sources import untrusted_text
from cnn_lab.app.panels._network_sources import NetworkSources
from cnn_lab.app.state import AppState
from cnn_lab.app.widgets.block_diagram import BlockDiagram
from cnn_lab.app.widgets.layer_list import LayerList, layer_label
from cnn_lab.app.widgets.layer_palette import LayerPalette
from cnn_lab.app.widgets.panes import column, scrolled, splitter
from cnn_lab.app.widgets.param_editor import ParamEditor
from cnn_lab.app.widgets.preset_bar import PresetBar
from cnn_lab.app.widgets.summary_table import SummaryTable
from cnn_lab.engine.errors import UserError
from cnn_lab.engine.specs import ArchitectureSpec, explain
from cnn_lab.engine.specs.layer_edits import Layers, Path

BANNER_STYLE = "background: #fde2e1; color: #6e0f0f; border: 1px solid #e8a5a3; padding: 6px;"
Horizontal, Vertical = Qt.Orientation.Horizontal, Qt.Orientation.Vertical


class _Command(QUndoCommand):
    """The undo stack's handle on one form Edit: redo and undo show its after and before."""

    def __init__(self, panel: ArchitecturePanel, edit: Edit) -> None:
        super().__init__(edit.text)
        self.panel, self.edit = panel, edit

    def redo(self) -> None:
        self.panel._show(self.edit.after, self.edit.select_after)

    def undo(self) -> None:
        self.panel._show(self.edit.before, self.edit.select_before)

    def id(self) -> int:
        return 1 if self.edit.merge_key is not None else -1

    def mergeWith(self, other: QUndoCommand) -> bool:
        """Spinning one box is one undo step: consecutive edits of one field merge."""
        if not isinstance(other, _Command) or not self.edit.merge(other.edit):
            return False
        self.setObsolete(self.edit.obsolete)
        return True


class ArchitecturePanel(QWidget):
    title = "Architecture"

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.form = ArchitectureForm(state.architecture, state.input_shape)
        self._own_update = self._showing = self._summary_wanted = False
        self._pushed = state.architecture  # what this panel last gave AppState
        self._training = (state.train.batch_size, state.train.optimizer)
        self.undo_stack = QUndoStack(self)
        self.live = LiveSummary(parent=self)
        self._build()
        self._wire()
        self._show(self.spec, None)

    @property
    def spec(self) -> ArchitectureSpec:
        return self.form.spec

    @property
    def selected(self) -> Path | None:
        return self.form.selected

    @property
    def summary(self) -> Any:
        """The last good ModelSummary (None until the first one arrives)."""
        return self.form.summary

    def layers(self) -> Layers:
        return self.form.layers()

    def _build(self) -> None:
        self.bar = PresetBar()
        self.palette_tree = LayerPalette()
        self.layer_list = LayerList()
        self.editor = ParamEditor()
        self.banner = QLabel()
        self.banner.setWordWrap(True)
        self.banner.setStyleSheet(BANNER_STYLE)
        self.banner.setVisible(False)
        self.summary_table = SummaryTable()
        self.diagram = BlockDiagram()
        self.diagram_scroll = scrolled(self.diagram)
        editor = scrolled(self.editor)
        middle = splitter(
            Horizontal, self.palette_tree, self.layer_list, editor, sizes=[210, 560, 300]
        )
        middle.setStretchFactor(1, 1)
        bottom = splitter(Horizontal, self.summary_table, self.diagram_scroll, sizes=[700, 540])
        split = splitter(Vertical, middle, column(self.banner, bottom), sizes=[290, 340])
        layout = QVBoxLayout(self)
        layout.addWidget(self.bar)
        layout.addWidget(split, 1)
        self.sources = NetworkSources(self)  # weights downloads, timm and module pickers

    def _wire(self) -> None:
        bar, stack, lst, form = self.bar, self.undo_stack, self.layer_list, self.form
        bar.undo_button.clicked.connect(stack.undo)
        bar.redo_button.clicked.connect(stack.redo)
        stack.canUndoChanged.connect(bar.undo_button.setEnabled)
        stack.canRedoChanged.connect(bar.redo_button.setEnabled)
        stack.undoTextChanged.connect(bar.set_undo_text)
        stack.redoTextChanged.connect(bar.set_redo_text)
        bar.undo_button.setEnabled(False)
        bar.redo_button.setEnabled(False)
        bar.preset_chosen.connect(self.choose_preset)
        bar.field_changed.connect(lambda name, value: self._push(form.set_field(name, value)))
        for button, slot in (
            (bar.edit_layers_button, self.edit_as_layers),
            (bar.new_button, self.new_network),
            (bar.save_button, self._save_clicked),
            (bar.load_button, self._load_clicked),
        ):
            button.clicked.connect(slot)
        self.palette_tree.kind_activated.connect(self.add_layer)
        lst.selection_changed.connect(self._selection_changed)
        lst.insert_requested.connect(self.insert_layer)
        lst.move_requested.connect(lambda s, p, i: self._push(form.move_layer(s, p, i)))
        lst.delete_requested.connect(lambda path: self._push(form.delete_layer(path)))
        lst.duplicate_requested.connect(lambda path: self._push(form.duplicate_layer(path)))
        lst.open_block_requested.connect(self.open_block)
        self.editor.param_changed.connect(self.set_param)
        self.diagram.block_clicked.connect(lambda i: lst.select((i - 1,)) if i else None)
        self.live.ready.connect(self._summary_ready)
        self.live.failed.connect(self._summary_failed)
        self.live.busy.connect(self.summary_table.set_busy)
        self.state.changed.connect(self._state_changed)
        self.state.input_shape_changed.connect(self._input_shape_changed)

    # ----------------------------------------------------------------- edits

    def _push(self, edit: Edit | None) -> None:
        """Put the form's edit on the undo stack, which shows its outcome; None is no edit."""
        if edit is not None:
            self.undo_stack.push(_Command(self, edit))

    def add_layer(self, kind: str) -> None:
        """Add ``kind`` after the selected layer (into it, if it is an empty block)."""
        self._push(self.form.add_layer(kind))

    def insert_layer(self, kind: str, parent: Path, index: int) -> None:
        self._push(self.form.insert_layer(kind, parent, index))

    def set_param(self, name: str, value: Any) -> None:
        self._push(self.form.set_param(name, value))

    def open_block(self, path: Path) -> None:
        """Replace a block with the plain layers it is made of, or say why it cannot open."""
        outcome = self.form.open_block(path)
        if isinstance(outcome, Problem):
            self._show_problem(outcome.message, outcome.path)
        else:
            self._push(outcome)

    def edit_as_layers(self) -> None:
        """Turn an editable preset into the custom layers it is made of (undoable)."""
        self._push(self.form.edit_as_layers())

    def new_network(self) -> None:
        self._push(self.form.new_network())

    def choose_preset(self, name: str) -> None:
        if not self._showing:  # the bar echoing the spec being shown is no choice
            self._push(self.form.choose_preset(name))

    def set_pretrained(self, path: str) -> None:
        self._push(self.form.set_pretrained(path))

    # ----------------------------------------------------------------- files

    def save_to(self, path: str | FilePath) -> None:
        """Write the architecture as JSON; a UserError says why it cannot be saved."""
        valid, problem = validated(self.spec)
        if valid is None:
            raise UserError(f"The network cannot be saved yet. {problem}")
        try:
            FilePath(path).write_text(valid.model_dump_json(indent=2) + "\n", encoding="utf-8")
        except OSError as exc:
            raise UserError(f"Could not write {path}: {exc.strerror or exc}.") from None

    def load_from(self, path: str | FilePath) -> None:
        """Read an architecture JSON file as one undoable edit; a UserError says what is wrong."""
        name = FilePath(path).name
        try:
            spec = ArchitectureSpec.model_validate_json(FilePath(path).read_bytes())
        except OSError as exc:
            raise UserError(f"Could not read {path}: {exc.strerror or exc}.") from None
        except ValidationError as exc:
            why = explain(exc, what="architecture file")
            raise UserError(f"{name} is not an architecture cnn-lab can read. {why}") from None
        self._push(self.form.edit(spec, f"Load {name}"))

    def _save_clicked(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Save architecture", "architecture.json", "Architecture (*.json)"
        )
        self._file_action(self.save_to, path, "Cannot save")

    def _load_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Load architecture", "", "Architecture (*.json);;All files (*)"
        )
        self._file_action(self.load_from, path, "Cannot load")

    def _file_action(self, action: Callable[[str], None], path: str, title: str) -> None:
        if path:
            try:
                action(path)
            except UserError as exc:
                QMessageBox.warning(self, title, str(exc))

    # ----------------------------------------------------------------- showing

    def _show(self, spec: ArchitectureSpec, select: Path | None) -> None:
        """Make ``spec`` current: controls, list, editor, diagram, state and a new summary."""
        form = self.form
        form.show(spec, select)
        self._showing = True
        try:
            self.bar.show_spec(spec, form.preset())
            self._show_input()
            self.layer_list.set_layers(form.layers(), form.selected)
            self.layer_list.set_hint(form.list_hint())
            self._show_selected()
        finally:
            self._showing = False
        self._draw_diagram()
        if form.valid is None:
            self.live.cancel()
            self.summary_table.set_busy(False)
            self._show_problem(form.problem, None)
            return
        if self.state.architecture != form.valid:
            self._own_update = True
            try:
                self.state.update(architecture=form.valid)
            finally:
                self._own_update = False
        self._pushed = form.valid
        self._request_summary()

    def _request_summary(self) -> None:
        """Summarise the current valid spec, once the panel is on screen.

        The first summary imports torch; waiting until the panel is shown keeps that off the
        window's start-up (the Data tab is the one shown first).
        """
        self._summary_wanted = not self.isVisible()
        valid = self.form.valid
        if valid is None or self._summary_wanted:
            return
        if why := untrusted_text(valid):  # a loaded module: its code runs only once agreed
            self.live.cancel()
            self._show_problem(why, None)
        else:
            self.live.request(valid, self.state.input_shape)
        self.sources.refresh(valid)  # the weights combo's catalogue, when the network changed

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if self._summary_wanted:
            self._request_summary()

    def _show_input(self) -> None:
        batch, optimizer = self._training
        self.bar.show_input(self.form.input_text(self.state.input_known, batch, optimizer))
        self.summary_table.set_training(batch, optimizer)

    def _selection_changed(self, path: Path | None) -> None:
        if not self._showing:
            self.form.selected = path
            self._show_selected()
            self._draw_diagram(self.layer_list.error_path())

    def _show_selected(self) -> None:
        shown = self.form.selected_layer()
        if shown is None:
            self.editor.show_layer(None, {})
        else:
            self.editor.show_layer(*shown)

    def _show_problem(self, message: str, path: Path | None) -> None:
        """A sentence in the banner; the layer at ``path`` marked; the last summary greyed."""
        self.banner.setText(message)
        self.banner.setVisible(True)
        self.summary_table.set_stale(True)
        self.layer_list.set_stats(None)
        self.layer_list.set_error(path, message)
        self._draw_diagram(path)

    def _summary_ready(self, summary: Any, spec: ArchitectureSpec) -> None:
        if not self.form.set_summary(summary, spec):
            return
        self.banner.setVisible(False)
        stats = self.form.layer_stats()
        labels = None if stats is None else [layer_label(layer) for layer in self.layers()]
        self.summary_table.show_summary(summary, labels)
        self.layer_list.set_stats(stats)
        self.layer_list.set_error(None)
        self._draw_diagram()

    def _summary_failed(self, message: str, path: Path | None) -> None:
        self._show_problem(message, tuple(path) if path else None)

    def _draw_diagram(self, error: Path | None = None) -> None:
        s = self.state.input_shape
        rows = self.form.summary_rows() if error is None else ()
        selected = self.selected[0] if self.selected else None
        self.diagram.show_network(
            (s.channels, s.height, s.width), self.layers(), rows, error[0] if error else None,
            selected,
        )  # fmt: skip
        box = self.diagram.box_rect(self.diagram.error_index or self.diagram.selected_index or 0)
        if box is not None:
            centre = box.center().toPoint()
            self.diagram_scroll.ensureVisible(centre.x(), centre.y(), 60, int(box.height()))

    def _input_shape_changed(self) -> None:
        self.form.input_shape = self.state.input_shape
        self._show(self.spec, self.selected)

    def _state_changed(self) -> None:
        if self._own_update:
            return
        training = (self.state.train.batch_size, self.state.train.optimizer)
        if training != self._training:
            self._training = training
            self._show_input()
        if self.state.architecture != self._pushed:  # set elsewhere, e.g. from a stored run
            self._show(self.state.architecture, None)


if __name__ == "__main__":
    from cnn_lab.app.panels._standalone import run_standalone

    raise SystemExit(run_standalone(ArchitecturePanel))
