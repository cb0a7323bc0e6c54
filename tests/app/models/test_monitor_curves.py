"""The Monitor's curve list and how a batch of live events is sorted, without a window."""

from __future__ import annotations

from cnn_lab.app.models.monitor_curves import (
    CURVES_BY_EVENT,
    METRIC_CURVES,
    TIMING_KEYS,
    LiveRun,
)
from cnn_lab.engine.jobs.recording import METRIC_FIELDS
from cnn_lab.engine.train.events import (
    BottleneckReport,
    DataProgress,
    EpochEnd,
    RunFinished,
    RunStarted,
    StepEnd,
    StepTiming,
    SystemSampled,
    WeightsSaved,
)


def started(start_step: int = 0) -> RunStarted:
    return RunStarted(
        run_id=7, device="cuda:0", epochs=4, steps_per_epoch=10, total_steps=40,
        train_images=320, val_images=80, classes=("a", "b"), params=1_500_000,
        start_step=start_step, batch_size=32,
    )  # fmt: skip


def step(n: int) -> StepEnd:
    return StepEnd(
        step=n, epoch=1, loss=1.0 / n, lr=0.1, images_per_s=100.0 * n, elapsed_s=n,
        progress=n / 40, eta_s=40.0 - n,
    )  # fmt: skip


def test_every_curve_reads_its_event_field_from_the_jobs_own_map() -> None:
    for curve in METRIC_CURVES:
        assert METRIC_FIELDS[curve.event][curve.key] == curve.field
    assert {c.key for c in CURVES_BY_EVENT["step"]} == {"train.loss", "lr", "train.images_per_s"}
    assert all(c.markers for c in CURVES_BY_EVENT["epoch"])
    assert not any(c.markers for c in CURVES_BY_EVENT["step"])
    assert "time.step_ms" not in TIMING_KEYS and set(TIMING_KEYS) < set(METRIC_FIELDS["timing"])


def test_a_batch_holds_the_new_points_of_each_curve_and_the_last_step() -> None:
    live = LiveRun(7)
    epoch = EpochEnd(
        epoch=1, step=2, train_loss=0.9, train_accuracy=0.5, val_loss=0.8, val_accuracy=0.6,
        epoch_s=1.0, images_per_s=150.0,
    )  # fmt: skip
    batch = live.collect([step(1), step(2), epoch, WeightsSaved(path="w.pt", sha256="0", bytes=1)])
    assert batch.points["loss_chart"]["train (step)"] == ([1, 2], [1.0, 0.5])
    assert batch.points["loss_chart"]["validation"] == ([2], [0.8])
    assert batch.points["accuracy_chart"]["validation"] == ([1], [0.6])  # accuracy by epoch
    assert batch.points["speed_chart"]["images/s"] == ([1, 2], [100.0, 200.0])
    assert batch.step.step == 2
    assert batch.finished is None and batch.run_text is None and batch.samples == []


def test_system_samples_count_seconds_from_the_runs_first_one() -> None:
    live = LiveRun(7)
    first = live.collect([SystemSampled(time=100.0, values={"cpu.percent": 10.0})])
    later = live.collect([SystemSampled(time=102.5, values={"cpu.percent": 30.0})])
    assert first.samples == [(0.0, {"cpu.percent": 10.0})]
    assert later.samples == [(2.5, {"cpu.percent": 30.0})]


def test_the_header_follows_preparing_then_training_and_a_resume() -> None:
    live = LiveRun(7)
    batch = live.collect([DataProgress(stage="decoding", done=5, total=10)])
    assert batch.run_text is not None
    assert batch.run_text.startswith("Run 7 · preparing the data: ")
    batch = live.collect([started()])
    assert batch.run_text == "Run 7 · training" and live.started is not None
    assert batch.device_text is not None and batch.device_text.startswith("cuda:0 · batch 32")
    resumed = LiveRun(7).collect([started(start_step=1200)])
    assert resumed.run_text == "Run 7 · training (resumed at step 1,200)"


def test_timing_diagnosis_and_finish_keep_the_last_of_a_batch() -> None:
    live = LiveRun(7)
    timing = StepTiming(
        step=10, steps=10, batch_size=32, data_ms=1.0, copy_ms=0.5, compute_ms=8.0,
        other_ms=0.5, step_ms=10.0, images_per_s=3200.0,
    )  # fmt: skip
    batch = live.collect([
        timing,
        BottleneckReport(diagnosis={"verdict": "input-bound"}),
        BottleneckReport(diagnosis={"verdict": "compute-bound"}),
        RunFinished(run_id=7, status="failed", reason="Out of memory.", hint="Halve the batch."),
    ])  # fmt: skip
    assert batch.timing is timing
    assert batch.diagnosis == {"verdict": "compute-bound"}
    assert batch.finished.status == "failed"
