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
