"""A stored metric as a chart draws it, read from PostgreSQL (engine/store/curves.py's rules).

The same three cases as the SQLite store, so a chart looks the same whichever backend holds
the run: a metric with no more points than the chart can show comes back whole; a long one is
merged from its roll-ups (a million points read as about 16,000 rows); one in between is
grouped by the server, with ``DISTINCT ON`` giving each bucket's real lowest and highest
point (SQLite gets them from its bare-column MIN and MAX).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import psycopg

from cnn_lab.engine.store.store import MetricPoint

Found = tuple[int, int, float, float]
"""(step, epoch, value, time) of one extreme."""


def downsampled(
    cur: psycopg.Cursor[Any],
    run_id: int,
    key: str,
    buckets: int,
    whole: Callable[[], list[MetricPoint]],
) -> list[MetricPoint]:
    """The metric in step order, reduced to each bucket's minimum and maximum; ``whole``
    reads every point (for a metric short enough to be drawn as it is)."""
    cur.execute(
        "SELECT SUM(points), MIN(first_step), MAX(last_step), COUNT(*) FROM metric_rollups "
        "WHERE run_id = %s AND key = %s",
        [run_id, key],
    )
    row = cur.fetchone()
    points, low, high, rows = row if row else (None, None, None, 0)
    if not points:
        return []
    if points <= 2 * buckets:
        return whole()
    span = int(high) - int(low) + 1
    if rows >= buckets:
        return _from_rollups(cur, run_id, key, buckets, int(low), span)
    found: list[Found] = []
    for direction in ("ASC", "DESC"):
        cur.execute(
            "SELECT DISTINCT ON (slot) step, epoch, value, time FROM ("
            "  SELECT ((step - %s) * %s) / %s AS slot, step, epoch, value, time, id"
            "  FROM metrics WHERE run_id = %s AND key = %s AND value IS NOT NULL"
            f") AS points ORDER BY slot, value {direction}, step, id",
            [int(low), buckets, span, run_id, key],
        )
        found += cur.fetchall()
    return _points(run_id, key, found)


def _from_rollups(
    cur: psycopg.Cursor[Any], run_id: int, key: str, buckets: int, low: int, span: int
) -> list[MetricPoint]:
    """Merge the roll-up rows (64 steps each) into ``buckets`` equal step ranges.

    The server does the merging (``DISTINCT ON`` each range's lowest, then highest roll-up,
    the earliest on a tie, as the SQLite store's loop keeps it), so about 4,000 rows travel
    for a million points instead of every roll-up: fetching rows, not finding them, is what
    costs here."""
    found: list[Found] = []
    for end, direction in (("min", "ASC"), ("max", "DESC")):
        cur.execute(
            f"SELECT DISTINCT ON (slot) {end}_step, {end}_epoch, {end}_value, {end}_time "
            f"FROM (SELECT ((first_step - %s) * %s) / %s AS slot, bucket, {end}_step, "
            f"  {end}_epoch, {end}_value, {end}_time FROM metric_rollups "
            "  WHERE run_id = %s AND key = %s AND min_value IS NOT NULL) AS r "
            f"ORDER BY slot, {end}_value {direction}, bucket",
            [low, buckets, span, run_id, key],
        )
        found += cur.fetchall()
    return _points(run_id, key, found)


def _points(run_id: int, key: str, found: Iterable[Sequence[Any]]) -> list[MetricPoint]:
    """(step, epoch, value, time) rows as MetricPoints in step order, each point once."""
    unique = sorted({(r[0], r[3]): r for r in found}.values(), key=lambda r: (r[0], r[3]))
    return [MetricPoint(run_id, int(r[0]), int(r[1]), key, float(r[2]), r[3]) for r in unique]


__all__ = ["downsampled"]
