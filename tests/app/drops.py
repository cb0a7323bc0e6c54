"""Dragging and dropping files on a widget, as Qt delivers it: the events the panels' drop
tests send (a drag entering, then the drop), built once."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QWidget

AT = (10, 10)
"""Where in the widget the pointer is: anywhere inside accepts the same."""


def files_mime(*paths: Path) -> QMimeData:
    """What a file manager puts on a drag of ``paths``."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    return mime


def drag_enter(widget: QWidget, mime: QMimeData) -> QDragEnterEvent:
    """A drag carrying ``mime`` enters ``widget``; the event says whether it was accepted.

    The caller holds ``mime`` until the drop: the events do not own it.
    """
    event = QDragEnterEvent(
        QPoint(*AT),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    widget.dragEnterEvent(event)
    return event


def drop_event(mime: QMimeData) -> QDropEvent:
    """The drop of ``mime`` (send it with ``widget.dropEvent``, inside a waitSignal if the
    drop starts work)."""
    return QDropEvent(
        QPointF(*AT),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
