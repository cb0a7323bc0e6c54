"""The window's menus: File, Edit, Run, View and Help, with the standard shortcuts.

Built here rather than in main_window.py to keep that file about the panels and the jobs;
every action calls a public method of the window, so tests can trigger the same code that a
menu click runs (``window.menu_actions["Save Spec As…"].trigger()``).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QApplication, QMenu

from cnn_lab.app.recent_sources import load_recent_sources
from cnn_lab.app.settings import RECENT_DBS_KEY, RECENT_SPECS_KEY
from cnn_lab.app.theme import THEME_LABELS
from cnn_lab.engine.store.locations import describe

if TYPE_CHECKING:
    from cnn_lab.app.main_window import MainWindow

Shortcut = str | QKeySequence.StandardKey | list[str] | None

PANEL_SHORTCUTS = ["Ctrl+1", "Ctrl+2", "Ctrl+3", "Ctrl+4", "Ctrl+5",
                   "Ctrl+6", "Ctrl+7", "Ctrl+8", "Ctrl+9", "Ctrl+0"]  # fmt: skip
"""The panels in tab order, as browsers number their tabs."""


FALLBACK_KEYS = {
    QKeySequence.StandardKey.Quit: "Ctrl+Q",
    QKeySequence.StandardKey.FullScreen: "F11",
    QKeySequence.StandardKey.HelpContents: "F1",
}
"""Standard keys that some platforms leave unbound; Qt maps Ctrl to Cmd on macOS."""


def _action(
    window: MainWindow, text: str, slot: Callable[[], Any], shortcut: Shortcut = None,
    tip: str = "",
) -> QAction:  # fmt: skip
    action = QAction(text, window)
    if isinstance(shortcut, list):
        action.setShortcuts([QKeySequence(s) for s in shortcut])
    elif isinstance(shortcut, QKeySequence.StandardKey):
        bindings = QKeySequence.keyBindings(shortcut)
        fallback = FALLBACK_KEYS.get(shortcut)
        if fallback and not bindings:  # platforms without a theme (offscreen) bind nothing
            bindings = [QKeySequence(fallback)]
        action.setShortcuts(bindings)
    elif shortcut:
        action.setShortcut(QKeySequence(shortcut))
    if tip:
        action.setToolTip(tip)
        action.setStatusTip(tip)
    action.triggered.connect(lambda _checked=False: slot())
    window.menu_actions[text] = action
    return action


def _focused(method: str) -> None:
    """Cut, copy, paste or select all in whichever text field has the focus."""
    widget = QApplication.focusWidget()
    if widget is not None and callable(getattr(widget, method, None)):
        getattr(widget, method)()


def _fill_recent(menu: QMenu, paths: list[str], open_path: Callable[[str], Any]) -> None:
    menu.clear()
    for path in paths:
        shown = path.replace("sample:", "Sample: ") if path.startswith("sample:") else path
        shown = describe(shown)  # a database address is shown without its password
        action = menu.addAction(shown)
        action.setToolTip(shown)
        action.triggered.connect(lambda _checked=False, p=path: open_path(p))
    if not paths:
        menu.addAction("Nothing yet").setEnabled(False)


def build_menus(window: MainWindow) -> None:
    """Add the menu bar's menus to ``window`` (its Train/Stop actions already exist)."""
    bar = window.menuBar()
    s = QKeySequence.StandardKey

    file_menu = bar.addMenu("&File")
    file_menu.addAction(_action(
        window, "Import Image Folder…", window.choose_dataset_folder, "Ctrl+I",
        "Import a folder of class folders (or a folder of images with a CSV of labels)",
    ))  # fmt: skip
    file_menu.addAction(_action(
        window, "Import Dataset File…", window.choose_dataset_file, "Ctrl+Shift+I",
        "Import a .zip or .tar archive, a CSV of image paths and labels, or a .npz",
    ))  # fmt: skip
    recent_data = file_menu.addMenu("Recent Datasets")
    recent_data.aboutToShow.connect(
        lambda: _fill_recent(recent_data, load_recent_sources(), window.open_dataset)
    )
    file_menu.addSeparator()
    file_menu.addAction(_action(
        window, "Open Spec…", window.choose_spec, "Ctrl+Shift+O",
        "Load a run spec (JSON: dataset, architecture and hyperparameters) into the panels",
    ))  # fmt: skip
    file_menu.addAction(_action(
        window, "Save Spec As…", window.choose_spec_to_save, s.Save,
        "Save the current dataset, architecture and hyperparameters as a run spec (JSON) "
        "that Open Spec and `cnn-lab train --spec` read",
    ))  # fmt: skip
    recent_specs = file_menu.addMenu("Recent Specs")
    recent_specs.aboutToShow.connect(
        lambda: _fill_recent(
            recent_specs, window.settings.paths(RECENT_SPECS_KEY), window.open_spec
        )
    )
    file_menu.addSeparator()
    file_menu.addAction(_action(
        window, "Open Run Database…", window.choose_database, s.Open,
        "Open or create the SQLite file where runs are saved",
    ))  # fmt: skip
    file_menu.addAction(_action(
        window, "Open a Lab Database…", window.choose_lab_database, None,
        "Open the lab's PostgreSQL database (postgresql://USER@HOST/DATABASE), where every "
        "machine's runs meet",
    ))  # fmt: skip
    recent_dbs = file_menu.addMenu("Recent Databases")
    recent_dbs.aboutToShow.connect(
        lambda: _fill_recent(
            recent_dbs, window.settings.paths(RECENT_DBS_KEY), window.open_database
        )
    )
    file_menu.addSeparator()
    file_menu.addAction(_action(window, "Quit", window.close, s.Quit))

    edit_menu = bar.addMenu("&Edit")
    undo = window.undo_group.createUndoAction(window, "Undo")
    undo.setShortcuts(QKeySequence.keyBindings(s.Undo))
    redo = window.undo_group.createRedoAction(window, "Redo")
    redo.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
    window.menu_actions["Undo"], window.menu_actions["Redo"] = undo, redo
    edit_menu.addAction(undo)
    edit_menu.addAction(redo)
    edit_menu.addSeparator()
    for text, method, key in (
        ("Cut", "cut", s.Cut),
        ("Copy", "copy", s.Copy),
        ("Paste", "paste", s.Paste),
        ("Select All", "selectAll", s.SelectAll),
    ):
        edit_menu.addAction(_action(window, text, partial(_focused, method), key))
    edit_menu.addSeparator()
    edit_menu.addAction(_action(
        window, "Find Runs…", window.find_runs, s.Find,
        "Search the runs (Runs panel): status:, tag:, lr<0.01, sort:-accuracy …",
    ))  # fmt: skip

    run_menu = bar.addMenu("&Run")
    run_menu.addAction(window.train_action)
    run_menu.addAction(window.stop_action)
    run_menu.addAction(window.stop_all_action)
    run_menu.addSeparator()
    run_menu.addAction(_action(
        window, "Train the Sample", window.train_sample, None,
        "Train the built-in shapes sample with the small_cnn preset (about a minute on a CPU)",
    ))  # fmt: skip
    run_menu.addAction(_action(
        window, "Optimize…", window.show_optimize, None,
        "Find fast settings and a good rate, search briefly and train the best, in a time budget",
    ))  # fmt: skip

    view_menu = bar.addMenu("&View")
    shortcuts: list[str | None] = [*PANEL_SHORTCUTS, *[None] * len(window.panels)]
    for shortcut, (key, panel) in zip(shortcuts, window.panels.items(), strict=False):
        view_menu.addAction(_action(window, panel.title, partial(window.show_panel, key), shortcut))
    view_menu.addSeparator()
    jobs_toggle = window.jobs_dock.toggleViewAction()
    jobs_toggle.setShortcut(QKeySequence("Ctrl+J"))
    window.menu_actions["Jobs"] = jobs_toggle
    view_menu.addAction(jobs_toggle)
    theme_menu = view_menu.addMenu("Theme")
    window.theme_group = QActionGroup(window)
    for name, label in THEME_LABELS.items():
        action = _action(window, f"{label} Theme", partial(window.set_theme, name))
        action.setCheckable(True)
        action.setData(name)
        window.theme_group.addAction(action)
        theme_menu.addAction(action)
    full = _action(window, "Full Screen", window.toggle_full_screen, s.FullScreen)
    view_menu.addAction(full)
    view_menu.addAction(_action(
        window, "Reset Layout", window.reset_layout, None,
        "Put the Jobs dock back at the bottom and the window at its first size",
    ))  # fmt: skip

    help_menu = bar.addMenu("&Help")
    help_menu.addAction(_action(
        window, "Guided Tour", window.start_tour, s.HelpContents,
        "A few steps through the panels, one sentence each",
    ))  # fmt: skip
    help_menu.addAction(_action(
        window, "Welcome", window.show_welcome, None,
        "Show the first-run card: train a sample in one click",
    ))  # fmt: skip
    help_menu.addAction(_action(window, "Keyboard Shortcuts", window.show_shortcuts, None))
    help_menu.addSeparator()
    help_menu.addAction(_action(window, "About cnn-lab", window.show_about))


def shortcut_rows(window: MainWindow) -> list[tuple[str, str]]:
    """(what, keys) for every menu action with a shortcut, menu by menu: the shortcuts list."""
    rows = []
    for menu_action in window.menuBar().actions():
        menu = menu_action.menu()
        if menu is None:
            continue
        title = menu_action.text().replace("&", "")
        for action in _all_actions(menu):
            keys = ", ".join(
                k
                for k in (
                    s.toString(QKeySequence.SequenceFormat.NativeText) for s in action.shortcuts()
                )
                if _typed(k)
            )
            if keys:
                rows.append((f"{title} ▸ {action.text().replace('&', '')}", keys))
    return rows


def _typed(key: str) -> bool:
    """A key a person types (Ctrl+S, F1), not a dedicated multimedia key Qt also binds (Save)."""
    return "+" in key or (key[:1] == "F" and key[1:].isdigit()) or key in ("Del", "Delete")


def _all_actions(menu: QMenu) -> list[QAction]:
    found = []
    for action in menu.actions():
        if action.menu() is not None:
            found += _all_actions(action.menu())
        elif not action.isSeparator():
            found.append(action)
    return found
