"""The palette of layer kinds: categories, then kinds, straight from the layer registry.

A double-click (or Enter) asks for the kind to be added; dragging a kind onto the layer list
inserts it where it is dropped. The registry lists kinds without importing torch.
"""

from __future__ import annotations

from PySide6.QtCore import QMimeData, Qt, Signal
from PySide6.QtWidgets import QAbstractItemView, QTreeWidget, QTreeWidgetItem, QWidget

from cnn_lab.engine.models.layers.registry import CATEGORIES, layer_kinds

KIND_MIME = "application/x-cnn-lab-layer-kind"
KIND_ROLE = Qt.ItemDataRole.UserRole


class LayerPalette(QTreeWidget):
    """Every layer kind under its category; ``kind_activated(kind)`` on double-click/Enter."""

    kind_activated = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setHeaderLabel("Layers")
        self.setRootIsDecorated(True)
        self.setDragEnabled(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.setDefaultDropAction(Qt.DropAction.CopyAction)
        self.setToolTip("Double-click a layer to add it after the selected one, or drag it.")
        self._items: dict[str, QTreeWidgetItem] = {}
        groups: dict[str, QTreeWidgetItem] = {}
        for name in CATEGORIES:
            group = QTreeWidgetItem(self, [name])
            group.setFlags(Qt.ItemFlag.ItemIsEnabled)
            font = group.font(0)
            font.setBold(True)
            group.setFont(0, font)
            groups[name] = group
        for kind in layer_kinds():
            item = QTreeWidgetItem(groups[kind.category], [kind.title])
            item.setData(0, KIND_ROLE, kind.kind)
            item.setToolTip(0, kind.description)
            item.setFlags(
                Qt.ItemFlag.ItemIsEnabled
                | Qt.ItemFlag.ItemIsSelectable
                | Qt.ItemFlag.ItemIsDragEnabled
            )
            self._items[kind.kind] = item
        for group in groups.values():
            group.setHidden(group.childCount() == 0)
        self.expandAll()
        self.itemActivated.connect(self._activated)

    def item_for(self, kind: str) -> QTreeWidgetItem:
        """The palette entry of ``kind`` (tests click it)."""
        return self._items[kind]

    def _activated(self, item: QTreeWidgetItem, _column: int) -> None:
        kind = item.data(0, KIND_ROLE)
        if kind:
            self.kind_activated.emit(str(kind))

    def mimeTypes(self) -> list[str]:
        return [KIND_MIME]

    def mimeData(self, items: list[QTreeWidgetItem]) -> QMimeData:
        data = QMimeData()
        kinds = [str(item.data(0, KIND_ROLE)) for item in items if item.data(0, KIND_ROLE)]
        if kinds:
            data.setData(KIND_MIME, kinds[0].encode())
        return data
