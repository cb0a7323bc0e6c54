"""Writing metric points and system samples to PostgreSQL, and keeping their roll-ups.

A job writes about a second of training at a time, thousands of points in a busy second, and
a sweep's workers write at once: each batch goes in with one binary ``COPY`` rather than an
INSERT per row, the fastest way into PostgreSQL. NaN goes in as NULL, as SQLite stores it, so
both backends give a diverged step back as NaN and leave it out of MIN and MAX.

The roll-ups (engine/store/rollups.py: each curve's extremes per 64 steps) are kept as the
SQLite store keeps them, from the same ``rollups.aggregate``; the upsert is written in
PostgreSQL's words, and its rows go in key order so two writers to one run take the same row
locks in the same order and never deadlock.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import psycopg

from cnn_lab.engine.store import rollups
from cnn_lab.engine.store.store import MetricPoint, SystemSample

_METRIC_TYPES = ["bigint", "bigint", "bigint", "text", "double precision", "double precision"]
_SAMPLE_TYPES = ["bigint", "double precision", "text", "double precision"]

_LOWER = (
    "excluded.min_value IS NOT NULL AND (r.min_value IS NULL OR excluded.min_value < r.min_value)"
)
_HIGHER = (
    "excluded.max_value IS NOT NULL AND (r.max_value IS NULL OR excluded.max_value > r.max_value)"
)


def _pick(condition: str, column: str) -> str:
    return f"{column} = CASE WHEN {condition} THEN excluded.{column} ELSE r.{column} END"


# Every right-hand side reads the row as it was before the update, so the CASEs agree.
UPSERT_SQL = f"""
INSERT INTO metric_rollups AS r (run_id, key, bucket, points, first_step, last_step,
    min_step, min_epoch, min_value, min_time, max_step, max_epoch, max_value, max_time)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (run_id, key, bucket) DO UPDATE SET
    points = r.points + excluded.points,
    first_step = LEAST(r.first_step, excluded.first_step),
    last_step = GREATEST(r.last_step, excluded.last_step),
    {", ".join(_pick(_LOWER, c) for c in ("min_step", "min_epoch", "min_time", "min_value"))},
    {", ".join(_pick(_HIGHER, c) for c in ("max_step", "max_epoch", "max_time", "max_value"))}
"""


def _finite_or_none(value: float) -> float | None:
    number = float(value)
    return None if math.isnan(number) else number


def insert_metrics(cur: psycopg.Cursor[Any], points: Iterable[MetricPoint]) -> int:
    """COPY the points in and fold them into their roll-ups; how many there were."""
    rows = [
        (int(p.run_id), int(p.step), int(p.epoch), str(p.key), _finite_or_none(p.value),
         float(p.time))
        for p in points
    ]  # fmt: skip
    if not rows:
        return 0
    with cur.copy(
        "COPY metrics (run_id, step, epoch, key, value, time) FROM STDIN (FORMAT BINARY)"
    ) as copy:
        copy.set_types(_METRIC_TYPES)
        for row in rows:
            copy.write_row(row)
    add_rollups(cur, rows)
    return len(rows)


def insert_samples(cur: psycopg.Cursor[Any], samples: Iterable[SystemSample]) -> None:
    """COPY system samples in (NaN as NULL)."""
    rows = [(int(s.run_id), float(s.time), str(s.key), _finite_or_none(s.value)) for s in samples]
    if not rows:
        return
    with cur.copy(
        "COPY system_samples (run_id, time, key, value) FROM STDIN (FORMAT BINARY)"
    ) as copy:
        copy.set_types(_SAMPLE_TYPES)
        for row in rows:
            copy.write_row(row)


def add_rollups(cur: psycopg.Cursor[Any], rows: Iterable[rollups.Row]) -> None:
    """Merge points into their buckets' roll-ups, in (run, key, bucket) order."""
    buckets = sorted(rollups.aggregate(rows), key=lambda b: (b[0], b[1], b[2]))  # type: ignore[arg-type,return-value]
    if buckets:
        cur.executemany(UPSERT_SQL, buckets)


def rebuild_rollups(cur: psycopg.Cursor[Any], run_id: int, from_step: int) -> None:
    """Recompute the run's roll-ups from ``from_step``'s bucket on (a resume cut them)."""
    first_bucket = from_step // rollups.ROLLUP_STEPS
    cur.execute(
        "DELETE FROM metric_rollups WHERE run_id = %s AND bucket >= %s", [run_id, first_bucket]
    )
    cur.execute(
        "SELECT run_id, step, epoch, key, value, time FROM metrics "
        "WHERE run_id = %s AND step >= %s",
        [run_id, first_bucket * rollups.ROLLUP_STEPS],
    )
    add_rollups(cur, cur.fetchall())


__all__ = ["UPSERT_SQL", "add_rollups", "insert_metrics", "insert_samples", "rebuild_rollups"]
