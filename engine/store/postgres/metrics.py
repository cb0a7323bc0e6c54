"""``PgRunStore``'s metric points and system samples: written by COPY (points.py), read
back in step (or time) order with NULL as NaN, drawn as curves (curves.py), and exported page
by page.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import psycopg

from cnn_lab.engine.store.postgres import curves, points
from cnn_lab.engine.store.postgres.base import Connected, guarded
from cnn_lab.engine.store.postgres.connect import store_error
from cnn_lab.engine.store.postgres.schema import SERVER_NOW
from cnn_lab.engine.store.store import (
    DEFAULT_BUCKETS,
    GaugeStats,
    MetricPoint,
    SystemSample,
    _float_or_nan,
)


def _point(row: Sequence[Any]) -> MetricPoint:
    return MetricPoint(int(row[0]), int(row[1]), int(row[2]), row[3], _float_or_nan(row[4]), row[5])


class MetricMethods(Connected):
    """The metrics, metric_rollups and system_samples tables."""

    # --------------------------------------------------------------- metrics and samples

    @guarded
    def add_metrics(self, rows: Iterable[MetricPoint]) -> None:
        """Append metric points (one COPY) and their roll-ups, in one transaction."""
        with self._tx() as cur:
            points.insert_metrics(cur, rows)

    @guarded
    def write_batch(
        self,
        run_id: int,
        metrics: Iterable[MetricPoint],
        samples: Iterable[SystemSample],
        *,
        now: float | None = None,
    ) -> None:
        """Append metrics and samples and heartbeat ``run_id`` (at ``now``, else the server's
        time), all in one transaction."""
        with self._tx() as cur:
            points.insert_metrics(cur, metrics)
            points.insert_samples(cur, samples)
            cur.execute(
                f"UPDATE runs SET heartbeat_at = COALESCE(%s::double precision, {SERVER_NOW}) "
                "WHERE id = %s",
                [now, run_id],
            )

    @guarded
    def truncate_metrics(self, run_id: int, after_step: int) -> int:
        """Drop the run's metrics logged after ``after_step`` (a resume repeats them); how
        many, with the roll-ups from the cut on rebuilt."""
        with self._tx() as cur:
            cur.execute("DELETE FROM metrics WHERE run_id = %s AND step > %s", [run_id, after_step])
            dropped = cur.rowcount
            points.rebuild_rollups(cur, run_id, from_step=after_step + 1)
            return dropped

    @guarded
    def metrics(self, run_id: int, key: str) -> list[MetricPoint]:
        """Every point of one metric of one run, in step order. NULL values come back as NaN."""
        with self._tx() as cur:
            return self._metrics(cur, run_id, key)

    @staticmethod
    def _metrics(cur: psycopg.Cursor[Any], run_id: int, key: str) -> list[MetricPoint]:
        cur.execute(
            "SELECT run_id, step, epoch, key, value, time FROM metrics "
            "WHERE run_id = %s AND key = %s ORDER BY step, time, id",
            [run_id, key],
        )
        return [_point(row) for row in cur.fetchall()]

    @guarded
    def last_metric(self, run_id: int, key: str) -> MetricPoint | None:
        """The metric's point at the highest step (None if it has none)."""
        with self._tx() as cur:
            cur.execute(
                "SELECT run_id, step, epoch, key, value, time FROM metrics "
                "WHERE run_id = %s AND key = %s ORDER BY step DESC, time DESC, id DESC LIMIT 1",
                [run_id, key],
            )
            row = cur.fetchone()
        return None if row is None else _point(row)

    @guarded
    def metric_keys(self, run_id: int) -> dict[str, int]:
        """Each metric key the run logged, with how many points it has."""
        with self._tx() as cur:
            cur.execute(
                "SELECT key, COUNT(*) FROM metrics WHERE run_id = %s GROUP BY key ORDER BY key",
                [run_id],
            )
            return {key: int(count) for key, count in cur.fetchall()}

    @guarded
    def keys_logged(self, run_ids: Iterable[int]) -> list[str]:
        """Every metric key any of the runs logged, sorted (read from the roll-ups)."""
        ids = [int(i) for i in run_ids]
        if not ids:
            return []
        with self._tx() as cur:
            cur.execute(
                "SELECT DISTINCT key FROM metric_rollups WHERE run_id = ANY(%s) ORDER BY key",
                [ids],
            )
            return [row[0] for row in cur.fetchall()]

    @guarded
    def curve(self, run_id: int, key: str, buckets: int = DEFAULT_BUCKETS) -> list[MetricPoint]:
        """The metric as a chart draws it: each of ``buckets`` equal step ranges' smallest
        and largest point, in step order (curves.py; a short metric comes back whole)."""
        with self._tx() as cur:
            return curves.downsampled(
                cur, run_id, key, buckets, lambda: self._metrics(cur, run_id, key)
            )

    @guarded
    def best_metric(self, run_id: int, key: str, *, highest: bool = True) -> float | None:
        """The run's highest (or lowest) value of ``key``; None when it logged none."""
        pick = "MAX" if highest else "MIN"
        with self._tx() as cur:
            cur.execute(
                f"SELECT {pick}(value) FROM metrics WHERE run_id = %s AND key = %s", [run_id, key]
            )
            row = cur.fetchone()
        return None if row is None or row[0] is None else float(row[0])

    def metric_rows(self, run_id: int, batch: int = 5000) -> Iterator[tuple[Any, ...]]:
        """Every point as (run_id, key, step, epoch, value, time), by key, step and the order
        written; ``batch`` rows per short transaction, so an export holds no transaction
        open while it writes its file."""
        return self._pages(
            "SELECT run_id, key, step, epoch, value, time, key, step, time, id FROM metrics "
            "WHERE run_id = %s AND (key, step, time, id) > (%s, %s, %s, %s) "
            "ORDER BY key, step, time, id LIMIT %s",
            run_id,
            ("", -(2**63), float("-inf"), -1),
            batch,
        )

    @guarded
    def system_samples(self, run_id: int, key: str) -> list[SystemSample]:
        """Every sample of one gauge of one run, in time order. NULL values come back as NaN."""
        with self._tx() as cur:
            cur.execute(
                "SELECT run_id, time, key, value FROM system_samples "
                "WHERE run_id = %s AND key = %s ORDER BY time, id",
                [run_id, key],
            )
            rows = cur.fetchall()
        return [SystemSample(int(r[0]), r[1], r[2], _float_or_nan(r[3])) for r in rows]

    @guarded
    def gauge_stats(self, run_id: int) -> list[GaugeStats]:
        """Each system gauge the run sampled, with its count, mean, range and first time."""
        with self._tx() as cur:
            cur.execute(
                "SELECT key, COUNT(*), AVG(value), MIN(value), MAX(value), MIN(time) "
                "FROM system_samples WHERE run_id = %s GROUP BY key ORDER BY key",
                [run_id],
            )
            rows = cur.fetchall()
        return [GaugeStats(key, int(count), *rest) for key, count, *rest in rows]

    def sample_rows(self, run_id: int, batch: int = 5000) -> Iterator[tuple[Any, ...]]:
        """Every system sample as (key, time, value), by key then time, ``batch`` at a time."""
        return self._pages(
            "SELECT key, time, value, key, time, id FROM system_samples "
            "WHERE run_id = %s AND (key, time, id) > (%s, %s, %s) "
            "ORDER BY key, time, id LIMIT %s",
            run_id,
            ("", float("-inf"), -1),
            batch,
        )

    def _pages(
        self, sql: str, run_id: int, start: tuple[Any, ...], batch: int
    ) -> Iterator[tuple[Any, ...]]:
        """Rows of ``sql`` page by page: the trailing ``len(start)`` columns of each row are
        where the next page starts, and are not yielded. A generator converts psycopg's
        errors itself: ``guarded`` would cover only its creation."""
        after = start
        width = len(start)
        while True:
            try:
                with self._tx() as cur:
                    cur.execute(sql, [run_id, *after, max(1, int(batch))])  # type: ignore[arg-type]
                    rows = cur.fetchall()
            except psycopg.Error as exc:
                raise store_error(exc, self._where) from exc
            for row in rows:
                yield tuple(row[:-width])
            if len(rows) < max(1, int(batch)):
                return
            after = tuple(rows[-1][-width:])
