"""What every part of ``PgRunStore`` stands on: one connection, one transaction per call,
and psycopg's errors turned into sentences.

``PgRunStore``'s methods are grouped by what they touch (runs.py: the runs themselves;
metrics.py: points and samples; files.py: artifacts and experiments) and joined in store.py.
Each group is a class over ``Connected``, which holds the connection (it belongs to the
thread that opened it, like the SQLite store's) and opens the short transaction each method
runs in: reads too, so no transaction stays open between calls to hold back the server's
vacuum or see an old snapshot.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import psycopg

from cnn_lab.engine.errors import RunNotFound
from cnn_lab.engine.store.postgres.connect import Target, store_error

_T = TypeVar("_T")


def guarded(method: Callable[..., _T]) -> Callable[..., _T]:
    """Let no raw psycopg error out of a public method: callers handle only StoreError."""

    @functools.wraps(method)
    def wrapper(self: Connected, *args: Any, **kwargs: Any) -> _T:
        try:
            return method(self, *args, **kwargs)
        except psycopg.Error as exc:
            raise store_error(exc, self._where) from exc

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
    ) -> None:
        self._conn = conn
        self._where = where
        self._root = artifact_root
        self._path = artifact_root / f"{where.dbname}.postgres"
        self._stale_after_s = stale_after_s
        self._closed = False

    @contextlib.contextmanager
    def _tx(self) -> Iterator[psycopg.Cursor[Any]]:
        """One transaction (committed at the end, rolled back on any error) and its cursor."""
        with self._conn.transaction(), self._conn.cursor() as cur:
            yield cur

    def _not_found(self, run_id: int) -> RunNotFound:
        return RunNotFound(f"There is no run {run_id} in the {self._where}.")


__all__ = ["Connected", "guarded"]
