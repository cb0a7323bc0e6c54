"""The Architecture panel: start from a preset or build a network layer by layer.

The panel owns the current spec and an undo stack. Every edit (a palette double-click, a
drop, a button, a property, a preset choice, a loaded file) is one undo command holding the
spec before and after, so undo is always exact. A spec that does not validate (a custom net
with no layers yet) stays the panel's own draft with a sentence in the banner; only valid
specs reach AppState. The summary is recomputed off the GUI thread after every edit, and a
build error marks the layer that causes it instead of ever showing a traceback.

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
from PySide6.QtWidgets import (
    QFileDialog,
    QLabel,
    QMessageBox,
    QScrollArea,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from cnn_lab.app.bridge.live_summary import LiveSummary
from cnn_lab.app.state import AppState
from cnn_lab.app.widgets.block_diagram import BlockDiagram
from cnn_lab.app.widgets.layer_list import LayerList, layer_label, place
from cnn_lab.app.widgets.layer_palette import LayerPalette
from cnn_lab.app.widgets.param_editor import ParamEditor
from cnn_lab.app.widgets.preset_bar import PresetBar
from cnn_lab.app.widgets.summary_table import SummaryTable
from cnn_lab.engine.errors import UserError
from cnn_lab.engine.models.layers.registry import find_layer_kind
from cnn_lab.engine.models.registry import Preset, get_preset, preset_layers
from cnn_lab.engine.specs import CUSTOM, ArchitectureSpec, LayerSpec, explain
from cnn_lab.engine.specs.layer_edits import (
    Layers,
    Path,
    delete_at,
    duplicate_at,
    exists,
    insert_at,
    layer_at,
    move_to,
    replace_at,
    siblings_at,
)
from cnn_lab.engine.util.formatting import format_count, format_shape

Change = Callable[[Layers], tuple[Layers, Path | None] | None]
BANNER_STYLE = "background: #fde2e1; color: #6e0f0f; border: 1px solid #e8a5a3; padding: 6px;"
NO_LAYERS = "The network has no layers yet: double-click a layer in the palette or drag one here."
PRESET_DEFAULTS = {"width": 1.0, "depth": 1.0, "dropout": 0.0}


class _Edit(QUndoCommand):
    """One edit: the spec (and the selected layer) before and after it."""

    def __init__(
        self, panel: ArchitecturePanel, after: ArchitectureSpec, text: str, select: Path | None,
        merge_key: tuple | None,
    ) -> None:  # fmt: skip
        super().__init__(text)
        self.panel, self.before, self.after = panel, panel.spec, after
        self.select_before, self.select_after = panel.selected, select
        self.merge_key = merge_key

    def redo(self) -> None:
        self.panel._show(self.after, self.select_after)

    def undo(self) -> None:
        self.panel._show(self.before, self.select_before)

    def id(self) -> int:
        return 1 if self.merge_key is not None else -1

    def mergeWith(self, other: QUndoCommand) -> bool:
        """Spinning one box is one undo step: consecutive edits of one field merge."""
        if not isinstance(other, _Edit) or other.merge_key != self.merge_key:
            return False
        self.after, self.select_after = other.after, other.select_after
        self.setObsolete(self.after == self.before)
        return True


def _validated(spec: ArchitectureSpec) -> tuple[ArchitectureSpec | None, str]:
    """The spec, validated, or None and a sentence saying why it is not valid."""
    if spec.is_custom and not spec.layers:
        return None, NO_LAYERS
    try:
        return ArchitectureSpec.model_validate(spec.model_dump()), ""
    except ValidationError as exc:
        return None, explain(exc, what="architecture")


def _find_preset(name: str) -> Preset | None:
    try:
        return get_preset(name)
    except UserError:
        return None


class ArchitecturePanel(QWidget):
    title = "Architecture"

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.spec: ArchitectureSpec = state.architecture
        self.valid: ArchitectureSpec | None = state.architecture
        self.selected: Path | None = None
        self.summary: Any = None  # the last good ModelSummary, and the spec it is for
        self._summary_spec: ArchitectureSpec | None = None
        self._own_update = self._showing = self._summary_wanted = False
        self._pushed = state.architecture  # what this panel last gave AppState
        self._training = (state.train.batch_size, state.train.optimizer)
        self.undo_stack = QUndoStack(self)
        self.live = LiveSummary(parent=self)
        self._build()
        self._wire()
        self._show(self.spec, None)

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
        middle = QSplitter(Qt.Orientation.Horizontal)
        for widget in (self.palette_tree, self.layer_list, _scrolled(self.editor)):
            middle.addWidget(widget)
        middle.setStretchFactor(1, 1)
        middle.setSizes([210, 560, 300])
        bottom = QSplitter(Qt.Orientation.Horizontal)
        bottom.addWidget(self.summary_table)
        self.diagram_scroll = _scrolled(self.diagram)
        bottom.addWidget(self.diagram_scroll)
        bottom.setSizes([700, 540])
        lower = QWidget()
        lower_layout = QVBoxLayout(lower)
        lower_layout.setContentsMargins(0, 0, 0, 0)
        lower_layout.addWidget(self.banner)
        lower_layout.addWidget(bottom, 1)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(middle)
        split.addWidget(lower)
        split.setSizes([290, 340])
        layout = QVBoxLayout(self)
        layout.addWidget(self.bar)
        layout.addWidget(split, 1)

    def _wire(self) -> None:
        bar, stack = self.bar, self.undo_stack
        bar.undo_button.clicked.connect(stack.undo)
        bar.redo_button.clicked.connect(stack.redo)
        stack.canUndoChanged.connect(bar.undo_button.setEnabled)
        stack.canRedoChanged.connect(bar.redo_button.setEnabled)
        stack.undoTextChanged.connect(bar.set_undo_text)
        stack.redoTextChanged.connect(bar.set_redo_text)
        bar.undo_button.setEnabled(False)
        bar.redo_button.setEnabled(False)
        bar.preset_chosen.connect(self.choose_preset)
        bar.field_changed.connect(self._set_field)
        bar.pretrained_chosen.connect(self.set_pretrained)
        bar.edit_layers_button.clicked.connect(self.edit_as_layers)
        bar.new_button.clicked.connect(self.new_network)
        bar.save_button.clicked.connect(self._save_clicked)
        bar.load_button.clicked.connect(self._load_clicked)
        self.palette_tree.kind_activated.connect(self.add_layer)
        lst = self.layer_list
        lst.selection_changed.connect(self._selection_changed)
        lst.insert_requested.connect(self.insert_layer)
        lst.move_requested.connect(
            lambda src, parent, i: self._edit_layers(
                lambda ls: move_to(ls, tuple(src), tuple(parent), i), "Move layer"
            )
        )
        lst.delete_requested.connect(
            lambda p: self._edit_layers(lambda ls: delete_at(ls, p), f"Delete layer {place(p)}")
        )
        lst.duplicate_requested.connect(
            lambda p: self._edit_layers(lambda ls: duplicate_at(ls, p), f"Duplicate {place(p)}")
        )
        lst.open_block_requested.connect(self.open_block)
        self.editor.param_changed.connect(self.set_param)
        self.diagram.block_clicked.connect(lambda i: lst.select((i - 1,)) if i else None)
        self.live.ready.connect(self._summary_ready)
        self.live.failed.connect(self._summary_failed)
        self.live.busy.connect(self.summary_table.set_busy)
        self.state.changed.connect(self._state_changed)
        self.state.input_shape_changed.connect(self._input_shape_changed)

    # ----------------------------------------------------------------- edits

    def _edit(
        self, after: ArchitectureSpec, text: str, select: Path | None = None,
        merge_key: tuple | None = None,
    ) -> None:  # fmt: skip
        after = _validated(after)[0] or after
        if after != self.spec:
            self.undo_stack.push(_Edit(self, after, text, select, merge_key))

    def _set_field(self, name: str, value: Any) -> None:
        self._edit(
            self.spec.model_copy(update={name: value}), f"Set {name}", self.selected, (name,)
        )

    def layers(self) -> Layers:
        """The layers the list shows: the custom net's, or an editable preset's."""
        if self.spec.is_custom:
            return self.spec.layers
        try:
            return preset_layers(self.spec, self.state.input_shape) or ()
        except UserError:
            return ()

    def _edit_layers(self, change: Change, text: str, merge_key: tuple | None = None) -> None:
        """Apply ``change`` to the layers; a preset is first opened as layers (one step)."""
        result = change(self.layers())
        if result is None:
            return
        layers, select = result
        if not self.spec.is_custom:  # torchvision's have no layers: a new network replaces it
            how = "opens" if self.layers() else "replaces"
            text += f" ({how} {self.spec.preset})"
        custom = {"preset": CUSTOM, "layers": layers, **PRESET_DEFAULTS}
        self._edit(self.spec.model_copy(update=custom), text, select, merge_key)

    def add_layer(self, kind: str) -> None:
        """Add ``kind`` after the selected layer (into it, if it is an empty block)."""
        path = self.selected
        parent, index = (path[:-1], path[-1] + 1) if path else ((), len(self.layers()))
        if path and _is_empty_block(layer_at(self.layers(), path)):
            parent, index = path, 0
        self.insert_layer(kind, parent, index)

    def insert_layer(self, kind: str, parent: Path, index: int) -> None:
        found = find_layer_kind(kind)
        if found is None:
            return
        parent = tuple(parent)
        new = LayerSpec(kind=kind, params=found.default_params())
        index = min(index, len(siblings_at(self.layers(), parent)))
        self._edit_layers(
            lambda ls: (insert_at(ls, parent, index, new), (*parent, index)), f"Add {found.title}"
        )

    def set_param(self, name: str, value: Any) -> None:
        path = self.selected
        if path is None:
            return

        def change(layers: Layers) -> tuple[Layers, Path]:
            layer = layer_at(layers, path).with_params(**{name: value})
            return replace_at(layers, path, (layer,)), path

        self._edit_layers(change, f"Set {name}", ("param", path, name))

    def open_block(self, path: Path) -> None:
        """Replace a block with the plain layers it is made of (one residual for ResNet's)."""
        layer = layer_at(self.layers(), path)
        kind = find_layer_kind(layer.kind)
        if kind is None or kind.expand is None:
            return
        shape = self._input_of(path)
        if shape is None:
            message = f"Layer {place(path)} can be opened once the layers before it build."
            self._show_problem(f"{message} Fix the error first.", None)
            return
        try:
            inner = kind.expand(kind.parse(layer.params), shape)
        except Exception as exc:  # a LayerProblem about its params, as a sentence
            self._show_problem(f"Layer {place(path)} cannot be opened: {exc}.", path)
            return
        self._edit_layers(lambda ls: (replace_at(ls, path, inner), path), f"Open {kind.title}")

    def _input_of(self, path: Path) -> tuple[int, ...] | None:
        """The shape a layer receives, from the last summary; None when it is not known."""
        if any(path[1:]):
            return None  # inside a block after its first layer: the summary has no row
        if path[0] == 0:
            s = self.state.input_shape
            return (s.channels, s.height, s.width)
        fresh = self.summary is not None and self._summary_spec == self.valid
        rows = self.summary.layers if fresh else ()
        return tuple(rows[path[0] - 1].output_shape) if len(rows) >= path[0] else None

    def edit_as_layers(self) -> None:
        """Turn an editable preset into the custom layers it is made of (undoable)."""
        if not self.spec.is_custom and self.layers():
            self._edit_layers(lambda ls: (ls, self.selected), "Edit as layers")

    def new_network(self) -> None:
        empty = {"preset": CUSTOM, "layers": (), **PRESET_DEFAULTS}
        self._edit(self.spec.model_copy(update=empty), "New empty network")

    def choose_preset(self, name: str) -> None:
        if name == self.spec.preset or self._showing:
            return
        if name == CUSTOM:
            if self.layers():
                self.edit_as_layers()
            else:
                self.new_network()
            return
        preset = get_preset(name)
        old = self.spec if not self.spec.is_custom else ArchitectureSpec()
        changes = {
            "preset": name,
            "layers": (),
            "width": old.width if preset.supports_width else 1.0,
            "depth": old.depth if preset.supports_depth else 1.0,
            "dropout": old.dropout,
        }
        self._edit(self.spec.model_copy(update=changes), f"Start from {name}")

    def set_pretrained(self, path: str) -> None:
        changes: dict[str, Any] = {"pretrained": path}
        if not path:
            changes["freeze_backbone"] = False
        self._edit(self.spec.model_copy(update=changes), "Set weights" if path else "Clear weights")

    # ----------------------------------------------------------------- files

    def save_to(self, path: str | FilePath) -> None:
        """Write the architecture as JSON; a UserError says why it cannot be saved."""
        valid, problem = _validated(self.spec)
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
        self._edit(spec, f"Load {name}")

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
        self.spec = spec
        self._showing = True
        try:
            self.bar.show_spec(spec, None if spec.is_custom else _find_preset(spec.preset))
            self._show_input()
            layers = self.layers()
            self.selected = select if select is not None and exists(layers, select) else None
            self.layer_list.set_layers(layers, self.selected)
            self.layer_list.set_hint(self._list_hint(layers))
            self._show_selected()
        finally:
            self._showing = False
        self.valid, problem = _validated(spec)
        self._draw_diagram()
        if self.valid is None:
            self.live.cancel()
            self.summary_table.set_busy(False)
            self._show_problem(problem, None)
            return
        if self.state.architecture != self.valid:
            self._own_update = True
            try:
                self.state.update(architecture=self.valid)
            finally:
                self._own_update = False
        self._pushed = self.valid
        self._request_summary()

    def _request_summary(self) -> None:
        """Summarise the current valid spec, once the panel is on screen.

        The first summary imports torch; waiting until the panel is shown keeps that off the
        window's start-up (the Data tab is the one shown first).
        """
        self._summary_wanted = not self.isVisible()
        if self.valid is not None and not self._summary_wanted:
            self.live.request(self.valid, self.state.input_shape)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if self._summary_wanted:
            self._request_summary()

    def _show_input(self) -> None:
        s, (batch, optimizer) = self.state.input_shape, self._training
        origin = "from the imported dataset"
        if not self.state.input_known:
            origin = "default until a dataset is imported"
        self.bar.show_input(
            f"Sized for {s.channels}×{s.height}×{s.width}, {s.classes} classes — {origin}. "
            f"Memory estimated at batch {batch} with {optimizer}."
        )
        self.summary_table.set_training(batch, optimizer)

    def _list_hint(self, layers: Layers) -> str:
        name = self.spec.preset
        if self.spec.is_custom:
            return "" if layers else "Empty: double-click a layer in the palette or drag it here."
        if layers:
            return (
                f"The layers of {name} for this input. Editing one turns it into a custom "
                "network (undo turns it back)."
            )
        return f"{name} is built by torchvision code: no editable layers; see its units below."

    def _selection_changed(self, path: Path | None) -> None:
        if not self._showing:
            self.selected = path
            self._show_selected()
            self._draw_diagram(self.layer_list.error_path())

    def _show_selected(self) -> None:
        if self.selected is None:
            self.editor.show_layer(None, {})
            return
        layer = layer_at(self.layers(), self.selected)
        kind = find_layer_kind(layer.kind)
        heading = f"Layer {place(self.selected)}: {kind.title if kind else layer.kind}"
        self.editor.show_layer(kind, dict(layer.params), heading)

    def _show_problem(self, message: str, path: Path | None) -> None:
        """A sentence in the banner; the layer at ``path`` marked; the last summary greyed."""
        self.banner.setText(message)
        self.banner.setVisible(True)
        self.summary_table.set_stale(True)
        self.layer_list.set_stats(None)
        self.layer_list.set_error(path, message)
        self._draw_diagram(path)

    def _summary_ready(self, summary: Any, spec: ArchitectureSpec) -> None:
        if spec != self.valid:
            return
        self.summary, self._summary_spec = summary, spec
        self.banner.setVisible(False)
        layers = self.layers()
        matched = len(summary.layers) == len(layers)
        labels = [layer_label(layer) for layer in layers] if matched else None
        self.summary_table.show_summary(summary, labels)
        stats = [(format_shape(r.output_shape), format_count(r.params)) for r in summary.layers]
        self.layer_list.set_stats(stats if matched else None)
        self.layer_list.set_error(None)
        self._draw_diagram()

    def _summary_failed(self, message: str, path: Path | None) -> None:
        self._show_problem(message, tuple(path) if path else None)

    def _draw_diagram(self, error: Path | None = None) -> None:
        s = self.state.input_shape
        fresh = self.summary is not None and self._summary_spec == self.valid and error is None
        selected = self.selected[0] if self.selected else None
        self.diagram.show_network(
            (s.channels, s.height, s.width), self.layers(), self.summary.layers if fresh else (),
            error[0] if error else None, selected,
        )  # fmt: skip
        box = self.diagram.box_rect(self.diagram.error_index or self.diagram.selected_index or 0)
        if box is not None:
            centre = box.center().toPoint()
            self.diagram_scroll.ensureVisible(centre.x(), centre.y(), 60, int(box.height()))

    def _input_shape_changed(self) -> None:
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


def _is_empty_block(layer: LayerSpec) -> bool:
    kind = find_layer_kind(layer.kind)
    return kind is not None and kind.container and not layer.layers


def _scrolled(widget: QWidget) -> QScrollArea:
    area = QScrollArea()
    area.setWidgetResizable(True)
    area.setWidget(widget)
    return area


if __name__ == "__main__":
    from cnn_lab.app.panels._standalone import run_standalone

    raise SystemExit(run_standalone(ArchitecturePanel))
