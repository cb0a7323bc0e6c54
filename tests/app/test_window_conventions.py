"""The conventions of a desktop app: menus with standard shortcuts, settings kept between
launches, themes, undo through the Edit menu, spec files and drops, the About box, and a
notification when a long job ends (issue 10)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QThreadPool, QUrl
from PySide6.QtGui import QDropEvent, QKeySequence, QPalette
from PySide6.QtWidgets import QApplication

from cnn_lab.app.main_window import MainWindow
from cnn_lab.app.notifier import JobNotifier
from cnn_lab.app.settings import RECENT_DBS_KEY, RECENT_SPECS_KEY, Settings
from cnn_lab.app.state import AppState
from cnn_lab.app.theme import apply_theme, is_dark
from cnn_lab.app.window_menus import shortcut_rows
from cnn_lab.engine.specs import RunSpec
from cnn_lab.engine.store import RunStore
from tests.app.test_job_queue_window import stub_window, train_on  # noqa: F401

MENUS = ["File", "Edit", "Run", "View", "Help"]


@pytest.fixture(autouse=True)
def _desktop_theme_after():  # type: ignore[no-untyped-def]
    """A test that turns the dark theme on must not leave it to the next test."""
    yield
    apply_theme("system")


@pytest.fixture(scope="module")
def shared(qapp, tmp_path_factory):  # type: ignore[no-untyped-def]
    """One window for the tests that only look (menus, shortcuts, the tour, About): each new
    window costs seconds of imports and previews. Every path it uses is its own."""
    home = tmp_path_factory.mktemp("shared-window")
    with pytest.MonkeyPatch.context() as env:
        for name in ("XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME"):
            env.setenv(name, str(home / name.lower()))
        win = MainWindow(AppState(home / "runs.sqlite"), settings=Settings(home / "settings.ini"))
        win.resize(1280, 800)
        win.show()
        yield win
        win.controller.shutdown()
        QThreadPool.globalInstance().waitForDone(10_000)
        win.close()
        win.deleteLater()


def menu(win: MainWindow, title: str):  # type: ignore[no-untyped-def]
    return next(a.menu() for a in win.menuBar().actions() if a.text().replace("&", "") == title)


def keys(win: MainWindow, text: str) -> list[str]:
    return [k.toString() for k in win.menu_actions[text].shortcuts()]


def press(qtbot, win: MainWindow, sequence: str) -> None:  # type: ignore[no-untyped-def]
    """Type a shortcut the way a person does: to the widget that has the focus."""
    win.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is win, timeout=5000)
    combo = QKeySequence(sequence)[0]
    target = QApplication.focusWidget() or win
    qtbot.keyClick(target, combo.key(), combo.keyboardModifiers())


# ----------------------------------------------------------------------------- menus


def test_the_menu_bar_has_the_five_menus_in_order(shared) -> None:  # type: ignore[no-untyped-def]
    titles = [a.text().replace("&", "") for a in shared.menuBar().actions()]
    assert titles == MENUS
    for title in MENUS:
        assert menu(shared, title).actions(), f"{title} is empty"


def test_standard_shortcuts(shared) -> None:  # type: ignore[no-untyped-def]
    assert "Ctrl+Q" in keys(shared, "Quit")
    assert "Ctrl+O" in keys(shared, "Open Run Database…")
    assert "Ctrl+S" in keys(shared, "Save Spec As…")
    assert "Ctrl+Z" in keys(shared, "Undo")
    assert {"Ctrl+Shift+Z", "Ctrl+Y"} <= set(keys(shared, "Redo"))
    assert {"Ctrl+C", "Ctrl+V", "Ctrl+X", "Ctrl+A", "Ctrl+F"} <= {
        k
        for text in ("Copy", "Paste", "Cut", "Select All", "Find Runs…")
        for k in keys(shared, text)
    }
    assert shared.train_action.shortcut().toString() == "Ctrl+Return"
    assert "F1" in keys(shared, "Guided Tour")
    # The first ten panels by number, as browsers number tabs; Optimize (the eleventh) is
    # reached from Run ▸ Optimize… and the toolbar.
    assert [keys(shared, p.title)[0] for p in list(shared.panels.values())[:10]] == [
        f"Ctrl+{n}" for n in [*range(1, 10), 0]
    ]


def test_no_shortcut_is_bound_twice(shared) -> None:  # type: ignore[no-untyped-def]
    """Two enabled actions with one key make Qt's shortcut ambiguous: neither fires."""
    from PySide6.QtGui import QAction

    window_wide = [
        a
        for a in shared.findChildren(QAction)
        if a.shortcutContext()
        in (Qt.ShortcutContext.WindowShortcut, Qt.ShortcutContext.ApplicationShortcut)
    ]
    counts = Counter(k.toString() for a in window_wide for k in a.shortcuts())
    assert [k for k, n in counts.items() if n > 1] == []


def test_the_shortcuts_list_names_every_menu_shortcut(shared) -> None:  # type: ignore[no-untyped-def]
    rows = dict(shortcut_rows(shared))
    assert rows["File ▸ Quit"] == "Ctrl+Q"
    assert rows["Run ▸ Train"] == "Ctrl+Return"
    assert rows["Edit ▸ Redo"] == "Ctrl+Shift+Z, Ctrl+Y"


def test_panel_shortcuts_switch_tabs(qtbot, shared) -> None:  # type: ignore[no-untyped-def]
    press(qtbot, shared, "Ctrl+3")
    assert shared.tabs.currentWidget() is shared.hyperparameters_panel
    press(qtbot, shared, "Ctrl+7")
    assert shared.tabs.currentWidget() is shared.runs_panel
    press(qtbot, shared, "Ctrl+F")
    assert QApplication.focusWidget() is shared.runs_panel.search


def test_edit_undo_follows_the_panel_in_front(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    """Ctrl+Z undoes the last edit of the panel shown, and only of that panel."""
    window.show_panel("hyperparameters")
    before = window.state.train.epochs
    window.hyperparameters_panel.epochs.setValue(before + 4)
    assert window.state.train.epochs == before + 4
    window.show_panel("architecture")
    window.architecture_panel.choose_preset("resnet9")
    assert window.state.architecture.preset == "resnet9"
    press(qtbot, window, "Ctrl+Z")  # the architecture's edit, not the epochs
    assert window.state.architecture.preset != "resnet9"
    assert window.state.train.epochs == before + 4
    window.show_panel("hyperparameters")
    assert window.menu_actions["Undo"].isEnabled()
    press(qtbot, window, "Ctrl+Z")
    assert window.state.train.epochs == before
    press(qtbot, window, "Ctrl+Shift+Z")
    assert window.state.train.epochs == before + 4


# ----------------------------------------------------------------------------- settings


def test_layout_panel_and_theme_are_kept_between_launches(qtbot, db_path, tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings_file = tmp_path / "settings.ini"
    first = MainWindow(AppState(db_path), settings=Settings(settings_file))
    qtbot.addWidget(first)
    first.show()
    first.resize(1300, 700)  # the offscreen screen is 800 high: Qt clamps what is restored
    first.show_panel("compare")
    first.jobs_dock.setVisible(False)
    first.menu_actions["Dark Theme"].trigger()
    assert is_dark(QApplication.instance().palette())
    first.close()
    apply_theme("system")  # as a new process would start

    second = MainWindow(AppState(db_path), settings=Settings(settings_file))
    qtbot.addWidget(second)
    second.show()
    assert second.height() == 700 and second.width() >= second.minimumSizeHint().width()
    assert second.tabs.currentWidget() is second.compare_panel
    assert not second.jobs_dock.isVisible()
    assert second.theme == "dark" and is_dark(QApplication.instance().palette())
    assert second.menu_actions["Dark Theme"].isChecked()
    second.menu_actions["Light Theme"].trigger()
    assert not is_dark(QApplication.instance().palette())
    assert Settings(settings_file).theme == "light"
    assert Settings(settings_file).paths(RECENT_DBS_KEY) == [str(db_path)]
    second.close()


def test_the_last_database_opens_next_time(qtbot, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from cnn_lab.app.gui import _last_database, create_window

    monkeypatch.delenv("CNN_LAB_DB")
    first = create_window(str(tmp_path / "a.sqlite"))
    assert first is not None
    qtbot.addWidget(first)
    first.open_database(str(tmp_path / "b.sqlite"))  # switches once the file has opened
    qtbot.waitUntil(lambda: first.state.db_path == str(tmp_path / "b.sqlite"), timeout=15_000)
    first.close()
    second = create_window(None)
    assert second is not None
    qtbot.addWidget(second)
    assert second.state.db_path == str(tmp_path / "b.sqlite")
    assert second.settings.paths(RECENT_DBS_KEY)[:2] == [
        str(tmp_path / "b.sqlite"),
        str(tmp_path / "a.sqlite"),
    ]
    second.close()
    QThreadPool.globalInstance().waitForDone(10_000)
    (tmp_path / "b.sqlite").unlink()  # gone: the default database instead, no error
    assert _last_database(second.settings) is None
    monkeypatch.setenv("CNN_LAB_DB", str(tmp_path / "a.sqlite"))  # the variable wins
    assert _last_database(second.settings) is None


# ----------------------------------------------------------------------------- specs and drops


def test_a_saved_spec_opens_into_every_panel(window, tmp_path) -> None:  # type: ignore[no-untyped-def]
    window.hyperparameters_panel.epochs.setValue(7)
    window.architecture_panel.choose_preset("resnet9")
    path = tmp_path / "recipe.json"
    assert window.save_spec(str(path))
    saved = RunSpec.from_json(path.read_bytes())
    assert saved.train.epochs == 7 and saved.architecture.preset == "resnet9"

    window.hyperparameters_panel.epochs.setValue(2)
    window.architecture_panel.choose_preset("small_cnn")
    assert window.open_spec(str(path))
    assert window.state.train.epochs == 7
    assert window.hyperparameters_panel.epochs.value() == 7  # the form shows it, too
    assert window.state.architecture.preset == "resnet9"
    assert window.settings.paths(RECENT_SPECS_KEY) == [str(path.resolve())]


def test_a_bad_spec_is_refused_and_changes_nothing(window, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from PySide6.QtWidgets import QMessageBox

    said: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda _p, _t, text: said.append(text))
    bad = tmp_path / "bad.json"
    bad.write_text('{"train": {"epochs": -3}}')
    before = window.state.run_spec()
    assert not window.open_spec(str(bad))
    assert window.state.run_spec() == before
    assert "epochs" in said[0].lower()
    assert not window.open_spec(str(tmp_path / "missing.json"))
    assert "Cannot read" in said[1]


def drop(window: MainWindow, path: Path) -> None:
    data = QMimeData()
    data.setUrls([QUrl.fromLocalFile(str(path))])
    event = QDropEvent(
        QPointF(QPoint(20, 20)), Qt.DropAction.CopyAction, data,
        Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
    )  # fmt: skip
    window.dropEvent(event)


def test_drops_on_the_window_open_specs_databases_and_datasets(
    qtbot, window, tmp_path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    spec = window.state.run_spec().model_copy(
        update={"train": window.state.train.model_copy(update={"epochs": 9})}
    )
    (tmp_path / "dropped.json").write_text(spec.to_json())
    drop(window, tmp_path / "dropped.json")
    assert window.state.train.epochs == 9

    other = tmp_path / "other.sqlite"
    RunStore.open(other).close()
    drop(window, other)  # the window switches once the file has opened
    qtbot.waitUntil(lambda: window.state.db_path == str(other), timeout=15_000)

    opened: list[str] = []
    monkeypatch.setattr(window.data_panel, "open_source", opened.append)
    folder = tmp_path / "my-images"
    folder.mkdir()
    window.show_panel("runs")
    drop(window, folder)
    assert opened == [str(folder)] and window.tabs.currentWidget() is window.data_panel


# ----------------------------------------------------------------------------- about, notify


def test_about_names_the_versions_and_where_data_is_kept(qtbot, shared) -> None:  # type: ignore[no-untyped-def]
    dialog = shared.show_about()
    with qtbot.waitSignal(dialog.task.finished, timeout=60_000):
        pass
    text = dialog.text()
    for name in ("PyTorch", "CUDA", "GPU driver", "Python", "cnn-lab", "Run database"):
        assert f"{name}:" in text
    assert shared.state.db_path in text
    dialog.copy()
    assert "PyTorch" in QApplication.clipboard().text()
    dialog.close()


def test_a_long_job_notifies_when_it_ends_and_a_short_one_does_not(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    now = [100.0]
    notifier = JobNotifier(window, min_seconds=30, clock=lambda: now[0])
    said: list[tuple[str, str]] = []
    notifier.notified.connect(lambda title, text: said.append((title, text)))
    notifier.started("run 1")
    now[0] += 5
    assert not notifier.ended("run 1", "Run 1 completed", "")
    notifier.started("run 2")
    now[0] += 31
    assert notifier.ended("run 2", "Run 2 completed", "Run 2 completed.")
    assert said == [("Run 2 completed", "Run 2 completed.")]
    assert not notifier.ended("run 3", "never started", "")


def test_a_finished_run_notifies_through_the_window(qtbot, stub_window) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    win, workers = stub_window
    win.notifier.min_seconds = 0
    run_id = train_on(win, "cpu")
    with qtbot.waitSignal(win.notifier.notified, timeout=5000) as notice:
        workers[run_id].finish()
    assert notice.args[0] == f"Run {run_id} completed"
    assert win.status_label.text().startswith(f"Run {run_id} completed")


def test_help_shows_the_tour_step_by_step(qtbot, shared) -> None:  # type: ignore[no-untyped-def]
    shared.menu_actions["Guided Tour"].trigger()
    assert shared.tour.isVisible() and shared.tabs.currentWidget() is shared.data_panel
    shared.tour.next_button.click()
    assert shared.tabs.currentWidget() is shared.architecture_panel
    for _ in range(20):
        if not shared.tour.isVisible():
            break
        shared.tour.next_button.click()
    assert not shared.tour.isVisible()
    assert shared.tabs.currentWidget() is shared.predict_panel


def test_palettes_differ(qtbot) -> None:  # type: ignore[no-untyped-def]
    apply_theme("dark")
    dark = QApplication.instance().palette().color(QPalette.ColorRole.Window)
    apply_theme("light")
    light = QApplication.instance().palette().color(QPalette.ColorRole.Window)
    assert dark.lightness() < 100 < light.lightness()
