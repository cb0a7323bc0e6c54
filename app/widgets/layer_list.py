"""The ordered layer list: a tree of the network's layers, residual blocks holding theirs.

The list never edits the network itself: a drop, a key or a button becomes a request signal
with layer paths (tuples of 0-based indices, (2, 1) is the second inner layer of the third
layer), the panel turns it into an undoable edit, and hands the new layers back with
``set_layers``. So the spec stays the one source of truth, and undo covers every change.
"""

from __future__ import annotations

import json

from PySide6.QtCore import QMimeData, QPoint, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QDrag, QDragMoveEvent, QDropEvent, QKeyEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from cnn_lab.app.models.architecture_form import place
from cnn_lab.app.widgets.layer_palette import KIND_MIME
from cnn_lab.engine.models.layers.registry import LayerProblem, find_layer_kind
from cnn_lab.engine.specs import LayerSpec
from cnn_lab.engine.specs.layer_edits import Layers, Path, layer_at, siblings_at

PATH_MIME = "application/x-cnn-lab-layer-path"
PATH_ROLE = Qt.ItemDataRole.UserRole
ERROR_BRUSH = QBrush(QColor("#ffd4d4"))
ERROR_MARK = "⚠ error"
FIGURE_SPACE = "\u2007"  # as wide as a digit


def layer_label(layer: LayerSpec) -> str:
    """The kind's short label ("Conv 3×3, 64, /2"); the title when the params do not parse."""
    kind = find_layer_kind(layer.kind)
    if kind is None:
        return f"{layer.kind} (unknown kind)"
    try:
        return kind.describe(kind.parse(layer.params))
    except LayerProblem:
        return kind.title


# --- the widget ------------------------------------------------------------------------------


class _LayerTree(QTreeWidget):
    """The tree itself: drags carry layer paths, drops are reported, never applied here."""

    moved = Signal(object, object, int)  # source path, parent path, index
    dropped_kind = Signal(str, object, int)  # kind, parent path, index
    delete_pressed = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.setColumnCount(3)
        self.setHeaderLabels(["Layer", "Output", "Params"])
        self.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.header().setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        self.header().setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        self.header().setStretchLastSection(False)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setDragEnabled(True)
        self.setAcceptDrops(True)
        self.setDropIndicatorShown(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DragDrop)
        self.setDefaultDropAction(Qt.DropAction.MoveAction)
        self.setAlternatingRowColors(True)

    def mimeTypes(self) -> list[str]:
        return [PATH_MIME, KIND_MIME]

    def startDrag(self, _actions: Qt.DropAction) -> None:
        # Our own drag: Qt's would delete the dragged rows after a move, but the rows are
        # rebuilt from the spec once the panel has made the edit.
        item = self.currentItem()
        if item is None:
            return
        data = QMimeData()
        data.setData(PATH_MIME, json.dumps(list(item.data(0, PATH_ROLE))).encode())
        drag = QDrag(self)
        drag.setMimeData(data)
        drag.exec(Qt.DropAction.MoveAction)

    def dragEnterEvent(self, event: QDragMoveEvent) -> None:  # type: ignore[override]
        self.dragMoveEvent(event)

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        super().dragMoveEvent(event)
        mime = event.mimeData()
        if mime.hasFormat(PATH_MIME) or mime.hasFormat(KIND_MIME):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:
        mime = event.mimeData()
        parent, index = self.drop_target(event.position().toPoint())
        if mime.hasFormat(PATH_MIME):
            source = tuple(json.loads(bytes(mime.data(PATH_MIME).data()).decode()))
            self.moved.emit(source, parent, index)
        elif mime.hasFormat(KIND_MIME):
            self.dropped_kind.emit(bytes(mime.data(KIND_MIME).data()).decode(), parent, index)
        else:
            event.ignore()
            return
        event.setDropAction(Qt.DropAction.CopyAction)
        event.accept()

    def drop_target(self, pos: QPoint) -> tuple[Path, int]:
        """Where a drop at ``pos`` goes: into a residual block's middle, else above/below."""
        item = self.itemAt(pos)
        if item is None:
            return (), self.topLevelItemCount()
        path: Path = tuple(item.data(0, PATH_ROLE))
        rect = self.visualItemRect(item)
        offset = pos.y() - rect.top()
        container = bool(item.flags() & Qt.ItemFlag.ItemIsDropEnabled)
        if container and rect.height() / 4 < offset < rect.height() * 3 / 4:
            return path, item.childCount()
        below = offset >= rect.height() / 2
        return path[:-1], path[-1] + (1 if below else 0)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace):
            self.delete_pressed.emit()
            event.accept()
            return
        super().keyPressEvent(event)


class LayerList(QWidget):
    """The layer tree with Up, Down, Duplicate, Delete and Open block buttons."""

    selection_changed = Signal(object)  # path or None
    move_requested = Signal(object, object, int)  # source path, parent path, index
    insert_requested = Signal(str, object, int)  # kind, parent path, index
    delete_requested = Signal(object)
    duplicate_requested = Signal(object)
    open_block_requested = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.tree = _LayerTree()
        self._layers: Layers = ()
        self._items: dict[Path, QTreeWidgetItem] = {}
        self._error: Path | None = None
        self.hint = QLabel()
        self.hint.setWordWrap(True)
        self.hint.setStyleSheet("color: palette(placeholder-text); padding: 2px;")
        self.hint.setVisible(False)
        buttons = QHBoxLayout()
        buttons.setContentsMargins(0, 0, 0, 0)
        self.up_button = self._button("Up", "Move the selected layer up", self._up)
        self.down_button = self._button("Down", "Move the selected layer down", self._down)
        self.duplicate_button = self._button(
            "Duplicate", "Insert a copy after it", lambda: self._emit(self.duplicate_requested)
        )
        self.delete_button = self._button(
            "Delete", "Remove the selected layer (Delete key)", self._delete
        )
        self.open_button = self._button(
            "Open block",
            "Replace the selected block with the plain layers it is made of, to edit them",
            lambda: self._emit(self.open_block_requested),
        )
        for button in (
            self.up_button,
            self.down_button,
            self.duplicate_button,
            self.delete_button,
            self.open_button,
        ):
            buttons.addWidget(button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.tree, 1)
        layout.addWidget(self.hint)
        layout.addLayout(buttons)
        self.tree.itemSelectionChanged.connect(self._selection_changed)
        self.tree.moved.connect(self.move_requested)
        self.tree.dropped_kind.connect(self.insert_requested)
        self.tree.delete_pressed.connect(self._delete)
        self._update_buttons()

    def _button(self, text: str, tip: str, slot: object) -> QPushButton:
        button = QPushButton(text)
        button.setToolTip(tip)
        button.clicked.connect(slot)
        return button

    # ----------------------------------------------------------------- showing

    def set_layers(self, layers: Layers, selected: Path | None = None) -> None:
        """Show ``layers``, keeping which blocks are open and the scroll position."""
        collapsed = {
            path
            for path, item in self._items.items()
            if item.childCount() and not item.isExpanded()
        }
        scroll = self.tree.verticalScrollBar().value()
        self._layers = layers
        self._error = None
        self.tree.blockSignals(True)
        self.tree.clear()
        self._items = {}
        self._add(self.tree.invisibleRootItem(), layers, ())
        for path, item in self._items.items():
            item.setExpanded(path not in collapsed)
        self.tree.blockSignals(False)
        self.select(selected)
        self.tree.verticalScrollBar().setValue(scroll)

    def _add(self, parent: QTreeWidgetItem, layers: Layers, base: Path) -> None:
        for i, layer in enumerate(layers):
            path = (*base, i)
            number = place(path).rjust(len(str(len(layers))), FIGURE_SPACE)  # digits align
            item = QTreeWidgetItem(parent, [f"{number}   {layer_label(layer)}", "", ""])
            item.setData(0, PATH_ROLE, path)
            kind = find_layer_kind(layer.kind)
            flags = (
                Qt.ItemFlag.ItemIsEnabled
                | Qt.ItemFlag.ItemIsSelectable
                | Qt.ItemFlag.ItemIsDragEnabled
            )
            if kind is not None and kind.container:
                flags |= Qt.ItemFlag.ItemIsDropEnabled
            item.setFlags(flags)
            if kind is not None:
                item.setToolTip(0, kind.description)
            item.setTextAlignment(2, Qt.AlignmentFlag.AlignRight)
            self._items[path] = item
            if layer.layers:
                self._add(item, layer.layers, path)

    def set_hint(self, text: str) -> None:
        """A line under the tree: what the list shows, or how to start."""
        self.hint.setText(text)
        self.hint.setVisible(bool(text))

    def set_stats(self, rows: list[tuple[str, str]] | None) -> None:
        """Output shape and parameters per top-level layer (None clears them)."""
        for i in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(i)
            shape, params = rows[i] if rows is not None and i < len(rows) else ("", "")
            item.setText(1, shape)
            item.setText(2, params)

    def set_error(self, path: Path | None, message: str = "") -> None:
        """Paint the layer at ``path`` red with ``message`` as its tooltip; None clears."""
        self._error = tuple(path) if path is not None and tuple(path) in self._items else None
        for item_path, item in self._items.items():
            bad = path is not None and item_path == tuple(path)
            kind = find_layer_kind(layer_at(self._layers, item_path).kind)
            for column in range(3):
                item.setBackground(column, ERROR_BRUSH if bad else QBrush())
                tip = message if bad else (kind.description if kind and column == 0 else "")
                item.setToolTip(column, tip)
            if bad:  # also in words: the red is hidden while the row is selected
                item.setText(1, ERROR_MARK)
                item.setForeground(1, QBrush(QColor("#c01818")))
                if item.parent() is not None:
                    item.parent().setExpanded(True)
                self.tree.scrollToItem(item)
            elif item.text(1) == ERROR_MARK:
                item.setText(1, "")

    def error_path(self) -> Path | None:
        return self._error

    def item_at_path(self, path: Path) -> QTreeWidgetItem | None:
        return self._items.get(tuple(path))

    def select(self, path: Path | None) -> None:
        item = self._items.get(tuple(path)) if path is not None else None
        if item is None:
            self.tree.clearSelection()
            self.tree.setCurrentItem(None)
        else:
            self.tree.setCurrentItem(item)
            self.tree.scrollToItem(item)
        self._update_buttons()

    def selected_path(self) -> Path | None:
        items = self.tree.selectedItems()
        return tuple(items[0].data(0, PATH_ROLE)) if items else None

    # ----------------------------------------------------------------- requests

    def _selection_changed(self) -> None:
        self._update_buttons()
        self.selection_changed.emit(self.selected_path())

    def _update_buttons(self) -> None:
        path = self.selected_path()
        count = len(siblings_at(self._layers, path[:-1])) if path else 0
        self.up_button.setEnabled(bool(path) and path[-1] > 0)
        self.down_button.setEnabled(bool(path) and path[-1] < count - 1)
        for button in (self.duplicate_button, self.delete_button):
            button.setEnabled(path is not None)
        kind = find_layer_kind(layer_at(self._layers, path).kind) if path else None
        self.open_button.setEnabled(kind is not None and kind.expand is not None)

    def _emit(self, signal: Signal) -> None:
        path = self.selected_path()
        if path is not None:
            signal.emit(path)

    def _delete(self) -> None:
        self._emit(self.delete_requested)

    def _up(self) -> None:
        path = self.selected_path()
        if path and path[-1] > 0:
            self.move_requested.emit(path, path[:-1], path[-1] - 1)

    def _down(self) -> None:
        path = self.selected_path()
        if path:
            self.move_requested.emit(path, path[:-1], path[-1] + 2)
