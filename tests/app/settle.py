"""Waiting for the window's store link: panels read and write the run store off the GUI
thread (app/store_link.py), so a test waits for the answers before it looks."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from cnn_lab.app.state import AppState
from cnn_lab.engine.store import RunStore

SETTLE_MS = 15_000
"""Generous: on a loaded 2-core machine a first read also opens the store."""


def settle(qtbot: Any, holder: Any, timeout: int = SETTLE_MS) -> None:
    """Wait until ``holder``'s store link (an AppState, or a panel or window holding one as
    ``state``) has answered every call, including those its answers made."""
    state = holder if isinstance(holder, AppState) else holder.state
    qtbot.waitUntil(state.store.idle, timeout=timeout)


def record_store_opens(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """From now on, the name of the thread that opens each SQLite store, in order."""
    opened: list[str] = []
    real_open = RunStore.open.__func__  # type: ignore[attr-defined]

    def recording(cls: Any, *args: Any, **kwargs: Any) -> RunStore:
        opened.append(threading.current_thread().name)
        return real_open(cls, *args, **kwargs)

    monkeypatch.setattr(RunStore, "open", classmethod(recording))
    return opened
