"""``PgRunStore``'s artifacts (recorded relative to the artifact root) and experiments
(sweeps and groups, found or created once across every machine of a lab).
"""

from __future__ import annotations

import os
from typing import Any

import psycopg
from psycopg.rows import dict_row

from cnn_lab.engine.store import artifact_paths
from cnn_lab.engine.store.postgres import schema
from cnn_lab.engine.store.postgres.base import Connected, guarded
from cnn_lab.engine.store.postgres.schema import SERVER_NOW

_EXPERIMENT_LOCK = schema.SCHEMA_LOCK + 1
"""Advisory lock namespace for ``find_or_create_experiment`` (keyed by kind and name)."""


class FileMethods(Connected):
    """The artifacts and experiments tables."""

    # ----------------------------------------------------------- artifacts and experiments

    @guarded
    def add_artifact(
        self, run_id: int, *, path: str | os.PathLike[str], kind: str, sha256: str, bytes: int
    ) -> int:
        """Record a file a run produced, relative to the artifact root when inside it."""
        with self._tx() as cur:
            return self._insert_artifact(cur, run_id, path, kind, sha256, bytes)

    @guarded
    def set_artifact(
        self, run_id: int, *, path: str | os.PathLike[str], kind: str, sha256: str, bytes: int
    ) -> int:
        """Record the run's one file of ``kind``, replacing an earlier one."""
        with self._tx() as cur:
            cur.execute("DELETE FROM artifacts WHERE run_id = %s AND kind = %s", [run_id, kind])
            return self._insert_artifact(cur, run_id, path, kind, sha256, bytes)

    def _insert_artifact(
        self,
        cur: psycopg.Cursor[Any],
        run_id: int,
        path: str | os.PathLike[str],
        kind: str,
        sha256: str,
        size: int,
    ) -> int:
        cur.execute(
            "INSERT INTO artifacts (run_id, path, kind, sha256, bytes, created_at) "
            f"VALUES (%s, %s, %s, %s, %s, {SERVER_NOW}) RETURNING id",
            [run_id, artifact_paths.to_stored(path, self._root), kind, sha256, int(size)],
        )
        return int(cur.fetchone()[0])  # type: ignore[index]

    @guarded
    def artifacts(self, run_id: int) -> list[dict[str, Any]]:
        """The run's artifacts, oldest first, as plain dicts with absolute paths."""
        with self._tx(), self._conn.cursor(row_factory=dict_row) as cur:
            cur.execute(
                "SELECT id, run_id, path, kind, sha256, bytes, created_at FROM artifacts "
                "WHERE run_id = %s ORDER BY created_at, id",
                [run_id],
            )
            rows = cur.fetchall()
        return [
            {**row, "path": artifact_paths.to_absolute(row["path"], self._root)} for row in rows
        ]

    @guarded
    def has_artifact(self, run_id: int, kind: str) -> bool:
        """Whether the run recorded a file of this kind."""
        with self._tx() as cur:
            cur.execute(
                "SELECT 1 FROM artifacts WHERE run_id = %s AND kind = %s LIMIT 1", [run_id, kind]
            )
            return cur.fetchone() is not None

    @guarded
    def find_or_create_experiment(self, name: str, *, kind: str, spec_json: str = "") -> int:
        """The oldest experiment of ``kind`` called ``name`` (its spec refreshed to
        ``spec_json`` when given), created if there is none.

        An advisory lock on (kind, name) makes the look and the insert one step, so a sweep's
        workers on several machines end up with one experiment.
        """
        with self._tx() as cur:
            cur.execute(
                "SELECT pg_advisory_xact_lock(%s, hashtext(%s))",
                [_EXPERIMENT_LOCK, f"{kind}\x1f{name}"],
            )
            cur.execute(
                "SELECT id, spec_json FROM experiments WHERE kind = %s AND name = %s "
                "ORDER BY id LIMIT 1",
                [kind, name],
            )
            row = cur.fetchone()
            if row is not None:
                if spec_json and row[1] != spec_json:
                    cur.execute(
                        "UPDATE experiments SET spec_json = %s WHERE id = %s", [spec_json, row[0]]
                    )
                return int(row[0])
            cur.execute(
                "INSERT INTO experiments (name, kind, spec_json, created_at) "
                f"VALUES (%s, %s, %s, {SERVER_NOW}) RETURNING id",
                [name, kind, spec_json],
            )
            return int(cur.fetchone()[0])  # type: ignore[index]

    _EXPERIMENT_SELECT = "SELECT id, name, kind, created_at, spec_json FROM experiments"

    @guarded
    def experiments(self, kind: str) -> list[dict[str, Any]]:
        """The experiments of ``kind`` (id, name, kind, created_at, spec_json), newest first."""
        with self._tx(), self._conn.cursor(row_factory=dict_row) as cur:
            cur.execute(f"{self._EXPERIMENT_SELECT} WHERE kind = %s ORDER BY id DESC", [kind])
            return [dict(row) for row in cur.fetchall()]

    @guarded
    def experiment(self, experiment_id: int, kind: str) -> dict[str, Any] | None:
        """One experiment of ``kind`` by id (as ``experiments`` gives it); None if none."""
        with self._tx(), self._conn.cursor(row_factory=dict_row) as cur:
            cur.execute(
                f"{self._EXPERIMENT_SELECT} WHERE id = %s AND kind = %s", [experiment_id, kind]
            )
            row = cur.fetchone()
        return None if row is None else dict(row)

    @guarded
    def experiment_runs(self, experiment_id: int) -> list[int]:
        """The ids of an experiment's runs, oldest first."""
        with self._tx() as cur:
            cur.execute("SELECT id FROM runs WHERE experiment_id = %s ORDER BY id", [experiment_id])
            return [int(row[0]) for row in cur.fetchall()]
