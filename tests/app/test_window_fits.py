"""The window fits a laptop (issue 23): every panel usable at 1,280 x 720 and at 1,024 px wide,
the window opening inside the available screen, and an empty Jobs dock one line high.

The screenshots of every panel at both sizes go under the test's tmp_path, or under the folder
named by CNN_LAB_FIT_SHOTS; their paths are printed (pytest -s shows them).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PySide6.QtCore import QSize
from PySide6.QtWidgets import QApplication

from cnn_lab.app.main_window import MainWindow
from cnn_lab.app.window_jobs import JOBS_DOCK_HEIGHT
from cnn_lab.app.window_view import PREFERRED_SIZE
from cnn_lab.engine.jobs.queue import QUEUED, RUNNING, JobRow

SIZES = [(1280, 720), (1024, 720)]
ONE_LINE = 60  # px: an empty Jobs dock, title bar included, stays under this


def _shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("CNN_LAB_FIT_SHOTS") or tmp_path / "fit")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_every_panel_fits_1280x720_and_1024_wide(qtbot, window: MainWindow, tmp_path) -> None:  # type: ignore[no-untyped-def]
    folder = _shots(tmp_path)
    hint = window.minimumSizeHint()
    assert hint.width() <= 1024 and hint.height() <= 720, f"window minimum {hint}"
    saved = []
    for width, height in SIZES:
        window.resize(width, height)
        for key, panel in window.panels.items():
            window.show_panel(key)
            QApplication.processEvents()
            assert window.size() == QSize(width, height), f"{key}: window {window.size()}"
            need = panel.minimumSizeHint().expandedTo(panel.minimumSize())
            assert need.width() <= panel.width() and need.height() <= panel.height(), (
                f"{key} at {width}x{height}: needs {need.width()}x{need.height()}, "
                f"has {panel.width()}x{panel.height()}"
            )
            # The status bar is inside the window, not pushed below it.
            bar = window.statusBar()
            assert bar.isVisible() and bar.geometry().bottom() < window.height()
            path = folder / f"{key}-{width}x{height}.png"
            assert window.grab().save(str(path))
            saved.append(path)
    for path in saved:
        print(path)
    assert all(p.stat().st_size > 0 for p in saved)


def test_the_empty_jobs_dock_is_one_line_and_grows_when_jobs_queue(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    window.resize(1280, 720)
    QApplication.processEvents()
    assert window.jobs_view.collapsed and window.jobs_dock.height() < ONE_LINE
    assert window.jobs_view.summary.isVisible() and not window.jobs_view.table.isVisible()
    rows = [
        JobRow(1, "baseline", RUNNING, "cpu", 0, progress=0.4),
        JobRow(2, "wide", QUEUED, "waiting for the CPU", 0),
    ]
    window.jobs_view.set_rows(rows)
    # As tall as JOBS_DOCK_HEIGHT where the panels leave room (at 720 px they leave ~150).
    qtbot.waitUntil(lambda: window.jobs_dock.height() >= min(JOBS_DOCK_HEIGHT, 2 * ONE_LINE))
    assert window.jobs_view.table.isVisible() and not window.jobs_view.collapsed
    window.jobs_view.set_rows([])
    qtbot.waitUntil(lambda: window.jobs_dock.height() < ONE_LINE)


def test_the_window_opens_inside_the_available_screen(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    area = window.screen().availableGeometry()
    window._restored_size = False
    window.fit_to_screen()
    QApplication.processEvents()
    frame = window.frameGeometry()
    assert window.height() <= min(PREFERRED_SIZE[1], area.height())
    assert window.width() <= max(min(PREFERRED_SIZE[0], area.width()), window.minimumWidth())
    assert frame.top() >= area.top() and frame.left() >= area.left()
    if window.minimumWidth() <= area.width():
        assert area.contains(frame)


@pytest.mark.parametrize("size", [(1366, 900), (1920, 1080)])
def test_a_restored_size_larger_than_the_screen_is_cut_to_it(qtbot, window, size) -> None:  # type: ignore[no-untyped-def]
    window.resize(*size)
    window._restored_size = True
    window.fit_to_screen()
    area = window.screen().availableGeometry()
    assert window.height() <= min(size[1], area.height())
