"""Metric roll-ups: each run's curves pre-reduced to the extremes of every 64 steps.

A chart of a long run needs a few thousand points, and finding them in a million rows with
a GROUP BY reads every row (about half a second on a laptop core, more on a busy one).
So the store keeps, beside the raw points, one row per ``ROLLUP_STEPS`` steps of each
metric: how many points fell in it and the lowest and highest of them (with their step,
epoch and time). Writing costs one upsert per bucket per batch (a batch is a second of
training); reading a million-point curve then reads about 16,000 roll-up rows
(``curves.downsampled``).

Roll-ups are derived data: ``rebuild`` recomputes them from the points, which the schema
migration does for stores written before they existed and ``truncate_metrics`` does for the
bucket a resume cuts through.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass

ROLLUP_STEPS = 64
"""Steps per roll-up bucket: a million-step curve is 15,625 roll-up rows."""

CREATE_SQL = """
CREATE TABLE metric_rollups (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    bucket INTEGER NOT NULL,
    points INTEGER NOT NULL,
    first_step INTEGER NOT NULL,
    last_step INTEGER NOT NULL,
    min_step INTEGER, min_epoch INTEGER, min_value REAL, min_time REAL,
    max_step INTEGER, max_epoch INTEGER, max_value REAL, max_time REAL,
    PRIMARY KEY (run_id, key, bucket)
) WITHOUT ROWID
"""

_LOWER = "excluded.min_value IS NOT NULL AND (min_value IS NULL OR excluded.min_value < min_value)"
_HIGHER = "excluded.max_value IS NOT NULL AND (max_value IS NULL OR excluded.max_value > max_value)"

# Every right-hand side reads the row as it was before the update, so the CASEs agree.
UPSERT_SQL = f"""
INSERT INTO metric_rollups (run_id, key, bucket, points, first_step, last_step,
    min_step, min_epoch, min_value, min_time, max_step, max_epoch, max_value, max_time)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (run_id, key, bucket) DO UPDATE SET
    points = points + excluded.points,
    first_step = MIN(first_step, excluded.first_step),
    last_step = MAX(last_step, excluded.last_step),
    min_step = CASE WHEN {_LOWER} THEN excluded.min_step ELSE min_step END,
    min_epoch = CASE WHEN {_LOWER} THEN excluded.min_epoch ELSE min_epoch END,
    min_time = CASE WHEN {_LOWER} THEN excluded.min_time ELSE min_time END,
    min_value = CASE WHEN {_LOWER} THEN excluded.min_value ELSE min_value END,
    max_step = CASE WHEN {_HIGHER} THEN excluded.max_step ELSE max_step END,
    max_epoch = CASE WHEN {_HIGHER} THEN excluded.max_epoch ELSE max_epoch END,
    max_time = CASE WHEN {_HIGHER} THEN excluded.max_time ELSE max_time END,
    max_value = CASE WHEN {_HIGHER} THEN excluded.max_value ELSE max_value END
"""

Row = tuple[int, int, int, str, float | None, float]
"""(run_id, step, epoch, key, value, time) as the metrics table holds a point."""


@dataclass
class _Bucket:
    points: int
    first_step: int
    last_step: int
    low: tuple[int, int, float, float] | None = None  # step, epoch, value, time
    high: tuple[int, int, float, float] | None = None

    def add(self, step: int, epoch: int, value: float | None, time: float) -> None:
        self.points += 1
        self.first_step = min(self.first_step, step)
        self.last_step = max(self.last_step, step)
        if value is None or math.isnan(value):
            return  # a diverged step counts as a point but is neither extreme
        if self.low is None or value < self.low[2]:
            self.low = (step, epoch, value, time)
        if self.high is None or value > self.high[2]:
            self.high = (step, epoch, value, time)


def aggregate(rows: Iterable[Row]) -> list[tuple[object, ...]]:
    """One UPSERT_SQL parameter tuple per (run, key, bucket) the rows touch."""
    buckets: dict[tuple[int, str, int], _Bucket] = {}
    for run_id, step, epoch, key, value, time in rows:
        slot = (run_id, key, step // ROLLUP_STEPS)
        bucket = buckets.get(slot)
        if bucket is None:
            bucket = buckets[slot] = _Bucket(0, step, step)
        bucket.add(step, epoch, value, time)
    none = (None, None, None, None)
    return [
        (
            run_id,
            key,
            index,
            b.points,
            b.first_step,
            b.last_step,
            *(b.low or none),
            *(b.high or none),
        )
        for (run_id, key, index), b in buckets.items()
    ]


def add(conn: sqlite3.Connection, rows: Iterable[Row]) -> None:
    """Fold freshly inserted points into their buckets (inside the caller's transaction)."""
    conn.executemany(UPSERT_SQL, aggregate(rows))


def rebuild(conn: sqlite3.Connection, run_id: int | None = None, from_step: int = 0) -> None:
    """Recompute the roll-ups of ``run_id`` (every run when None) from ``from_step``'s bucket on."""
    first_bucket = from_step // ROLLUP_STEPS
    where, params = "WHERE bucket >= ?", [first_bucket]
    if run_id is not None:
        where, params = where + " AND run_id = ?", [first_bucket, run_id]
    conn.execute(f"DELETE FROM metric_rollups {where}", params)
    select = "SELECT run_id, step, epoch, key, value, time FROM metrics WHERE step >= ?" + (
        " AND run_id = ?" if run_id is not None else ""
    )
    args = [first_bucket * ROLLUP_STEPS] + ([run_id] if run_id is not None else [])
    cursor = conn.execute(select, args)
    while chunk := cursor.fetchmany(100_000):
        add(conn, chunk)


__all__ = ["CREATE_SQL", "ROLLUP_STEPS", "add", "aggregate", "rebuild"]
