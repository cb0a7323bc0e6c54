"""The bottleneck verdict: each rule on planted numbers, the step clock, and real runs.

The planted runs are the issue's scenarios: a loader slowed on purpose must be called
input-bound, a large model on a light loader compute-bound, and in both the recommendations
must name the options that would help. The verdict is also what `cnn-lab train --json` prints.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from cnn_lab.engine.data.loader import BatchLoader
from cnn_lab.engine.jobs.bottleneck import BottleneckTracker, RunContext
from cnn_lab.engine.jobs.job import run_job
from cnn_lab.engine.monitor.diagnosis import (
    BALANCED,
    COMPUTE_BOUND,
    HOST_BOUND,
    INPUT_BOUND,
    MEMORY_BOUND,
    WARMING_UP,
    Observations,
    diagnose,
)
from cnn_lab.engine.specs import RunSpec
from cnn_lab.engine.store import RunStore
from cnn_lab.engine.train.events import StepTiming
from cnn_lab.engine.train.step_timing import StepClock

CPU = torch.device("cpu")


def obs(**values: Any) -> Observations:
    """Observations of a healthy-looking CPU run, with ``values`` planted."""
    base: dict[str, Any] = {
        "steps": 100,
        "data_ms": 2.0,
        "copy_ms": 0.0,
        "compute_ms": 40.0,
        "other_ms": 1.0,
        "device_kind": "cpu",
        "batch_size": 64,
        "images_per_s": 1500.0,
        "settings": {"precision": "fp32", "channels_last": True, "compile": False},
    }
    base.update(values)
    base.setdefault(
        "step_ms", base["data_ms"] + base["copy_ms"] + base["compute_ms"] + base["other_ms"]
    )
    return Observations(**base)


def options(diagnosis: Any) -> list[str]:
    return [r.option for r in diagnosis.recommendations]


# ---------------------------------------------------------------------------- rules


def test_too_few_steps_is_warming_up() -> None:
    assert diagnose(obs(steps=3)).verdict == WARMING_UP


def test_data_waits_make_a_run_input_bound() -> None:
    result = diagnose(obs(data_ms=30.0, compute_ms=20.0, augment="flip=0.5"))
    assert result.verdict == INPUT_BOUND
    assert "59%" in result.title
    assert result.evidence["data_share"] == pytest.approx(30 / 51)
    assert {"data_placement", "dataset.augment", "dataset.image_size"} <= set(options(result))


def test_input_bound_does_not_suggest_what_is_already_set() -> None:
    result = diagnose(obs(data_ms=30.0, compute_ms=20.0, data_on_device=True))
    assert result.verdict == INPUT_BOUND
    assert "data_placement" not in options(result)
    assert "dataset.augment" not in options(result)  # there is no augmentation to lighten


def test_compute_dominated_cpu_run_is_compute_bound() -> None:
    result = diagnose(obs())
    assert result.verdict == COMPUTE_BOUND
    assert "channels_last" not in options(result)  # already on
    assert {"precision", "compile", "architecture.width"} <= set(options(result))
    assert any("93%" in line for line in result.evidence_text)


def test_busy_gpu_with_compute_is_compute_bound_and_suggests_gpu_options() -> None:
    result = diagnose(
        obs(device_kind="cuda", gpu_util_percent=97.0, settings={"precision": "fp32"})
    )
    assert result.verdict == COMPUTE_BOUND
    values = {r.option: r.value for r in result.recommendations}
    assert values["precision"] == "bf16"
    assert values["cudnn_benchmark"] is True
    assert values["channels_last"] is True


def test_pre_ampere_gpu_gets_fp16_not_bf16() -> None:
    result = diagnose(
        obs(device_kind="cuda", gpu_util_percent=97.0, settings={"bf16_supported": False})
    )
    assert {r.option: r.value for r in result.recommendations}["precision"] == "fp16"


def test_idle_gpu_without_data_waits_is_host_bound() -> None:
    result = diagnose(
        obs(
            device_kind="cuda",
            gpu_util_percent=25.0,
            compute_ms=4.0,
            data_ms=0.2,
            proc_cpu_percent=100.0,
            cpu_count=8,
        )
    )
    assert result.verdict == HOST_BOUND
    values = {r.option: r.value for r in result.recommendations}
    assert values["batch_size"] == 128
    assert values["compile"] is True
    assert values["fused_optimizer"] == "fused"
    assert result.evidence["gpu_idle_share"] == pytest.approx(0.75)


def test_full_gpu_memory_is_memory_bound_with_accumulation_advice() -> None:
    result = diagnose(
        obs(
            device_kind="cuda",
            gpu_util_percent=95.0,
            gpu_mem_used_mb=79_000.0,
            gpu_mem_total_mb=80_000.0,
            settings={"precision": "bf16"},
        )
    )
    assert result.verdict == MEMORY_BOUND
    assert "99%" in result.title
    values = {r.option: r.value for r in result.recommendations}
    assert values["batch_size"] == 32
    assert "precision" not in values  # already 16-bit
    assert COMPUTE_BOUND in result.others


def test_low_arithmetic_intensity_on_a_busy_gpu_is_bandwidth_bound() -> None:
    result = diagnose(
        obs(
            device_kind="cuda",
            gpu_util_percent=95.0,
            macs_per_image=1_000_000,
            activation_bytes_per_image=1_000_000,  # 3 FLOPs per byte
        )
    )
    assert result.verdict == MEMORY_BOUND
    assert result.evidence["flops_per_byte"] == pytest.approx(3.0)
    assert {"precision", "compile"} <= set(options(result))


def test_bookkeeping_heavy_cpu_steps_are_host_bound() -> None:
    result = diagnose(obs(compute_ms=3.0, other_ms=4.0, data_ms=0.5))
    assert result.verdict == HOST_BOUND
    assert "batch_size" in options(result)


def test_moderate_shares_are_balanced() -> None:
    result = diagnose(
        obs(data_ms=4.0, compute_ms=12.0, other_ms=2.5, device_kind="cuda", gpu_util_percent=70.0)
    )
    assert result.verdict == BALANCED
    assert result.recommendations == ()


def test_diagnosis_dict_is_plain_json() -> None:
    import json

    data = diagnose(obs(data_ms=30.0, compute_ms=20.0)).to_dict()
    assert json.loads(json.dumps(data)) == data
    assert set(data) >= {"verdict", "title", "evidence", "evidence_text", "recommendations"}


# ---------------------------------------------------------------------------- tracker


def timing(data: float, compute: float, steps: int = 20) -> StepTiming:
    return StepTiming(1, steps, data, 0.0, compute, 0.0, data + compute, 100.0, 32)


def test_whole_run_view_leaves_out_the_first_window() -> None:
    tracker = BottleneckTracker(RunContext(batch_size=32))
    tracker.add_timing(timing(data=500.0, compute=1.0), now=0.0)  # warm-up: all data
    tracker.add_timing(timing(data=1.0, compute=50.0), now=1.0)
    assert tracker.diagnose(recent=False).verdict == COMPUTE_BOUND
    assert tracker.diagnose(recent=True).verdict == INPUT_BOUND  # the window still holds both


def test_one_window_only_is_still_diagnosed() -> None:
    tracker = BottleneckTracker(RunContext(batch_size=32))
    tracker.add_timing(timing(data=40.0, compute=10.0), now=0.0)
    assert tracker.diagnose(recent=False).verdict == INPUT_BOUND


def test_recent_view_forgets_old_windows() -> None:
    tracker = BottleneckTracker(RunContext(batch_size=32))
    tracker.add_timing(timing(data=40.0, compute=10.0), now=0.0)
    tracker.add_timing(timing(data=1.0, compute=50.0), now=100.0)
    assert tracker.diagnose(recent=True).verdict == COMPUTE_BOUND


def test_tracker_reads_the_runs_own_gpu() -> None:
    tracker = BottleneckTracker(RunContext(device_kind="cuda", gpu_index=1, batch_size=32))
    tracker.add_timing(timing(data=1.0, compute=50.0), now=0.0)
    tracker.add_timing(timing(data=1.0, compute=50.0), now=1.0)
    for _ in range(4):  # GPU 0 is someone else's busy job; ours idles
        tracker.add_system({"gpu0.util_percent": 100.0, "gpu1.util_percent": 20.0}, now=1.0)
    seen = tracker.observations(recent=False)
    assert seen.gpu_util_percent == pytest.approx(20.0)
    assert tracker.diagnose(recent=False).verdict == HOST_BOUND


# ---------------------------------------------------------------------------- step clock


class FakeClock:
    """Time that moves only when a test says so."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t

    def advance(self, ms: float) -> None:
        self.t += ms / 1000.0


def test_step_clock_splits_a_planted_step() -> None:
    now = FakeClock()
    clock = StepClock(CPU, batch_size=8, interval_s=0.0, clock=now)

    def slow_batches() -> Iterator[int]:
        for i in range(5):
            now.advance(30)  # the loader's share
            yield i

    for _ in clock.timed(slow_batches()):
        now.advance(10)  # the model's share
        clock.step_done(8)
        now.advance(2)  # recording the step
    report = clock.report(step=5)
    assert report is not None
    assert report.steps == 5
    assert report.data_ms == pytest.approx(30.0)
    assert report.compute_ms == pytest.approx(10.0)
    assert report.copy_ms == 0.0  # no device copy on the CPU
    assert report.other_ms == pytest.approx(2.0)  # the last gap ends when the loop asks again
    parts = report.data_ms + report.copy_ms + report.compute_ms + report.other_ms
    assert parts == pytest.approx(report.step_ms)
    assert report.images_per_s == pytest.approx(40 / (report.step_ms * 5 / 1000))
    assert clock.report(step=5) is None  # nothing new since


def test_step_clock_counts_micro_batches_as_compute_and_drops_compile_steps() -> None:
    now = FakeClock()
    clock = StepClock(CPU, batch_size=4, interval_s=0.0, clock=now)
    for i, _ in enumerate(clock.timed(range(6))):
        now.advance(1000 if i < 2 else 5)  # the first step (two micro-batches) compiles
        if i % 2 == 1:  # gradient accumulation over two micro-batches
            clock.step_done(8, discard=(i == 1))
    report = clock.report(step=3)
    assert report is not None
    assert report.steps == 2
    assert report.compute_ms == pytest.approx(10.0)  # two micro-batches of 5 ms per step


def test_step_clock_does_not_book_the_gap_between_epochs() -> None:
    now = FakeClock()
    clock = StepClock(CPU, batch_size=4, interval_s=0.0, clock=now)
    for _epoch in range(2):
        for _ in clock.timed(range(2)):
            now.advance(4)
            clock.step_done(4)
        now.advance(500)  # evaluation and checkpoints
    report = clock.report(step=4)
    assert report is not None
    assert report.step_ms == pytest.approx(4.0)


# ---------------------------------------------------------------------------- planted runs


def spec(**train: Any) -> RunSpec:
    return RunSpec.from_dict(
        {
            "dataset": {"source": "sample:shapes", "limit": 600},
            "architecture": train.pop("architecture", {"preset": "small_cnn"}),
            "train": {"epochs": 1, "batch_size": 32, "device": "cpu", **train},
        }
    )


def finished_verdict(db: Path, run_spec: RunSpec) -> dict[str, Any]:
    record = run_job(run_spec, db, sample_system=False)
    assert record is not None and record.status == "completed", record
    with RunStore.open(db) as store:
        assert store.metrics(record.id, "time.step_ms"), "step timings are stored"
    return record.summary["bottleneck"]


def test_a_loader_slowed_on_purpose_is_called_input_bound(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    finish = BatchLoader._finish

    def slow_finish(self: BatchLoader, *args: Any) -> Any:
        time.sleep(0.15)  # a slow decoder or augmentation
        return finish(self, *args)

    monkeypatch.setattr(BatchLoader, "_finish", slow_finish)
    # a light model (pool and a linear head), so even a busy machine computes in far less
    # time than the planted 150 ms of loading (50 ms once lost to a suite run on a machine
    # loaded to twice its cores)
    light = {"preset": "custom", "layers": [{"kind": "global_avg_pool"}, {"kind": "linear"}]}
    verdict = finished_verdict(db_path, spec(max_steps=14, architecture=light))
    assert verdict["verdict"] == INPUT_BOUND, verdict
    assert verdict["evidence"]["data_share"] > 0.5
    named = {r["option"] for r in verdict["recommendations"]}
    assert "dataset.image_size" in named


def test_a_large_model_on_a_light_loader_is_called_compute_bound(db_path: Path) -> None:
    heavy = {"preset": "small_cnn", "width": 4.0}
    verdict = finished_verdict(db_path, spec(max_steps=14, architecture=heavy, channels_last=False))
    assert verdict["verdict"] == COMPUTE_BOUND, verdict
    assert verdict["evidence"]["compute_share"] > 0.6
    named = {r["option"] for r in verdict["recommendations"]}
    assert {"channels_last", "compile", "precision"} <= named


def test_training_runs_and_is_diagnosed_without_nvml(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pynvml

    def missing() -> None:
        raise pynvml.NVMLError(pynvml.NVML_ERROR_LIBRARY_NOT_FOUND)

    monkeypatch.setattr(pynvml, "nvmlInit", missing)
    record = run_job(spec(max_steps=12), db_path)  # the system sampler runs, without NVML
    assert record is not None and record.status == "completed"
    assert record.summary["bottleneck"]["verdict"] in {
        COMPUTE_BOUND,
        BALANCED,
        INPUT_BOUND,
        HOST_BOUND,
    }
    assert not any("GPU" in line for line in record.summary["bottleneck"]["evidence_text"])
