"""Panes that panels are assembled from: splitters, scroll areas and bare columns.

Each is a few lines of Qt boilerplate that every panel wrote again; built here, a panel's
layout reads as what goes where and at which size.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QScrollArea, QSplitter, QVBoxLayout, QWidget


def splitter(orientation: Qt.Orientation, *widgets: QWidget, sizes: list[int]) -> QSplitter:
    """A splitter holding ``widgets`` in order, starting at ``sizes`` pixels each."""
    split = QSplitter(orientation)
    for widget in widgets:
        split.addWidget(widget)
    split.setSizes(sizes)
    return split


def scrolled(widget: QWidget) -> QScrollArea:
    """``widget`` in a scroll area that resizes it, for content that can outgrow its pane."""
    area = QScrollArea()
    area.setWidgetResizable(True)
    area.setWidget(widget)
    return area


def column(top: QWidget, rest: QWidget) -> QWidget:
    """A margin-less column: ``top`` at its natural height, ``rest`` taking the remaining space."""
    pane = QWidget()
    layout = QVBoxLayout(pane)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.addWidget(top)
    layout.addWidget(rest, 1)
    return pane
