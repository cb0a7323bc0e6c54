"""Fixtures for the window tests: a MainWindow on a fresh database, quick training choices."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QThreadPool

from cnn_lab.app.bridge.job_controller import JobController
from cnn_lab.app.bridge.job_worker import STOP_GRACE_S
from cnn_lab.app.main_window import MainWindow
from cnn_lab.app.state import AppState


def shown_window(  # type: ignore[no-untyped-def]
    qtbot, db_path: Path, controller: JobController | None = None
) -> Iterator[MainWindow]:
    """A MainWindow on ``db_path``, shown at 1280x800; its jobs and pool work end afterwards.

    ``controller`` gives it other job slots or workers (the default: the machine's own).
    """
    win = MainWindow(AppState(db_path), controller=controller)
    # Closing with a job still running (a test that failed midway) asks in a modal box that
    # nobody answers offscreen, and no timeout can interrupt a modal loop: the suite would
    # hang. Yes, then, unless a test answers the question itself (tests/faults/test_gui_faults).
    win.confirm_close = lambda question: True  # type: ignore[method-assign]
    qtbot.addWidget(win)
    win.resize(1280, 800)
    win.show()
    yield win
    win.controller.shutdown()
    QThreadPool.globalInstance().waitForDone(10_000)


@pytest.fixture
def window(qtbot, db_path: Path) -> Iterator[MainWindow]:  # type: ignore[no-untyped-def]
    yield from shown_window(qtbot, db_path)


STOP_WAIT_MS = int((STOP_GRACE_S + 20) * 1000)
"""How long a test waits for a stopped run to end: the child's grace to stop by itself, then
its kill, and time to spare for a loaded machine."""


def choose_quick_run(win: MainWindow, *, epochs: int = 2, limit: int = 600) -> None:
    """Set the panels the way a person would for a short run."""
    win.data_panel.limit.setValue(limit)
    win.hyperparameters_panel.epochs.setValue(epochs)
    win.hyperparameters_panel.batch_size.setValue(32)
    win.hyperparameters_panel.device.setCurrentIndex(
        win.hyperparameters_panel.device.findData("cpu")
    )
