"""Faults in the window's process: an exception in a slot, and closing the window mid-run.

An exception in a Qt slot must reach the person as a sentence naming the log file, with the
traceback in that file, instead of vanishing into a terminal nobody watches. Closing the
window while a run trains must ask first, and on Yes stop the run cleanly, leaving no
thread or child process behind.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from PySide6.QtCore import QCoreApplication, QThread, QThreadPool, QTimer
from PySide6.QtWidgets import QApplication, QMessageBox, QPushButton

from cnn_lab.app import gui
from cnn_lab.app import main as app_main
from cnn_lab.app.bridge.job_worker import JobWorker
from cnn_lab.app.error_reporting import (
    ErrorReporter,
    log_file_path,
    uninstall_error_reporting,
)
from cnn_lab.app.main_window import MainWindow
from cnn_lab.engine.store import RunStore
from cnn_lab.engine.store import status as st
from tests.app.conftest import choose_quick_run, shown_window

TRAIN_TIMEOUT_MS = 120_000


# ------------------------------------------------------------------ exceptions in slots


@pytest.fixture
def reporter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ErrorReporter]:
    """The GUI's error reporter, installed, logging under a temporary state folder."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    each = ErrorReporter()
    each.install()
    yield each
    each.uninstall()


class Shown:
    """Stands in for the message box: records each text and on which thread it came."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.threads: list[QThread] = []

    def __call__(self, text: str) -> None:
        self.texts.append(text)
        self.threads.append(QThread.currentThread())


@pytest.mark.qt_no_exception_capture  # pytest-qt would take the exception for itself
def test_an_exception_in_a_slot_is_shown_and_logged_with_the_log_path(
    qtbot, reporter: ErrorReporter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    shown = Shown()
    monkeypatch.setattr(reporter, "show_message", shown)
    log_path = log_file_path()
    assert log_path == reporter.log_path and log_path.is_relative_to(tmp_path / "state")
    assert not log_path.exists()  # nothing is written until something goes wrong

    def broken_timer_slot() -> None:
        raise ValueError("the chart lost its axis")

    button = QPushButton("Break")
    qtbot.addWidget(button)
    button.clicked.connect(lambda: {}["missing key"])
    QTimer.singleShot(0, broken_timer_slot)
    qtbot.waitUntil(lambda: len(shown.texts) == 1)
    button.click()
    qtbot.waitUntil(lambda: len(shown.texts) == 2)

    assert shown.texts[0] == (
        f"Something went wrong: ValueError: the chart lost its axis. The details are in {log_path}."
    )
    assert shown.texts[1].startswith("Something went wrong: KeyError: 'missing key'.")
    text = log_path.read_text()
    assert "Traceback (most recent call last)" in text
    assert "in broken_timer_slot" in text and "ValueError: the chart lost its axis" in text
    assert "KeyError: 'missing key'" in text


@pytest.mark.qt_no_exception_capture
def test_an_exception_in_a_worker_thread_is_shown_on_the_gui_thread(
    qtbot, reporter: ErrorReporter, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    shown = Shown()
    monkeypatch.setattr(reporter, "show_message", shown)

    def broken_worker() -> None:
        raise RuntimeError("the sampler died")

    thread = threading.Thread(target=broken_worker, name="sampler")
    thread.start()
    thread.join()
    qtbot.waitUntil(lambda: len(shown.texts) == 1)
    assert shown.texts[0].startswith("Something went wrong: RuntimeError: the sampler died.")
    assert shown.threads[0] is QCoreApplication.instance().thread()  # widgets only there
    text = reporter.log_path.read_text()
    assert "thread sampler" in text and "in broken_worker" in text


def test_the_message_box_does_not_block_and_one_box_counts_the_rest(
    qtbot, reporter: ErrorReporter
) -> None:  # type: ignore[no-untyped-def]
    try:
        raise ZeroDivisionError("division by zero")
    except ZeroDivisionError as exc:
        info = (type(exc), exc, exc.__traceback__)

    def open_boxes() -> list[QMessageBox]:
        widgets = QApplication.topLevelWidgets()
        return [w for w in widgets if isinstance(w, QMessageBox) and w.isVisible()]

    reporter.report(info, "the window")  # returns at once: the box does not wait for OK
    reporter.report(info, "the window")  # a second box would bury the window: it is counted
    qtbot.waitUntil(lambda: len(open_boxes()) == 1)
    box = open_boxes()[0]
    assert not box.isModal()
    assert box.text() == (
        "Something went wrong: ZeroDivisionError: division by zero. "
        f"The details are in {reporter.log_path}."
    )
    assert box.informativeText() == "1 more error since; the log has every one."
    assert reporter.log_path.read_text().count("ZeroDivisionError: division by zero") == 2
    box.close()
    qtbot.waitUntil(lambda: not open_boxes())
    reporter.report(info, "the window")  # once it is closed, the next error opens a new one
    qtbot.waitUntil(lambda: len(open_boxes()) == 1)
    assert open_boxes()[0].informativeText() == ""
    open_boxes()[0].close()


def test_starting_the_window_installs_the_reporter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setattr(gui, "run_gui", lambda **options: 0)
    before = sys.excepthook, threading.excepthook
    try:
        assert app_main.main([]) == 0
        assert isinstance(getattr(sys.excepthook, "__self__", None), ErrorReporter)
        assert isinstance(getattr(threading.excepthook, "__self__", None), ErrorReporter)
        assert sys.excepthook.__self__.handler in logging.getLogger("cnn_lab").handlers  # type: ignore[attr-defined]
    finally:
        uninstall_error_reporting()
    assert (sys.excepthook, threading.excepthook) == before


# ------------------------------------------------------------------ closing during a run


@pytest.fixture
def window(qtbot, db_path: Path) -> Iterator[MainWindow]:  # type: ignore[no-untyped-def]
    yield from shown_window(qtbot, db_path)


def has_a_step(run_id: int, events: list[Any]) -> bool:
    """A batch of a run's events with a training step in it (not just system samples)."""
    return any(getattr(event, "kind", "") == "step" for event in events)


def job_children() -> list[psutil.Process]:
    """This process's job children (spawned interpreters), zombies included."""
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if "spawn_main" in " ".join(child.cmdline()):
                found.append(child)
        except psutil.Error:  # ended while we looked
            continue
    return found


def test_closing_during_a_run_asks_and_stops_it_cleanly(
    qtbot, window: MainWindow, db_path: Path
) -> None:  # type: ignore[no-untyped-def]
    choose_quick_run(window, epochs=50, limit=200)
    with qtbot.waitSignal(
        window.controller.events, timeout=TRAIN_TIMEOUT_MS, check_params_cb=has_a_step
    ):
        run_id = window.train()
    pid = window.controller.child_pid(run_id)
    workers = window.controller.findChildren(JobWorker)
    assert pid and psutil.pid_exists(pid) and len(workers) == 1 and workers[0].isRunning()

    questions: list[str] = []
    window.confirm_close = lambda question: questions.append(question) or False  # Cancel
    assert not window.close()
    assert questions == [
        f"A run is training (run {run_id} on cpu). Stop it and close? "
        "It is saved and can be resumed."
    ]
    assert window.isVisible() and window.controller.running_ids() == [run_id]
    with qtbot.waitSignal(window.controller.events, timeout=30_000, check_params_cb=has_a_step):
        pass  # it goes on training
    with RunStore.open(db_path) as store:
        assert store.get_run(run_id).status == st.RUNNING

    window.confirm_close = lambda question: questions.append(question) or True  # Yes
    assert window.close()
    assert len(questions) == 2 and not window.isVisible()
    with RunStore.open(db_path) as store:
        record = store.get_run(run_id)
        kinds = {a["kind"] for a in store.artifacts(run_id)}
    assert record.status == st.STOPPED, record.reason
    # The reason says the window's closing stopped it, and still where: at a step (and that it
    # resumes) or during a validation pass, whichever the stop landed in (both happen).
    assert record.reason is not None, record
    assert record.reason.startswith("Stopped because the cnn-lab window was closed "), record
    if "validation" not in record.reason:
        assert record.reason.startswith("Stopped because the cnn-lab window was closed at step ")
        assert record.reason.endswith("; it can be resumed."), record.reason
    assert "checkpoint.last" in kinds  # it can be resumed from where it stopped
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert job_children() == []
    assert not workers[0].isRunning()
    assert QThreadPool.globalInstance().waitForDone(10_000)
    assert QThreadPool.globalInstance().activeThreadCount() == 0
