"""The Monitor panel: training curves, CPU and GPU charts, the step-time bar and the verdict card.

GPU behaviour is checked against the fake NVML of tests/fake_nvml.py: the system samples come
from the engine's real ``SystemSampler`` reading the fake GPUs, so the keys are the ones a
real run produces. Nothing here trains; a real run in the window is tested elsewhere.
"""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel

from cnn_lab.app.panels.monitor_panel import MonitorPanel, read_for_monitor
from cnn_lab.app.state import AppState
from cnn_lab.engine.monitor import SystemSampler
from cnn_lab.engine.store import COMPLETED, FAILED, MetricPoint, RunStore, SystemSample
from cnn_lab.engine.train.events import (
    BottleneckReport,
    DataProgress,
    EpochEnd,
    RunFinished,
    RunStarted,
    StepEnd,
    StepTiming,
    SystemSampled,
)
from tests.fake_nvml import fake_nvml_fixture, no_nvml_fixture  # noqa: F401  (fixtures)

RUN = 5

DIAGNOSIS: dict[str, Any] = {
    "verdict": "input-bound",
    "title": "The GPU waits for data: loading a batch takes 41% of each step.",
    "evidence": {"data_share": 0.41, "gpu_util_percent": 52.0},
    "evidence_text": [
        "Waiting for the loader takes 8.2 ms of each 20.0 ms step (41%).",
        "GPU utilisation averages 52%.",
    ],
    "recommendations": [
        {
            "option": "data_placement",
            "value": "device",
            "text": "Keep the training images on the GPU (data placement: device).",
        },
        {"option": "disk", "value": None, "text": "Move the dataset to a faster disk."},
    ],
    "steps": 400,
}


@pytest.fixture
def panel(qtbot, db_path: Path) -> MonitorPanel:  # type: ignore[no-untyped-def]
    """A panel that has begun run RUN. It asks NVML for the GPUs when it is made, so a test
    names an NVML fixture (fake_nvml, no_nvml) before this one: fixtures are set up in order."""
    widget = MonitorPanel(AppState(db_path))
    qtbot.addWidget(widget)
    widget.resize(1280, 760)
    widget.show()
    widget.begin(RUN)
    return widget


def started(epochs: int = 10, steps_per_epoch: int = 50) -> RunStarted:
    return RunStarted(
        run_id=RUN,
        device="cpu",
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        total_steps=epochs * steps_per_epoch,
        train_images=3200,
        val_images=800,
        classes=("circle", "square", "triangle"),
        params=1_234_567,
        batch_size=64,
    )


def step(n: int, epoch: int = 1, *, progress: float = 0.1, eta_s: float = 30.0) -> StepEnd:
    return StepEnd(
        step=n,
        epoch=epoch,
        loss=2.0 / n,
        lr=0.01 * n,
        images_per_s=1000.0 + n,
        elapsed_s=0.1 * n,
        progress=progress,
        eta_s=eta_s,
    )


def sampled(sampler: SystemSampler, when: float) -> SystemSampled:
    return SystemSampled(time=when, values=sampler.sample())


# ------------------------------------------------------------------------------- GPUs


def test_fake_gpus_fill_the_gpu_charts_and_a_vanished_gpu_stops(
    fake_nvml: SimpleNamespace, panel: MonitorPanel
) -> None:
    assert panel.gpu_label.text() == "2 NVIDIA GPUs, driver 550.54"
    gpus = panel.gpu_charts
    assert gpus.showing_charts and gpus.message == ""
    sampler = SystemSampler()
    try:
        panel.on_events(RUN, [sampled(sampler, 100.0 + i) for i in range(3)])
        panel.on_events(RUN, [sampled(sampler, 103.0 + i) for i in range(2)])
        fake_nvml.gpus[1].alive = False  # GPU 1 falls off the bus
        panel.on_events(RUN, [sampled(sampler, 105.0 + i) for i in range(4)])
    finally:
        sampler.close()

    assert gpus.gpu_indices() == [0, 1]
    assert gpus.util_chart.points("GPU 0") == 9
    assert gpus.util_chart.points("GPU 1") == 5  # stopped where its keys stopped
    assert gpus.util_chart.last("GPU 0") == (8.0, 87.0)  # x in seconds since the first sample
    assert gpus.util_chart.last("GPU 1") == (4.0, 87.0)
    assert gpus.memory_chart.last("GPU 0 used") == (8.0, 2.0)  # GiB
    assert gpus.memory_chart.last("GPU 0 total") == (8.0, 8.0)
    assert gpus.temp_chart.points("GPU 0") == 9
    assert gpus.power_chart.last("GPU 0") == (8.0, 215.0)
    assert gpus.power_chart.last("GPU 0 limit") == (8.0, 300.0)
    assert gpus.power_chart.points("GPU 1") == 0  # this board cannot read its power
    assert gpus.stopped_gpus() == [1]
    assert "GPU 1 stopped answering at 4 s" in gpus.status_label.text()
    assert "power cap" in gpus.status_label.text()  # throttle reason bit 0x4 of the fake
    # the CPU side carries on beside them
    assert panel.system_charts.cpu_chart.points("all cores") == 9


def test_without_nvml_the_panel_says_so_and_shows_the_cpu(
    no_nvml: None, panel: MonitorPanel
) -> None:
    expected = "No NVIDIA GPU: the NVIDIA driver (NVML) is not installed on this machine."
    assert panel.gpu_label.text() == expected
    gpus = panel.gpu_charts
    assert not gpus.showing_charts
    assert gpus.message.startswith(expected)
    panel.tabs.setCurrentWidget(panel.hardware_tab)
    assert gpus.message_label.isVisible() and not gpus.grid_widget.isVisible()
    panel.tabs.setCurrentIndex(0)  # the Training tab: the CPU chart is hidden

    sampler = SystemSampler()  # asks NVML for GPUs too, and gets none
    try:
        panel.on_events(RUN, [sampled(sampler, 50.0 + i) for i in range(4)])
    finally:
        sampler.close()
    system = panel.system_charts
    assert system.cpu_chart.points("all cores") == 4
    assert system.cpu_chart.drawn("all cores") == 0  # hidden charts only grow their buffers
    panel.tabs.setCurrentWidget(panel.hardware_tab)
    assert system.cpu_chart.drawn("all cores") == 4  # and draw once shown
    assert system.cpu_chart.points("busiest core") == 4
    assert system.memory_chart.points("RAM used") == 4
    assert 0.0 <= system.cpu_chart.last("all cores")[1] <= 100.0  # type: ignore[index]
    assert system.summary_label.text().startswith("CPU ")
    assert not gpus.showing_charts and gpus.gpu_indices() == []


# ------------------------------------------------------------------------------- training


def test_steps_and_epochs_fill_the_training_charts_and_the_header(panel: MonitorPanel) -> None:
    panel.on_events(RUN, [started(), *(step(n) for n in range(1, 21))])
    panel.on_events(
        RUN,
        [
            step(21, 3, progress=0.42, eta_s=80.0),
            EpochEnd(1, 21, 0.9, 0.6, 1.0, 0.55, 2.0, 1500.0, 0.3),
        ],
    )
    assert panel.loss_chart.points("train (step)") == 21
    assert panel.loss_chart.last("validation") == (21.0, 1.0)
    assert panel.accuracy_chart.last("validation") == (1.0, 0.55)  # x is the epoch
    assert panel.accuracy_chart.last("train") == (1.0, 0.6)
    assert panel.lr_chart.last("learning rate") == pytest.approx((21.0, 0.21))
    assert panel.speed_chart.points("images/s") == 21
    assert panel.speed_chart.last("epoch mean") == (21.0, 1500.0)
    assert panel.progress_label.text() == "epoch 3/10 · 42% · ETA 1 min 20 s"
    assert panel.run_label.text() == f"Run {RUN} · training"
    device = panel.device_label.text()
    assert "cpu" in device and "batch 64" in device and "1.2 M parameters" in device


def test_events_of_another_run_are_ignored(panel: MonitorPanel) -> None:
    panel.on_events(RUN + 1, [step(1), step(2)])
    assert panel.loss_chart.points("train (step)") == 0


# ------------------------------------------------------------------------------- bar and card


def test_step_timing_sets_the_bar_segments(panel: MonitorPanel) -> None:
    bar = panel.step_bar
    assert bar.segments() == []
    panel.on_events(RUN, [StepTiming(100, 50, 6.0, 2.0, 10.0, 2.0, 20.0, 3200.0, 64)])
    shown = [(s.name, s.ms, s.percent) for s in bar.segments()]
    assert shown == [
        ("data", 6.0, 30.0),
        ("copy", 2.0, 10.0),
        ("compute", 10.0, 50.0),
        ("other", 2.0, 10.0),
    ]
    assert bar.legend_lines()[0] == "data 6.00 ms (30%)"
    assert panel.step_caption.text() == (
        "20.0 ms per step · 3,200 images/s · mean of the last 50 steps"
    )
    # the latest timing of a batch wins, and a negative part (clock noise) counts as zero
    panel.on_events(
        RUN,
        [
            StepTiming(150, 50, 1.0, 1.0, 1.0, 1.0, 4.0, 1.0, 64),
            StepTiming(200, 50, 1.0, 0.0, 8.0, -0.5, 9.0, 7000.0, 64),
        ],
    )
    assert [s.ms for s in bar.segments()] == [1.0, 0.0, 8.0, 0.0]
    assert bar.segments()[2].percent == pytest.approx(100 * 8 / 9)
    bar.grab()  # paints without raising


def test_bottleneck_report_fills_the_verdict_card(qtbot, panel: MonitorPanel) -> None:  # type: ignore[no-untyped-def]
    card = panel.verdict_card
    assert card.verdict() == "" and card.verdict_label.text() == "—"
    panel.on_events(RUN, [BottleneckReport(diagnosis=DIAGNOSIS)])
    assert card.verdict() == "input-bound"
    assert card.verdict_label.text() == "Input-bound"
    assert card.title_label.text() == DIAGNOSIS["title"]
    assert "8.2 ms of each 20.0 ms step" in card.evidence_label.text()
    assert card.recommendation_texts() == [
        "• Keep the training images on the GPU (data placement: device).",
        "• Move the dataset to a faster disk.",
    ]
    assert card.steps_label.text() == "Measured over 400 steps."
    # Apply only where the option is a TrainSpec field; it asks, the state stays as it is
    buttons = card.apply_buttons()
    assert len(buttons) == 1
    before = panel.state.train
    with qtbot.waitSignal(panel.apply_recommendation) as applied:
        qtbot.mouseClick(buttons[0], Qt.MouseButton.LeftButton)
    assert applied.args == [{"data_placement": "device"}]
    assert panel.state.train == before

    panel.on_events(RUN, [BottleneckReport(diagnosis={"verdict": "compute-bound", "title": "ok"})])
    assert card.verdict_label.text() == "Compute-bound" and card.recommendation_texts() == []
    assert not card.evidence_label.isVisibleTo(card)
    panel.begin(RUN + 1)
    assert card.verdict() == ""


def test_texts_from_runs_are_never_read_as_markup(panel: MonitorPanel) -> None:
    reason = "<b>boom</b> <a href='file:///etc'>click</a>"
    hostile = {**DIAGNOSIS, "title": "<i>slanted</i>", "evidence_text": ["<h1>big</h1>"]}
    panel.on_events(
        RUN,
        [
            BottleneckReport(diagnosis=hostile),
            RunFinished(RUN, FAILED, reason=reason, hint="<img src=x> try again"),
        ],
    )
    panel.finish(RUN, FAILED, reason)
    assert panel.reason_label.text() == f"{reason}\n<img src=x> try again"
    assert panel.run_label.text() == f"Run {RUN} · failed"
    assert panel.verdict_card.title_label.text() == "<i>slanted</i>"
    with_markup = [label for label in panel.findChildren(QLabel) if "<" in label.text()]
    assert len(with_markup) >= 3
    assert all(label.textFormat() == Qt.TextFormat.PlainText for label in with_markup)


# ------------------------------------------------------------------------------- stored runs


def _store_a_run(store: RunStore) -> int:
    run_id = store.create_run(spec_json="{}", spec_hash="h", name="stored", device="cuda:0")
    now = 1_700_000_000.0
    points = []
    for n in range(1, 31):
        points += [
            MetricPoint(run_id, n, 1 + (n - 1) // 10, "train.loss", 2.0 / n, now + n),
            MetricPoint(run_id, n, 1 + (n - 1) // 10, "lr", 0.001 * n, now + n),
            MetricPoint(run_id, n, 1 + (n - 1) // 10, "train.images_per_s", 900.0, now + n),
        ]
    for epoch in (1, 2, 3):
        points += [
            MetricPoint(run_id, 10 * epoch, epoch, "val.accuracy", 0.3 * epoch, now),
            MetricPoint(run_id, 10 * epoch, epoch, "val.loss", 1.0 / epoch, now),
            MetricPoint(run_id, 10 * epoch, epoch, "epoch.train_accuracy", 0.25 * epoch, now),
        ]
    for n, split in ((20, (4.0, 1.0, 4.0, 1.0)), (30, (1.0, 1.0, 7.0, 1.0))):
        for key, value in zip(("data", "copy", "compute", "other"), split, strict=True):
            points.append(MetricPoint(run_id, n, 3, f"time.{key}_ms", value, now))
    store.add_metrics(points)
    samples = []
    for i in range(6):
        when = now + 0.5 * i
        values = {
            "cpu.percent": 40.0 + i,
            "cpu.core0.percent": 90.0,
            "cpu.core1.percent": 10.0,
            "ram.used_mb": 4096.0,
            "ram.percent": 25.0,
            "proc.rss_mb": 512.0,
            "proc.cpu_percent": 100.0,
            "gpu0.util_percent": 95.0,
            "gpu0.mem_used_mb": 10240.0,
        }
        if i < 2:  # GPU 1 answered for the first two readings only
            values["gpu1.util_percent"] = 30.0
            values["gpu1.mem_used_mb"] = 1024.0
        samples += [SystemSample(run_id, when, k, v) for k, v in values.items()]
    store.write_batch(run_id, [], samples)  # the job's own write path
    store.finish_run(
        run_id,
        COMPLETED,
        summary={"device": "cuda:0", "params": 2_000_000, "bottleneck": DIAGNOSIS},
    )
    return run_id


def test_a_stored_run_draws_every_curve_even_without_a_gpu_here(
    no_nvml: None, panel: MonitorPanel, tmp_path: Path
) -> None:
    with RunStore.open(tmp_path / "stored.sqlite") as store:
        run_id = _store_a_run(store)
        panel.show_stored_run(*read_for_monitor(store, run_id))
    assert panel.run_id == run_id
    assert panel.loss_chart.points("train (step)") == 30
    assert panel.loss_chart.last("validation") == (30.0, pytest.approx(1 / 3))
    assert panel.accuracy_chart.last("validation") == (3.0, pytest.approx(0.9))
    assert panel.lr_chart.points("learning rate") == 30
    assert panel.speed_chart.points("images/s") == 30

    system = panel.system_charts
    assert system.cpu_chart.points("all cores") == 6
    assert system.cpu_chart.last("all cores") == (2.5, 45.0)  # seconds since the first sample
    assert system.cpu_chart.last("busiest core") == (2.5, 90.0)
    assert system.cpu_chart.last("this run") == (2.5, 50.0)  # 100% of one core of two
    assert system.memory_chart.last("RAM total") == (2.5, 16.0)

    gpus = panel.gpu_charts  # drawn from the run's keys although this machine has no GPU
    assert gpus.showing_charts
    assert gpus.util_chart.points("GPU 0") == 6 and gpus.util_chart.points("GPU 1") == 2
    assert gpus.memory_chart.last("GPU 0 used") == (2.5, 10.0)
    assert gpus.stopped_gpus() == [1]

    assert [s.ms for s in panel.step_bar.segments()] == [1.0, 1.0, 7.0, 1.0]  # the latest
    assert panel.verdict_card.verdict_label.text() == "Input-bound"
    assert panel.run_label.text() == f"Run {run_id} · completed"
    assert panel.progress_label.text().startswith("3 epochs · 30 steps")
    assert "cuda:0" in panel.device_label.text()
    assert "2.0 M parameters" in panel.device_label.text()

    panel.begin(run_id + 1)  # a live run after it starts clean, back to "no GPU here"
    assert panel.loss_chart.points("train (step)") == 0
    assert not gpus.showing_charts and gpus.util_chart.curve_names() == []
    assert panel.step_bar.segments() == []


def test_a_stored_run_without_samples_or_diagnosis_is_drawn_plainly(
    panel: MonitorPanel, tmp_path: Path
) -> None:
    with RunStore.open(tmp_path / "plain.sqlite") as store:
        run_id = store.create_run(spec_json="{}", spec_hash="h")
        store.add_metrics([MetricPoint(run_id, 1, 1, "train.loss", math.nan, 1.0)])
        store.finish_run(run_id, FAILED, reason="The loss became NaN at step 1.")
        panel.show_stored_run(*read_for_monitor(store, run_id))
    assert panel.loss_chart.points("train (step)") == 1
    assert panel.system_charts.cpu_chart.points("all cores") == 0
    assert panel.verdict_card.verdict() == ""
    assert panel.reason_label.text() == "The loss became NaN at step 1."
    assert panel.grab().width() > 0  # paints a NaN curve without raising


def test_preparing_the_data_shows_in_the_header_before_the_run_starts(
    panel: MonitorPanel,
) -> None:
    panel.on_events(RUN, [DataProgress("Listing files", 2, 2)])
    assert panel.run_label.text() == f"Run {RUN} · preparing the data: Listing files · 2 of 2"
    panel.on_events(RUN, [DataProgress("Decoding images", 40, 5000)])
    assert panel.run_label.text().startswith(
        f"Run {RUN} · preparing the data: Decoding images · 40 of 5,000"
    )
    panel.on_events(RUN, [started(), step(1)])
    assert panel.run_label.text() == f"Run {RUN} · training"
