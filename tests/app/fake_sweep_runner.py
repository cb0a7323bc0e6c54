"""A sweep runner that starts nothing: the test plays the child's reports itself.

Shared by the progress and empty-state tests of the Sweep panel, which check what the panel
shows as trials arrive, not the sweep (tests/app/test_sweep_panel.py runs real ones).
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, Signal

from cnn_lab.engine.search.spec import SearchSpec


class FakeSweepRunner(QObject):
    """Starts nothing: the test plays the child's trial reports."""

    trial = Signal(dict)
    slots_planned = Signal(list, str)
    finished = Signal(dict)
    failed = Signal(str)
    cancelled = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.running = False

    def start(self, search: SearchSpec, db_path: str, **_: Any) -> None:
        self.running = True

    def stop(self) -> None:
        self.running = False
        self.cancelled.emit()

    def shutdown(self) -> None:
        self.running = False
