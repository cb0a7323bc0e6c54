"""A notification when a long job ends: a run, a sweep, a tuner.

Short jobs end while the person is still looking, so only jobs that took at least
``LONG_JOB_S`` notify. The notice goes to the desktop's notification area when there is one
(QSystemTrayIcon), and the window asks for attention (the taskbar entry flashes) in any case;
``notified`` carries the same title and message for the window's status bar and for tests.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QSystemTrayIcon, QWidget

LONG_JOB_S = 30.0
"""Jobs shorter than this end without a notification."""

SHOWN_MS = 8_000


class JobNotifier(QObject):
    notified = Signal(str, str)  # title, message

    def __init__(
        self,
        window: QWidget,
        *,
        min_seconds: float = LONG_JOB_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(window)
        self.window = window
        self.min_seconds = min_seconds
        self._clock = clock
        self._started: dict[str, float] = {}
        self._tray: QSystemTrayIcon | None = None

    def started(self, key: str) -> None:
        """A job began (``key`` names it: "run 12", "sweep lr-search", "tuner lr")."""
        self._started.setdefault(key, self._clock())

    def ended(self, key: str, title: str, message: str) -> bool:
        """The job ended; notify if it ran long enough. Returns whether it notified."""
        began = self._started.pop(key, None)
        if began is None or self._clock() - began < self.min_seconds:
            return False
        self._show(title, message)
        self.notified.emit(title, message)
        return True

    def _show(self, title: str, message: str) -> None:
        QApplication.alert(self.window)  # flashes the taskbar entry when the window is behind
        if not QSystemTrayIcon.isSystemTrayAvailable():
            return
        if self._tray is None:
            icon = self.window.windowIcon()
            self._tray = QSystemTrayIcon(icon if not icon.isNull() else QIcon(), self)
            self._tray.setToolTip("cnn-lab")
        self._tray.show()
        self._tray.showMessage(title, message, QSystemTrayIcon.MessageIcon.Information, SHOWN_MS)
