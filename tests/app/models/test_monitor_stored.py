"""A stored run read back for the Monitor from a real run store, without a window."""

from __future__ import annotations

from pathlib import Path

from cnn_lab.app.models.monitor_stored import read_stored_run, stored_samples
from cnn_lab.engine.store import COMPLETED, MetricPoint, RunStore, SystemSample

SYSTEM = ("cpu.percent", "ram.used_mb")
GPU = ("util_percent", "mem_used_mb")
NOW = 1_700_000_000.0


def store_a_run(store: RunStore, *, timing: bool = True) -> int:
    run_id = store.create_run(spec_json="{}", spec_hash="h", name="stored", device="cpu")
    points = [
        MetricPoint(run_id, n, 1 + (n - 1) // 5, "train.loss", 1.0 / n, NOW) for n in range(1, 11)
    ]
    points += [MetricPoint(run_id, 5 * e, e, "val.accuracy", 0.4 * e, NOW) for e in (1, 2)]
    if timing:
        for key, value in zip(
            ("data", "copy", "compute", "other"), (1.0, 2.0, 3.0, 4.0), strict=True
        ):
            points.append(MetricPoint(run_id, 10, 2, f"time.{key}_ms", value, NOW))
    store.add_metrics(points)
    samples = []
    for i in range(3):
        values = {"cpu.percent": 10.0 * i, "cpu.core0.percent": 50.0, "cpu.core1.percent": 5.0}
        values |= {"gpu0.util_percent": 90.0, "gpu0.mem_used_mb": 100.0, "swap.mb": 1.0}
        if i == 0:
            values["gpu1.util_percent"] = 20.0  # GPU 1 answered once
        samples += [SystemSample(run_id, NOW + i, k, v) for k, v in values.items()]
    store.write_batch(run_id, [], samples)  # the job's own write path
    store.finish_run(run_id, COMPLETED, summary={})
    return run_id


def test_samples_regroup_into_the_readings_the_live_panel_saw(tmp_path: Path) -> None:
    with RunStore.open(tmp_path / "runs.sqlite") as store:
        run_id = store_a_run(store)
        readings = stored_samples(store, run_id, SYSTEM, GPU)
    assert [t for t, _ in readings] == [NOW, NOW + 1, NOW + 2]
    first = readings[0][1]
    assert first["cpu.core1.percent"] == 5.0 and first["gpu1.util_percent"] == 20.0
    assert "gpu1.util_percent" not in readings[1][1]
    assert "swap.mb" not in first  # only the keys the charts draw are read


def test_a_stored_run_has_its_curves_samples_from_zero_and_last_timing(tmp_path: Path) -> None:
    with RunStore.open(tmp_path / "runs.sqlite") as store:
        run = read_stored_run(store, store_a_run(store), SYSTEM, GPU)
        untimed = read_stored_run(store, store_a_run(store, timing=False), SYSTEM, GPU)
    curves = {curve.key: (xs, ys) for curve, xs, ys in run.curves}
    assert set(curves) == {"train.loss", "val.accuracy"}  # curves without points are left out
    assert curves["train.loss"][0] == list(range(1, 11))
    assert curves["val.accuracy"] == ([1, 2], [0.4, 0.8])  # accuracy is drawn per epoch
    assert [t for t, _ in run.samples] == [0.0, 1.0, 2.0]
    assert run.timing == (1.0, 2.0, 3.0, 4.0)
    assert untimed.timing is None
