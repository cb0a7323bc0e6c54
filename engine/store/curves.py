"""A stored metric as a chart draws it: at most a few thousand points, peaks kept.

A long run logs hundreds of thousands of points per metric; a chart a thousand pixels wide
shows at most two per pixel column. ``downsampled`` returns the smallest and the largest
value in each of ``buckets`` equal step ranges (both, so a loss spike or a dip in accuracy
survives, as pyqtgraph's own "peak" downsampling keeps them). A long curve is read from its
roll-ups (rollups.py: the extremes of every 64 steps, kept as points are written), so a
million points cost about 16,000 rows; a medium one is grouped by SQLite; a metric with no
more points than the chart can show comes back whole.
"""

from __future__ import annotations

from cnn_lab.engine.store.store import DEFAULT_BUCKETS, MetricPoint, RunStore, _float_or_nan


def downsampled(
    store: RunStore, run_id: int, key: str, buckets: int = DEFAULT_BUCKETS
) -> list[MetricPoint]:
    """The metric's points in step order, reduced to each bucket's minimum and maximum."""
    db = store.sqlite_db
    points, low, high, rows = db.execute(
        "SELECT SUM(points), MIN(first_step), MAX(last_step), COUNT(*) FROM metric_rollups "
        "WHERE run_id = ? AND key = ?",
        [run_id, key],
    ).fetchone()
    if not points:
        return []
    if points <= 2 * buckets:
        return store.metrics(run_id, key)
    span = high - low + 1
    if rows >= buckets:
        return _from_rollups(store, run_id, key, buckets, low, span)
    # Fewer roll-ups than buckets (at most ``buckets`` × 64 points): group the points.
    # SQLite returns the other columns of the row that gave MIN() (or MAX()), so each
    # query yields one real point per bucket; NULL (NaN) values are skipped by both.
    found = []
    for extreme in ("MIN", "MAX"):
        found += db.execute(
            f"SELECT step, epoch, {extreme}(value), time FROM metrics "
            "WHERE run_id = ? AND key = ? AND value IS NOT NULL "
            "GROUP BY ((step - ?) * ?) / ?",
            [run_id, key, low, buckets, span],
        ).fetchall()
    return _points(run_id, key, found)


def _from_rollups(
    store: RunStore, run_id: int, key: str, buckets: int, low: int, span: int
) -> list[MetricPoint]:
    """Merge the roll-up rows (64 steps each) into ``buckets`` equal step ranges."""
    lowest: dict[int, tuple[int, int, float, float]] = {}
    highest: dict[int, tuple[int, int, float, float]] = {}
    for row in store.sqlite_db.execute(
        "SELECT first_step, min_step, min_epoch, min_value, min_time, "
        "max_step, max_epoch, max_value, max_time FROM metric_rollups "
        "WHERE run_id = ? AND key = ? AND min_value IS NOT NULL ORDER BY bucket",
        [run_id, key],
    ):
        index = (row[0] - low) * buckets // span
        if index not in lowest or row[3] < lowest[index][2]:
            lowest[index] = (row[1], row[2], row[3], row[4])
        if index not in highest or row[7] > highest[index][2]:
            highest[index] = (row[5], row[6], row[7], row[8])
    return _points(run_id, key, [*lowest.values(), *highest.values()])


def _points(run_id: int, key: str, found: list[tuple]) -> list[MetricPoint]:  # type: ignore[type-arg]
    """(step, epoch, value, time) rows as MetricPoints in step order, each point once."""
    unique = sorted({(r[0], r[3]): r for r in found}.values(), key=lambda r: (r[0], r[3]))
    return [MetricPoint(run_id, r[0], r[1], key, _float_or_nan(r[2]), r[3]) for r in unique]


__all__ = ["DEFAULT_BUCKETS", "downsampled"]
