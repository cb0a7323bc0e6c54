"""A child process's line to the window that started it: send messages, notice it going away.

Training jobs and tuners run in "spawn" children that report over a pipe. If the window's
process dies, the pipe breaks or the child is re-parented; either way nobody reads what the
child finds, so it should stop at its next check (a job then records itself as stopped).
"""

from __future__ import annotations

import logging
import os
import threading
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event as MpEvent
from typing import Any

from cnn_lab.engine.errors import UserError, internal_error

log = logging.getLogger(__name__)

BUG_HINT = "This is a bug in cnn-lab; please report it with the log."


class ParentLink:
    """``send`` to the parent while it listens; ``should_stop`` on Stop or when it is gone.

    ``send`` is safe from several threads (a job's loop, its system sampler and its store
    watch all send): a ``Connection`` is not, and a large message from one thread could
    interleave with another's on the pipe.
    """

    def __init__(self, conn: Connection, stop_event: MpEvent) -> None:
        self.conn = conn
        self.stop_event = stop_event
        self.parent = os.getppid()
        self.gone = threading.Event()
        self._sending = threading.Lock()

    def send(self, message: Any) -> None:
        if self.gone.is_set():
            return
        try:
            with self._sending:
                self.conn.send(message)
        except (BrokenPipeError, EOFError, OSError):
            self.gone.set()

    def should_stop(self) -> bool:
        if os.getppid() != self.parent:
            self.gone.set()
        return self.stop_event.is_set() or self.gone.is_set()


def report_failure(
    exc: BaseException,
    send: Callable[[tuple[Any, ...]], None],
    *,
    subject: str,
    out_of_memory: tuple[str, str] | None = None,
) -> None:
    """Send one ``("error", message, hint)`` for ``exc``: a sentence, the traceback to the log.

    A UserError is its own sentence; with ``out_of_memory`` (message, hint) a memory error
    gets that; anything else is "``subject`` stopped with an internal error: …".
    """
    if isinstance(exc, UserError):
        send(("error", exc.message, exc.hint))
        return
    if out_of_memory is not None and (
        isinstance(exc, MemoryError) or "out of memory" in str(exc).lower()
    ):
        send(("error", *out_of_memory))
        return
    if isinstance(exc, RuntimeError):  # torch is loaded already if CUDA failed
        from cnn_lab.engine.train.device_faults import device_fault

        if (fault := device_fault(exc)) is not None:
            send(("error", fault.message, fault.hint))
            return
    log.error("%s failed:\n%s", subject, traceback.format_exc())
    send(("error", internal_error(subject, exc), BUG_HINT))
