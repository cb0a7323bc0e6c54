"""Run a plain function off the GUI thread and get its result back as a signal.

For short, one-off work (generating a sample preview, reading a run's metrics) that must
not freeze the window. Training never uses this: it runs in a child process.
"""

from __future__ import annotations

import contextlib
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal


class _Relay(QObject):
    done = Signal(object)
    failed = Signal(str)


class _Task(QRunnable):
    def __init__(self, fn: Callable[[], Any], relay: _Relay) -> None:
        super().__init__()
        self.fn = fn
        self.relay = relay

    def run(self) -> None:
        try:
            result = self.fn()
        except Exception as exc:  # reported to the GUI, never raised into Qt
            self._deliver(self.relay.failed, f"{exc}\n{traceback.format_exc(limit=3)}")
        else:
            self._deliver(self.relay.done, result)

    @staticmethod
    def _deliver(signal: Any, value: Any) -> None:
        # RuntimeError: the application is shutting down and took the relay with it; nobody
        # is left to receive the result, which is not worth a traceback on exit.
        with contextlib.suppress(RuntimeError):
            signal.emit(value)


_live: set[_Relay] = set()


def run_in_background(
    fn: Callable[[], Any],
    on_done: Callable[[Any], None],
    on_error: Callable[[str], None] | None = None,
) -> None:
    """Call ``fn`` on the global thread pool; ``on_done(result)`` runs on the GUI thread."""
    relay = _Relay()
    _live.add(relay)  # keep the relay alive until it has delivered

    def finish(_: object = None) -> None:
        _live.discard(relay)

    relay.done.connect(on_done)
    relay.done.connect(finish)
    if on_error is not None:
        relay.failed.connect(on_error)
    relay.failed.connect(finish)
    QThreadPool.globalInstance().start(_Task(fn, relay))
