"""Downsampled curves: few points from many, with every bucket's peak and dip kept."""

from __future__ import annotations

import math
from pathlib import Path

from cnn_lab.engine.store import MetricPoint, RunStore
from cnn_lab.engine.store.curves import downsampled


def test_a_long_curve_keeps_its_spikes_in_few_points(tmp_path: Path) -> None:
    with RunStore.open(tmp_path / "runs.sqlite") as store:
        run_id = store.create_run(spec_json="{}", spec_hash="h")
        values = [1.0 / (1 + step) for step in range(20_000)]
        values[12_345] = 50.0  # one spike
        values[777] = -3.0  # one dip
        values[5000] = math.nan  # a diverged step, stored as NULL
        store.add_metrics(
            MetricPoint(run_id, step, step // 1000, "loss", v, float(step))
            for step, v in enumerate(values)
        )
        store.add_metrics([MetricPoint(run_id, 0, 0, "other", 1.0, 0.0)])
        points = downsampled(store, run_id, "loss", buckets=100)
        assert 100 <= len(points) <= 200
        steps = [p.step for p in points]
        assert steps == sorted(steps) and steps[0] == 0 and steps[-1] == 19_999
        assert (12_345, 50.0) in {(p.step, p.value) for p in points}
        assert (777, -3.0) in {(p.step, p.value) for p in points}
        assert all(math.isfinite(p.value) for p in points)
        assert {p.key for p in points} == {"loss"} and points[1].epoch == points[1].step // 1000
        # Short curves come back whole, missing ones empty.
        assert downsampled(store, run_id, "other") == store.metrics(run_id, "other")
        assert downsampled(store, run_id, "absent") == []


def _loss(run_id: int, steps: range, value=lambda s: float(s % 97)) -> list[MetricPoint]:  # type: ignore[no-untyped-def]
    return [MetricPoint(run_id, s, s // 100, "loss", value(s), float(s)) for s in steps]


def _rollup_totals(store: RunStore, run_id: int) -> tuple[int, int, int]:
    points, low, high = store.sqlite_db.execute(
        "SELECT SUM(points), MIN(first_step), MAX(last_step) FROM metric_rollups "
        "WHERE run_id = ? AND key = 'loss'",
        [run_id],
    ).fetchone()
    return points, low, high


def test_medium_curves_are_grouped_and_batches_merge_into_one_bucket(tmp_path: Path) -> None:
    with RunStore.open(tmp_path / "runs.sqlite") as store:
        run_id = store.create_run(spec_json="{}", spec_hash="h")
        # Two writes split bucket 0 (steps 0-63); its extremes must come from both.
        store.add_metrics(_loss(run_id, range(0, 30), lambda s: 5.0))
        store.add_metrics(_loss(run_id, range(30, 5000), lambda s: 1.0 + (s == 40) * 9))
        store.add_metrics([MetricPoint(run_id, 41, 0, "loss", -2.0, 41.0)])
        (points, first, last, low, high) = store.sqlite_db.execute(
            "SELECT points, first_step, last_step, min_value, max_value FROM metric_rollups "
            "WHERE run_id = ? AND key = 'loss' AND bucket = 0",
            [run_id],
        ).fetchone()
        assert (points, first, last, low, high) == (65, 0, 63, -2.0, 10.0)
        shown = downsampled(store, run_id, "loss", buckets=100)  # 79 roll-ups: SQL groups
        assert 100 <= len(shown) <= 200
        assert {(41, -2.0), (40, 10.0)} <= {(p.step, p.value) for p in shown}


def test_truncating_a_resumed_run_rebuilds_the_cut_bucket(tmp_path: Path) -> None:
    with RunStore.open(tmp_path / "runs.sqlite") as store:
        run_id = store.create_run(spec_json="{}", spec_hash="h")
        store.add_metrics(_loss(run_id, range(1000)))
        assert _rollup_totals(store, run_id) == (1000, 0, 999)
        assert store.truncate_metrics(run_id, after_step=500) == 499
        assert _rollup_totals(store, run_id) == (501, 0, 500)
        (high,) = store.sqlite_db.execute(
            "SELECT max_value FROM metric_rollups WHERE run_id = ? AND bucket = ?",
            [run_id, 500 // 64],
        ).fetchone()
        assert high == max(float(s % 97) for s in range(448, 501))
        store.add_metrics(_loss(run_id, range(501, 600)))  # the resumed run writes on
        assert _rollup_totals(store, run_id) == (600, 0, 599)


def test_a_store_from_before_rollups_gets_them_when_opened(tmp_path: Path) -> None:
    import sqlite_utils

    from cnn_lab.engine.store.schema import MIGRATIONS, apply_migration

    path = tmp_path / "old.sqlite"
    old = sqlite_utils.Database(path)
    with old.conn:
        apply_migration(old, MIGRATIONS[0])
        old.execute(
            "INSERT INTO runs (status, spec_json, spec_hash, created_at) "
            "VALUES ('completed', '{}', 'h', 0)"
        )
        old.conn.executemany(
            "INSERT INTO metrics VALUES (1, ?, 0, 'loss', ?, 0)",
            [(s, float(s % 13)) for s in range(10_000)],
        )
    old.close()
    with RunStore.open(path) as store:
        assert _rollup_totals(store, 1) == (10_000, 0, 9_999)
        shown = downsampled(store, 1, "loss", buckets=50)
        assert len(shown) <= 100 and {p.value for p in shown} == {0.0, 12.0}
