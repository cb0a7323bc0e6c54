"""What every part of ``PgRunStore`` stands on: one connection, one transaction per call,
and psycopg's errors turned into sentences.

``PgRunStore``'s methods are grouped by what they touch (runs.py: the runs themselves;
metrics.py: points and samples; files.py: artifacts and experiments) and joined in store.py.
Each group is a class over ``Connected``, which holds the connection (it belongs to the
thread that opened it, like the SQLite store's) and opens the short transaction each method
runs in: reads too, so no transaction stays open between calls to hold back the server's
vacuum or see an old snapshot.

A connection outlives its server's restarts. Before each transaction an idle connection is
looked at (one ``select`` of its socket, no round trip): the server sends an idle session
nothing unless it is ending it, so a socket with something to read is drained, and one that
turns out closed, or a connection that broke during an earlier call, is replaced by a fresh
one to the same address with the same settings (connect.py; the schema is not prepared again,
the store that opened it did that). One try per call, never a loop: a server still down fails
the call with ``ServerGone`` at once, and whoever calls (the batched writer's tick, the
window's next refresh) decides when to try again. A connection that drops in the middle of
a call fails that call, since what the server did with it is unknown; the next call connects
afresh.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import select
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import psycopg

from cnn_lab.engine.errors import RunNotFound
from cnn_lab.engine.store.postgres.connect import Target, connect, store_error

_T = TypeVar("_T")
_log = logging.getLogger(__name__)


def guarded(method: Callable[..., _T]) -> Callable[..., _T]:
    """Let no raw psycopg error out of a public method: callers handle only StoreError."""

    @functools.wraps(method)
    def wrapper(self: Connected, *args: Any, **kwargs: Any) -> _T:
        try:
            return method(self, *args, **kwargs)
        except psycopg.Error as exc:
            raise store_error(exc, self._where, lost=self._conn.broken) from exc

    return wrapper


class Connected:
    """A store's connection, the database it names, and its artifact root."""

    def __init__(
        self,
        conn: psycopg.Connection[Any],
        where: Target,
        artifact_root: Path,
        *,
        stale_after_s: float,
        url: str = "",
    ) -> None:
        self._conn = conn
        self._url = url  # what a lost connection is opened again with ("": it is not)
        self._where = where
        self._root = artifact_root
        self._path = artifact_root / f"{where.dbname}.postgres"
        self._stale_after_s = stale_after_s
        self._closed = False

    @contextlib.contextmanager
    def _tx(self) -> Iterator[psycopg.Cursor[Any]]:
        """One transaction (committed at the end, rolled back on any error) and its cursor,
        on a live connection (see the module's docstring)."""
        self._live()
        with self._conn.transaction(), self._conn.cursor() as cur:
            yield cur

    def _live(self) -> None:
        """Replace a connection that broke, or that the server closed while it sat idle.

        Raises ``ServerGone`` (connect.py) when the server cannot be reached right now; the
        store keeps its broken connection and tries again on the next call.
        """
        conn = self._conn
        if self._closed or not self._url:
            return
        if not conn.closed and conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
            _drain(conn)
        if not conn.closed:
            return
        fresh, _ = connect(self._url)
        with contextlib.suppress(psycopg.Error):
            conn.close()
        self._conn = fresh
        _log.info("Connected again to the run store in %s.", self._where)

    def _not_found(self, run_id: int) -> RunNotFound:
        return RunNotFound(f"There is no run {run_id} in the {self._where}.")


GOODBYE_WAIT_MS = 200
"""After an idle connection was sent something (a server ending the session sends its reason,
then closes), how long to wait for the end of the stream to follow: it comes at once when
the backend exits, but not always within the same instant as the reason."""


def _drain(conn: psycopg.Connection[Any]) -> None:
    """Read whatever an idle connection was sent. Only a server ending the session (its
    goodbye, then the end of the stream) or TLS housekeeping is ever there; reading the end
    marks the connection closed. Blocks only when something has arrived, and then at most
    ``GOODBYE_WAIT_MS`` for the end that follows a goodbye."""
    wait_ms = 0
    for _ in range(4):  # a goodbye and the end of the stream may take two reads
        try:
            if not _readable(conn.fileno(), wait_ms):
                return
        except (OSError, ValueError, psycopg.Error):
            return
        try:
            conn.pgconn.consume_input()
        except psycopg.Error:
            return  # libpq saw the end: the connection now reads as closed
        wait_ms = GOODBYE_WAIT_MS


def _readable(fd: int, wait_ms: int = 0) -> bool:
    """Whether ``fd`` has something to read (or its end) within ``wait_ms``; poll where there
    is one, since select refuses descriptors past 1024 and a training process opens many."""
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        return bool(poller.poll(wait_ms))
    return bool(select.select([fd], [], [], wait_ms / 1000)[0])


__all__ = ["Connected", "guarded"]
