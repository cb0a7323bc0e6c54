"""The installed PySide6 keeps Python's reference counts straight.

PySide6 6.12.0 on Python 3.11 dropped a reference to None on every void Qt call and one to
True on every signal emit; after minutes of live training the interpreter aborted with
"none_dealloc". pyproject.toml excludes that release; this test catches a build that
brings the bug back.
"""

from __future__ import annotations

import sys

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QLabel


class _Emitter(QObject):
    fired = Signal(bool)


def test_qt_calls_and_signals_do_not_leak_references_to_none_or_true(qtbot) -> None:  # type: ignore[no-untyped-def]
    label = QLabel()
    qtbot.addWidget(label)
    emitter = _Emitter()
    received: list[bool] = []
    emitter.fired.connect(received.append)
    none_before, true_before = sys.getrefcount(None), sys.getrefcount(True)
    for _ in range(2000):
        label.setText("x")
        label.setEnabled(True)
        emitter.fired.emit(True)
    received.clear()
    assert abs(sys.getrefcount(None) - none_before) < 100
    assert abs(sys.getrefcount(True) - true_before) < 100
