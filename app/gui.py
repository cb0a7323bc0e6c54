"""Starting the Qt application: the window, or a screenshot of it.

The run store is opened (and checked) before any window appears. One that cannot be read
is never opened half-way nor deleted: the person chooses to start a new database or restore
the latest backup (the bad file is moved aside, see ``engine/store/backup.py``) or to quit.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from PySide6.QtCore import QMessageLogContext, QThreadPool, QtMsgType, qInstallMessageHandler
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QMessageBox

from cnn_lab.app.main_window import MainWindow
from cnn_lab.app.settings import Settings
from cnn_lab.app.state import AppState
from cnn_lab.app.theme import apply_theme
from cnn_lab.engine.errors import StoreError, UserError
from cnn_lab.engine.store import is_sqlite, open_store, resolve_location
from cnn_lab.engine.store.backup import latest_backup, move_aside, restore_backup
from cnn_lab.engine.store.paths import ENV_VAR
from cnn_lab.engine.store.store import UnreadableStore

SCREENSHOT_SIZE = (1280, 720)
"""What a 1366x768 laptop shows of the window once the desktop's panels take their share: the
README's screenshots are what a person sees on the commonest screen."""
FULL_CHECK_MAX_BYTES = 128 * 1024 * 1024
"""Up to this size the store's every page is read at start (``quick_check``: about 0.25 s per
100 MB), so damage is found while recovery can still be offered; a larger store relies on
SQLite noticing damage where it reads, which the panels show as a sentence."""

NEW_DATABASE = "Start a new database"
RESTORE_BACKUP = "Restore the backup"
QUIT = "Quit"


def create_window(db: str | None, *, ask: bool = True) -> MainWindow | None:
    """The window on the run store at ``db``; None when the person chose to quit.

    With ``ask``, a store that cannot be read offers the recovery dialog and any other refusal
    (a newer cnn-lab's store, a lock that never frees) shows its sentence in a message box;
    without (screenshots), the ``StoreError`` goes to the caller.
    """
    settings = Settings()
    path = resolve_location(db if db is not None else _last_database(settings))
    note = ""
    # A lab's PostgreSQL is not opened here: a server that is down or slow must not keep the
    # window from appearing. The window's store link says so in its status line and retries.
    while is_sqlite(path):
        try:
            open_store(path, check=_worth_checking(path)).close()
            break
        except UnreadableStore as exc:
            if not ask:
                raise
            choice = ask_recovery(exc, latest_backup(exc.path))
            if choice == QUIT:
                return None
            try:
                note = _recover(exc.path, choice)
            except StoreError as failed:
                QMessageBox.critical(None, "Cannot open the run store", str(failed))
                return None
        except StoreError as exc:
            if not ask:
                raise
            QMessageBox.critical(None, "Cannot open the run store", str(exc))
            return None
    if ask:  # a launch, not a screenshot: this database is the last one used
        settings.remember_database(path)
    window = MainWindow(AppState(path), settings=settings)
    if note:
        window.status_label.setText(note)
    return window


def _last_database(settings: Settings) -> str | None:
    """The database used last, when neither ``--db`` nor ``$CNN_LAB_DB`` says another and
    the file is still there (a moved or deleted one falls back to the default quietly); a
    PostgreSQL address is taken as it is, and opening it says if the server is gone."""
    if os.environ.get(ENV_VAR):
        return None
    last = settings.last_database
    if not last:
        return None
    return last if not is_sqlite(last) or Path(last).is_file() else None


def _worth_checking(location: str) -> bool:
    """Whether to read a SQLite store's every page at start (a PostgreSQL server keeps its
    own pages consistent: ``check`` means nothing to it)."""
    if not is_sqlite(location):
        return False
    try:
        return 0 < Path(location).stat().st_size <= FULL_CHECK_MAX_BYTES
    except OSError:  # not there yet: a new store has nothing to check
        return False


def ask_recovery(error: UnreadableStore, backup: Path | None) -> str:
    """Ask what to do with a store that cannot be read; returns one of the button texts."""
    box = QMessageBox(QMessageBox.Icon.Critical, "The run store cannot be read", error.message)
    lines = [
        f"{NEW_DATABASE}: the file is moved aside (to {error.path.name}.damaged-<date>) and kept; "
        "cnn-lab starts with an empty run store."
    ]
    if backup is not None:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(backup.stat().st_mtime))
        lines.append(
            f"{RESTORE_BACKUP}: the file is moved aside and the copy saved at {when} "
            f"({backup.name}) takes its place; runs recorded since then are not in it."
        )
    lines.append(f"{QUIT}: change nothing.")
    box.setInformativeText("\n\n".join(lines))
    buttons = {box.addButton(NEW_DATABASE, QMessageBox.ButtonRole.AcceptRole): NEW_DATABASE}
    if backup is not None:
        buttons[box.addButton(RESTORE_BACKUP, QMessageBox.ButtonRole.AcceptRole)] = RESTORE_BACKUP
    quit_button = box.addButton(QUIT, QMessageBox.ButtonRole.RejectRole)
    buttons[quit_button] = QUIT
    box.setEscapeButton(quit_button)
    box.exec()
    return buttons.get(box.clickedButton(), QUIT)


def _recover(path: Path, choice: str) -> str:
    """Do what the person chose; returns a sentence for the status bar."""
    backup = latest_backup(path) if choice == RESTORE_BACKUP else None
    if backup is not None:
        aside = restore_backup(path, backup)
        return f"Restored the run store from {backup.name}; the unreadable file is now {aside}."
    aside = move_aside(path)
    return f"Started a new run store; the unreadable file is now {aside}."


PLATFORM_NOISE = frozenset({"This plugin does not support propagateSizeHints()"})
"""Warnings of the offscreen platform (screenshots, CI) about what it cannot do by design."""


def _quiet_platform_noise() -> None:
    """Drop the offscreen platform's warnings; every other Qt message still reaches stderr."""

    def handler(_mode: QtMsgType, _context: QMessageLogContext, message: str) -> None:
        if message not in PLATFORM_NOISE:
            sys.stderr.write(f"{message}\n")

    qInstallMessageHandler(handler)


def run_gui(
    db: str | None = None,
    screenshot: str | None = None,
    panel: str | None = None,
    runs: list[int] | None = None,
    drops: list[str] | None = None,
    theme: str | None = None,
) -> int:
    _quiet_platform_noise()
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("cnn-lab")
    app.setOrganizationName("cnn-lab")
    app.setWindowIcon(_icon())
    window = create_window(db, ask=not screenshot)
    if window is None:
        return 1
    if screenshot:
        return save_screenshot(window, Path(screenshot), panel, runs, drops, theme)
    window.show()
    window.fit_to_screen()  # the size last left or 1280 x 800, inside the available screen
    return app.exec()


def _icon() -> QIcon:
    from importlib import resources

    icon = QIcon()
    folder = resources.files("cnn_lab.resources")
    for size in (48, 128, 256):
        png = folder.joinpath(f"cnn-lab-{size}.png")
        if png.is_file():
            icon.addFile(str(png))
    return icon


def save_screenshot(
    window: MainWindow,
    out: Path,
    panel: str | None = None,
    runs: list[int] | None = None,
    drops: list[str] | None = None,
    theme: str | None = None,
) -> int:
    """Render the window (or one panel, as the window shows it) to ``out`` as PNG.

    ``runs`` are selected in Runs first, as a person would before opening Evaluate, Predict or
    (with two or more) Compare; ``drops`` are then dropped on the panel (images on Predict, a
    folder on Data), so every screenshot in the README comes from this one command.
    """
    app = QApplication.instance()
    if theme is not None:
        window.theme = apply_theme(theme)
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
    for path in drops or []:
        window.drop_on_panel(path)
    window.resize(*SCREENSHOT_SIZE)
    window.keep_settings = False  # a screenshot's size and database are not the person's
    window.show()
    if window.tabs.currentWidget() is window.sweep_panel and window.sweep_panel.is_empty():
        window.sweep_panel.open_saved()  # Open on the newest past sweep, as a person would
    # Let background work (imports, previews, predictions) finish, its results land (which
    # may start more work, as an import starts its preview), and layouts settle.
    for _ in range(4):
        QThreadPool.globalInstance().waitForDone(60_000)
        for _ in range(5):
            app.processEvents()
    out.parent.mkdir(parents=True, exist_ok=True)
    if not window.grab().save(str(out), "PNG"):
        raise UserError(f"Could not write the screenshot to {out}.")
    window.close()
    return 0
