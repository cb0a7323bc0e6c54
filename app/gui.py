"""Starting the Qt application: the window, or a screenshot of it."""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtCore import QThreadPool
from PySide6.QtWidgets import QApplication

from cnn_lab.app.main_window import MainWindow
from cnn_lab.app.state import AppState
from cnn_lab.engine.errors import UserError
from cnn_lab.engine.store import RunStore, resolve_db_path

SCREENSHOT_SIZE = (1280, 800)


def create_window(db: str | None) -> MainWindow:
    path = resolve_db_path(db)
    RunStore.open(path).close()  # refuse a bad database before any window appears
    return MainWindow(AppState(path))


def run_gui(
    db: str | None = None,
    screenshot: str | None = None,
    panel: str | None = None,
    runs: list[int] | None = None,
) -> int:
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("cnn-lab")
    app.setOrganizationName("cnn-lab")
    window = create_window(db)
    if screenshot:
        return save_screenshot(window, Path(screenshot), panel, runs)
    window.resize(*SCREENSHOT_SIZE)
    window.show()
    return app.exec()


def save_screenshot(
    window: MainWindow, out: Path, panel: str | None = None, runs: list[int] | None = None
) -> int:
    """Render the window (or one panel, as the window shows it) to ``out`` as PNG.

    ``runs`` are selected in Runs first, as a person would before opening Evaluate, Predict or
    (with two or more) Compare.
    """
    app = QApplication.instance()
    if runs:
        if not window.runs_panel.select_runs(runs):
            raise UserError(f"None of the runs {runs} is listed in {window.state.db_path}.")
        if len(runs) > 1:
            window.compare(runs)
    if panel is not None:
        key = panel.strip().lower()
        if key not in window.panels:
            QThreadPool.globalInstance().waitForDone(30_000)  # let previews end before exit
            raise UserError(
                f"There is no panel called {panel!r}. Panels: {', '.join(window.panels)}."
            )
        window.tabs.setCurrentWidget(window.panels[key])
    window.resize(*SCREENSHOT_SIZE)
    window.show()
    # Let background work (sample previews) finish, its results land, and layouts settle.
    QThreadPool.globalInstance().waitForDone(30_000)
    for _ in range(5):
        app.processEvents()
    out.parent.mkdir(parents=True, exist_ok=True)
    if not window.grab().save(str(out), "PNG"):
        raise UserError(f"Could not write the screenshot to {out}.")
    window.close()
    return 0
