"""Exceptions nobody caught: logged to a file a person can find, and shown to them as a sentence.

PySide6 hands an exception raised in a slot to ``sys.excepthook`` and carries on, so without
this a broken button prints a traceback to a terminal the person usually does not have and the
window looks as if nothing happened. ``ErrorReporter`` replaces the hooks (``sys.excepthook``
for the GUI thread and Qt slots, ``threading.excepthook`` for Python threads): it writes the
traceback to a rotating log under the platform's log folder and shows a non-blocking message
box saying what broke and where the details are. Reports from other threads are queued to the
GUI thread, the only one that may touch widgets.
"""

from __future__ import annotations

import logging
import sys
import threading
import traceback
from logging.handlers import RotatingFileHandler
from pathlib import Path
from types import TracebackType
from typing import IO

import platformdirs
from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtWidgets import QApplication, QMessageBox

from cnn_lab.engine.errors import UserError

log = logging.getLogger(__name__)

LOG_MAX_BYTES = 1_000_000
LOG_BACKUPS = 3
"""The log rotates at 1 MB and keeps three old files: enough history, never a full disk."""
PACKAGE_LOGGER = "cnn_lab"
"""Every cnn-lab module logs under this name, so the file gets their warnings too."""

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]


def log_file_path() -> Path:
    """Where cnn-lab's log lives (``~/.local/state/cnn-lab/log/cnn-lab.log`` on Linux)."""
    return Path(platformdirs.user_log_dir("cnn-lab", appauthor=False)) / "cnn-lab.log"


def error_sentence(exc: BaseException, log_path: Path) -> str:
    """What the person reads: what broke (one line, no traceback) and where the details are."""
    text = str(exc) if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}"
    text = (text.strip().splitlines() or [type(exc).__name__])[0].rstrip(" .:")
    return f"Something went wrong: {text}. The details are in {log_path}."


class _LogFile(RotatingFileHandler):
    """A rotating log that creates its folder on the first record, not at startup."""

    def _open(self) -> IO[str]:
        Path(self.baseFilename).parent.mkdir(parents=True, exist_ok=True)
        return super()._open()


class ErrorReporter(QObject):
    """Logs and shows every uncaught exception; ``install`` makes it the process's hook.

    One message box at a time: a slot that fails on every timer tick must not bury the
    window in boxes, so later errors while one is open are only counted in it (and logged).
    """

    _reported = Signal(str)  # emitted on any thread, delivered on the GUI thread

    def __init__(self, log_path: Path | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.log_path = log_path or log_file_path()
        self.handler = _LogFile(
            self.log_path, maxBytes=LOG_MAX_BYTES, backupCount=LOG_BACKUPS, delay=True
        )
        self.handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(threadName)s] %(message)s")
        )
        self._previous: tuple[object, object] | None = None
        self._box: QMessageBox | None = None
        self._more = 0
        self._reported.connect(self._present)

    # ------------------------------------------------------------------ hooks

    def install(self) -> None:
        """Make this the process's exception hooks and send cnn-lab's log records to the file."""
        if self._previous is None:
            self._previous = (sys.excepthook, threading.excepthook)
            logging.getLogger(PACKAGE_LOGGER).addHandler(self.handler)
        sys.excepthook = self.excepthook
        threading.excepthook = self.thread_excepthook

    def uninstall(self) -> None:
        """Put back the hooks found at ``install`` and close the log file."""
        if self._previous is None:
            return
        sys.excepthook, threading.excepthook = self._previous  # type: ignore[assignment]
        self._previous = None
        logging.getLogger(PACKAGE_LOGGER).removeHandler(self.handler)
        self.handler.close()

    def excepthook(
        self, exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None
    ) -> None:
        if issubclass(exc_type, KeyboardInterrupt):  # Ctrl-C in a terminal is not a bug
            sys.__excepthook__(exc_type, exc, tb)
            return
        self.report((exc_type, exc, tb), "the window")

    def thread_excepthook(self, args: threading.ExceptHookArgs) -> None:
        if args.exc_type is SystemExit or args.exc_value is None:
            return
        where = f"thread {args.thread.name}" if args.thread is not None else "a thread"
        self.report((args.exc_type, args.exc_value, args.exc_traceback), where)

    def report(self, exc_info: ExcInfo, where: str) -> None:
        """Log ``exc_info`` with its traceback and queue the sentence to the GUI thread."""
        log.error("An uncaught exception in %s:", where, exc_info=exc_info)
        if sys.stderr is not None:  # a terminal, if there is one, sees it too
            traceback.print_exception(*exc_info, file=sys.stderr)
        self._reported.emit(error_sentence(exc_info[1], self.log_path))

    # ------------------------------------------------------------------ showing

    def show_message(self, text: str) -> QMessageBox:
        """Open a non-blocking message box with ``text`` (tests replace this to record it)."""
        box = QMessageBox(
            QMessageBox.Icon.Critical,
            "cnn-lab: something went wrong",
            text,
            QMessageBox.StandardButton.Ok,
            QApplication.activeWindow(),
        )
        box.setModal(False)
        box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)  # copy the path
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.show()
        return box

    @Slot(str)
    def _present(self, text: str) -> None:
        if self._box is not None:
            self._more += 1
            self._box.setInformativeText(
                f"{self._more} more error{'s' if self._more > 1 else ''} since; "
                "the log has every one."
            )
            return
        try:
            box = self.show_message(text)
        except Exception:  # never report the reporter: that could go round for ever
            log.exception("The error message could not be shown: %s", text)
            return
        if isinstance(box, QMessageBox):
            self._box = box  # also keeps a parentless box alive while it shows
            box.finished.connect(self._box_closed)

    @Slot()
    def _box_closed(self) -> None:
        self._box, self._more = None, 0


_installed: ErrorReporter | None = None


def install_error_reporting(log_path: Path | None = None) -> ErrorReporter:
    """Install the process's one ErrorReporter (again: the same one) and return it."""
    global _installed
    if _installed is None:
        _installed = ErrorReporter(log_path)
    _installed.install()
    return _installed


def uninstall_error_reporting() -> None:
    """Take the process's ErrorReporter out again (tests; the window never needs to)."""
    global _installed
    if _installed is not None:
        _installed.uninstall()
        _installed = None
