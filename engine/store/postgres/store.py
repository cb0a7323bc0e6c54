"""``PgRunStore``: the run store in a lab's PostgreSQL database (``RunRepository``).

Every machine of a lab writes its runs to one database, and the window on the desk reads
them all. The behaviour is the SQLite store's (the contract suite, tests/store/test_contract.py,
runs on both); what differs is how it is achieved:

- one connection per store object, belonging to the thread that opened it, with autocommit
  off and one short transaction per method (reads too, so no transaction is left open
  between calls to hold back the server's vacuum);
- every time the store writes (creation, start, heartbeat, end) is the server's clock
  (lease.py), so machines with skewed clocks agree on how old a heartbeat is;
- artifacts are recorded relative to an artifact root (a shared folder), given when opening,
  instead of the database's folder; ``path`` is a small marker file in that root, so
  ``path.parent`` is the root and a run's files live in ``<root>/<database>-files/run-<id>``
  as they live beside a SQLite file;
- a summary is stored with NaN and infinities as null (JSON proper, which PostgreSQL's jsonb
  reads), where SQLite keeps a NaN;
- every ``psycopg.Error`` leaves as a ``StoreError`` with a sentence (connect.py), and a
  server that restarted or a connection that dropped costs at most the call it dropped in:
  the next call connects again (base.py), so a long-lived store (the window's, a job's
  writer) outlives the server's restarts.

This module opens and closes the store; its methods live in files named for what they touch
(runs.py, metrics.py, files.py), each a class over base.py's connection, joined here.
"""

from __future__ import annotations

import os
from pathlib import Path

from cnn_lab.engine.errors import StoreError
from cnn_lab.engine.store.postgres import schema
from cnn_lab.engine.store.postgres.base import guarded
from cnn_lab.engine.store.postgres.connect import connect
from cnn_lab.engine.store.postgres.copy_rows import CopyMethods
from cnn_lab.engine.store.postgres.files import FileMethods
from cnn_lab.engine.store.postgres.metrics import MetricMethods
from cnn_lab.engine.store.postgres.runs import RunMethods

_MARKER = (
    "This folder is the artifact root of a cnn-lab run store kept in PostgreSQL ({where}).\n"
    "Each run's files live in {stem}-files/run-<id>/; the database records them relative "
    "to this folder.\n"
)


class PgRunStore(RunMethods, MetricMethods, FileMethods, CopyMethods):
    """One connection to a PostgreSQL run store. Open it with :meth:`PgRunStore.open`."""

    # ----------------------------------------------------------------- opening and closing

    @classmethod
    def open(
        cls,
        url: str,
        *,
        artifact_root: str | os.PathLike[str],
        stale_after_s: float = 30.0,
        sweep: bool = True,
    ) -> PgRunStore:
        """Connect to ``url``, create or migrate the schema, and sweep stale runs.

        Raises ``StoreError`` with a sentence when the address cannot be read, the server
        cannot be reached or refuses the user, the database belongs to another application
        (nothing in it is changed), or it was written by a newer cnn-lab.
        """
        root = Path(os.path.abspath(Path(artifact_root).expanduser()))
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"The artifact folder {root} could not be created ({exc}).") from exc
        conn, where = connect(url)
        store = cls(conn, where, root, stale_after_s=stale_after_s, url=url)
        try:
            store._prepare()
            store._mark_root()
            if sweep:
                store.sweep_stale()
        except BaseException:
            store.close()
            raise
        return store

    @guarded
    def _prepare(self) -> None:
        schema.prepare(self._conn, self._where)

    def _mark_root(self) -> None:
        """Write the marker file ``path`` names (once), saying what the folder is for."""
        text = _MARKER.format(where=self._where, stem=self._path.stem)
        try:
            with self._path.open("x", encoding="utf-8") as marker:
                marker.write(text)
        except FileExistsError:
            pass
        except OSError as exc:
            raise StoreError(
                f"The artifact folder {self._root} cannot be written ({exc}).",
                "Check the folder's rights, or give another artifact folder.",
            ) from exc

    @property
    def path(self) -> Path:
        """A marker file in the artifact root: its parent is the root, and run files live in
        ``<root>/<stem>-files/`` as they do beside a SQLite store."""
        return self._path

    @property
    def location(self) -> str:
        """The address it was opened with (its password included: a sweep's study connects
        with it), as ``open_store`` takes it."""
        return self._url

    def close(self) -> None:
        """Close the connection. Safe to call twice."""
        if not self._closed:
            self._closed = True
            self._conn.close()

    def __enter__(self) -> PgRunStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @guarded
    def integrity_ok(self) -> bool:
        """Whether every table of the schema is there at the version this cnn-lab writes
        (the server keeps its own pages consistent; there is no file to check)."""
        tables = (
            "runs", "run_tags", "metrics", "system_samples", "artifacts", "experiments",
            "metric_rollups", "migrations",
        )  # fmt: skip
        with self._tx() as cur:
            cur.execute("SELECT to_regclass(name) IS NOT NULL FROM unnest(%s::text[]) AS name",
                        [list(tables)])  # fmt: skip
            present = all(row[0] for row in cur.fetchall())
            cur.execute("SELECT MAX(version) FROM migrations")
            row = cur.fetchone()
        return present and row is not None and row[0] == schema.SCHEMA_VERSION


__all__ = ["PgRunStore"]
