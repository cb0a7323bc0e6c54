"""Run one panel on its own for a quick look: ``python -m cnn_lab.app.panels.<panel>``."""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from PySide6.QtGui import QKeySequence, QUndoStack
from PySide6.QtWidgets import QApplication, QWidget

from cnn_lab.app.state import AppState
from cnn_lab.engine.store import resolve_location


def run_standalone(make_panel: Callable[[AppState], QWidget]) -> int:
    app = QApplication.instance() or QApplication(sys.argv)
    db = (
        resolve_location(None)
        if "--real-db" in sys.argv
        else Path(tempfile.mkdtemp()) / "runs.sqlite"
    )
    state = AppState(db)
    panel = make_panel(state)
    add_undo_shortcuts(panel)
    panel.resize(1000, 700)
    panel.show()
    return app.exec()


def add_undo_shortcuts(panel: QWidget) -> None:
    """Ctrl+Z and Ctrl+Shift+Z / Ctrl+Y for a panel with an ``undo_stack``, run on its own.

    In the window the Edit menu has these shortcuts (through a QUndoGroup); panels add none
    themselves, since two actions with one shortcut make Qt's shortcut ambiguous.
    """
    stack = getattr(panel, "undo_stack", None)
    if not isinstance(stack, QUndoStack):
        return
    undo = stack.createUndoAction(panel, "Undo")
    undo.setShortcuts(QKeySequence.keyBindings(QKeySequence.StandardKey.Undo))
    redo = stack.createRedoAction(panel, "Redo")
    redo.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
    panel.addActions([undo, redo])


def run_from_argv() -> int | None:
    """``--run N`` on the command line picks the run a panel shows (with ``--real-db``)."""
    if "--run" in sys.argv:
        index = sys.argv.index("--run") + 1
        if index < len(sys.argv) and sys.argv[index].isdigit():
            return int(sys.argv[index])
    return None
