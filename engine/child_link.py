"""A child process's line to the window that started it: send messages, notice it going away.

Training jobs and tuners run in "spawn" children that report over a pipe. If the window's
process dies, the pipe breaks or the child is re-parented; either way nobody reads what the
child finds, so it should stop at its next check (a job then records itself as stopped).
"""

from __future__ import annotations

import os
import threading
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event as MpEvent
from typing import Any


class ParentLink:
    """``send`` to the parent while it listens; ``should_stop`` on Stop or when it is gone."""

    def __init__(self, conn: Connection, stop_event: MpEvent) -> None:
        self.conn = conn
        self.stop_event = stop_event
        self.parent = os.getppid()
        self.gone = threading.Event()

    def send(self, message: Any) -> None:
        if self.gone.is_set():
            return
        try:
            self.conn.send(message)
        except (BrokenPipeError, EOFError, OSError):
            self.gone.set()

    def should_stop(self) -> bool:
        if os.getppid() != self.parent:
            self.gone.set()
        return self.stop_event.is_set() or self.gone.is_set()
