"""``PgRunStore``'s side of a whole-store copy (engine/store/transfer.py): a table's rows in
the canonical order, and another store's rows written verbatim, ids included."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import Any

import psycopg
from psycopg import sql

from cnn_lab.engine.store import tables
from cnn_lab.engine.store.postgres import points
from cnn_lab.engine.store.postgres.base import Connected, guarded
from cnn_lab.engine.store.postgres.connect import store_error
from cnn_lab.engine.store.store import MetricPoint, SystemSample, _chunks

_SERIAL = ("experiments", "runs", "artifacts")
"""Tables whose ids come from a sequence, which must continue after the copied ids."""


def _nan(value: Any) -> float:
    return math.nan if value is None else float(value)


class CopyMethods(Connected):
    """dump_rows and load_rows over every table in ``tables.TABLES``."""

    def dump_rows(self, table: str, batch: int = 5000) -> Iterator[tuple[Any, ...]]:
        """Every row of ``table`` in the canonical order (ties in the order written), read
        through a server-side cursor ``batch`` rows at a time, in one read transaction (a
        copy reads a consistent table; paging by OFFSET would rescan a million points)."""
        columns = tables.TABLES[table]
        order = [*tables.ORDER[table], *(["id"] if table in ("metrics", "system_samples") else [])]
        query = sql.SQL("SELECT {} FROM {} ORDER BY {}").format(
            sql.SQL(", ").join(map(sql.Identifier, columns)),
            sql.Identifier(table),
            sql.SQL(", ").join(map(sql.Identifier, order)),
        )
        try:
            with self._conn.transaction(), self._conn.cursor(name=f"dump_{table}") as cur:
                cur.itersize = batch
                cur.execute(query)
                for row in cur:
                    yield tuple(row)
        except psycopg.Error as exc:
            raise store_error(exc, self._where) from exc

    @guarded
    def load_rows(self, table: str, rows: Iterable[tuple[Any, ...]]) -> int:
        """Write another store's rows verbatim (points by COPY, with their roll-ups); then
        move the table's id sequence past the largest id, so new rows never collide."""
        columns = tables.TABLES[table]
        archived = columns.index("archived") if "archived" in columns else None
        insert = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
            sql.Identifier(table),
            sql.SQL(", ").join(map(sql.Identifier, columns)),
            sql.SQL(", ").join(sql.Placeholder() * len(columns)),
        )
        count = 0
        for chunk in _chunks(rows, 5000):
            with self._tx() as cur:
                if table == "metrics":
                    points.insert_metrics(
                        cur, (MetricPoint(r[0], r[1], r[2], r[3], _nan(r[4]), r[5]) for r in chunk)
                    )
                elif table == "system_samples":
                    points.insert_samples(
                        cur, (SystemSample(r[0], r[1], r[2], _nan(r[3])) for r in chunk)
                    )
                else:
                    if archived is not None:  # SQLite's 0/1 flag is PostgreSQL's boolean
                        chunk = [
                            (*r[:archived], bool(r[archived]), *r[archived + 1 :]) for r in chunk
                        ]
                    cur.executemany(insert, chunk)
            count += len(chunk)
        if table in _SERIAL:
            with self._tx() as cur:
                cur.execute(
                    sql.SQL(
                        "SELECT setval(pg_get_serial_sequence({}, 'id'), "
                        "COALESCE((SELECT MAX(id) FROM {}), 0) + 1, false)"
                    ).format(sql.Literal(table), sql.Identifier(table))
                )
        return count


__all__ = ["CopyMethods"]
