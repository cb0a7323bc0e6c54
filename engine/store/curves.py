"""A stored metric as a chart draws it: at most a few thousand points, peaks kept.

A long run logs hundreds of thousands of points per metric; a chart a thousand pixels wide
shows at most two per pixel column. ``downsampled`` asks SQLite for the smallest and the
largest value in each of ``buckets`` equal step ranges (both, so a loss spike or a dip in
accuracy survives, as pyqtgraph's own "peak" downsampling keeps them), reading the
``(run_id, key, step)`` index rather than the rows into Python. A metric with no more points
than the chart can show comes back whole.
"""

from __future__ import annotations

from cnn_lab.engine.store.store import MetricPoint, RunStore, _float_or_nan

DEFAULT_BUCKETS = 2000
"""Step ranges a curve is cut into: two points each, about one per pixel of a wide chart."""


def downsampled(
    store: RunStore, run_id: int, key: str, buckets: int = DEFAULT_BUCKETS
) -> list[MetricPoint]:
    """The metric's points in step order, reduced to each bucket's minimum and maximum."""
    db = store.db
    low, high, count = db.execute(
        "SELECT MIN(step), MAX(step), COUNT(*) FROM metrics WHERE run_id = ? AND key = ?",
        [run_id, key],
    ).fetchone()
    if not count:
        return []
    if count <= 2 * buckets:
        return store.metrics(run_id, key)
    span = high - low + 1
    # SQLite returns the other columns of the row that gave MIN() (or MAX()), so each
    # query yields one real point per bucket; NULL (NaN) values are skipped by both.
    rows = []
    for extreme in ("MIN", "MAX"):
        rows += db.execute(
            f"SELECT step, epoch, {extreme}(value), time FROM metrics "
            "WHERE run_id = ? AND key = ? AND value IS NOT NULL "
            "GROUP BY ((step - ?) * ?) / ?",
            [run_id, key, low, buckets, span],
        ).fetchall()
    unique = sorted({(r[0], r[3]): r for r in rows}.values(), key=lambda r: (r[0], r[3]))
    return [MetricPoint(run_id, r[0], r[1], key, _float_or_nan(r[2]), r[3]) for r in unique]


__all__ = ["DEFAULT_BUCKETS", "downsampled"]
