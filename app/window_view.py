"""The window's View and Help menus' targets and what it keeps between launches: the panel in
front, themes, full screen, Reset Layout, the shortcuts list, About, and the size and place
that fit the screen. A mixin of MainWindow, kept apart so main_window.py stays about the
panels and how they are wired; it uses the window's ``state``, ``settings``, ``panels``,
``tabs``, ``runs_panel``, ``jobs_dock`` and ``theme_group``.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QMessageBox

from cnn_lab.app.about_dialog import AboutDialog
from cnn_lab.app.models.window_status import fit_corner, fit_size
from cnn_lab.app.settings import GEOMETRY_KEY, PANEL_KEY, WINDOW_STATE_KEY
from cnn_lab.app.theme import SYSTEM, apply_theme
from cnn_lab.app.window_jobs import JOBS_DOCK_HEIGHT
from cnn_lab.app.window_menus import shortcut_rows

FRAME_ALLOWANCE = 32
"""Pixels kept for a title bar when the window's frame is not known yet."""
PREFERRED_SIZE = (1280, 800)
"""The size a first launch asks for; fit_to_screen keeps it inside the screen."""


class WindowView:
    """Panels in front, theme, full screen, layout, shortcuts, About, and the settings."""

    state: Any
    settings: Any
    panels: dict[str, Any]
    tabs: Any
    runs_panel: Any
    jobs_dock: Any
    theme_group: Any
    theme: str
    keep_settings: bool

    def show_panel(self, key: str) -> None:
        """Bring panel ``key`` (a key of ``panels``) to the front."""
        panel = self.panels.get(key)
        if panel is not None:
            self.tabs.setCurrentWidget(panel)

    def current_panel_key(self) -> str:
        current = self.tabs.currentWidget()
        return next((k for k, p in self.panels.items() if p is current), "data")

    def set_theme(self, name: str) -> None:
        """Light, dark or the desktop's; kept for the next launch."""
        self.theme = apply_theme(name)
        self.settings.theme = self.theme
        self._check_theme_action()

    def _check_theme_action(self) -> None:
        if self.theme_group is not None:
            for action in self.theme_group.actions():
                action.setChecked(action.data() == self.theme)

    def toggle_full_screen(self) -> None:
        self.setWindowState(self.windowState() ^ Qt.WindowState.WindowFullScreen)

    def reset_layout(self) -> None:
        self.jobs_dock.setFloating(False)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.jobs_dock)
        self.jobs_dock.setVisible(True)
        self.resizeDocks([self.jobs_dock], [JOBS_DOCK_HEIGHT], Qt.Orientation.Vertical)
        self._restored_size = False
        self.fit_to_screen()

    def find_runs(self) -> None:
        self.show_panel("runs")
        self.runs_panel.search.setFocus()
        self.runs_panel.search.selectAll()

    def show_shortcuts(self) -> None:
        rows = "".join(f"<tr><td>{what}</td><td><b>{keys}</b></td></tr>" for what, keys in
                       shortcut_rows(self))  # fmt: skip
        box = QMessageBox(self)
        box.setWindowTitle("Keyboard shortcuts")
        box.setText(f"<table cellspacing=4>{rows}</table>")
        box.setModal(False)
        box.show()

    def show_about(self) -> AboutDialog:
        dialog = AboutDialog(self.state.db_path, str(self.settings.path), self)
        dialog.setModal(False)
        dialog.show()
        return dialog

    # ----------------------------------------------------------------- settings

    def restore_settings(self) -> None:
        """Window size and place, the Jobs dock, the panel in front and the theme, as last left."""
        geometry = self.settings.bytes(GEOMETRY_KEY)
        self._restored_size = geometry is not None and self.restoreGeometry(geometry)
        state = self.settings.bytes(WINDOW_STATE_KEY)
        if state is not None:
            self.restoreState(state)
        self.show_panel(self.settings.text(PANEL_KEY, "data"))
        theme = self.settings.theme
        if theme != SYSTEM:  # the desktop's look needs nothing done
            self.theme = apply_theme(theme)
        self._check_theme_action()

    def fit_to_screen(self) -> None:
        """Open at the size last left (else PREFERRED_SIZE), never larger than the screen's
        available area (a 1366 x 768 laptop keeps its status bar), and placed inside it."""
        screen = self.screen() or QGuiApplication.primaryScreen()
        if screen is None:
            return
        area = screen.availableGeometry().getRect()
        frame = self.frameGeometry().size() - self.geometry().size()
        if not self.isVisible() or frame.height() <= 0:
            frame = QSize(0, FRAME_ALLOWANCE)  # the title bar is unknown until shown
        wanted = self.size() if self._restored_size else QSize(*PREFERRED_SIZE)
        self.resize(*fit_size(
            (wanted.width(), wanted.height()), self.minimumSizeHint().width(), area,
            (frame.width(), frame.height()),
        ))  # fmt: skip
        place = self.frameGeometry()
        corner = fit_corner(place.getRect(), area)
        if corner != (place.left(), place.top()):
            self.move(*corner)

    def save_settings(self) -> None:
        if not self.keep_settings:
            return
        self.settings.set_bytes(GEOMETRY_KEY, self.saveGeometry())
        self.settings.set_bytes(WINDOW_STATE_KEY, self.saveState())
        self.settings.set_text(PANEL_KEY, self.current_panel_key())
        self.settings.theme = self.theme
        self.settings.remember_database(self.state.db_path)
        self.settings.sync()
