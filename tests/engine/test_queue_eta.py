"""Queue ETAs: durations learnt from finished runs, played out over the job slots."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from cnn_lab.engine.jobs.eta import estimate_duration, finish_times
from cnn_lab.engine.jobs.queue import JobQueue, QueueEntry


def spec_json(epochs: int = 4, batch: int = 64, device: str = "cpu", source: str = "a") -> str:
    return json.dumps(
        {
            "dataset": {"source": source},
            "architecture": {"preset": "small_cnn"},
            "train": {"epochs": epochs, "batch_size": batch, "device": device},
        }
    )


@dataclass
class Record:
    spec_json: str
    status: str = "completed"
    summary: dict[str, Any] = field(default_factory=dict)


def test_duration_scales_the_latest_similar_run_by_epochs() -> None:
    history = [
        Record(spec_json(source="b"), summary={"epochs": 2, "wall_time_s": 999.0}),
        Record(spec_json(epochs=2), summary={"epochs": 2, "wall_time_s": 30.0}),
        Record(spec_json(epochs=2), summary={"epochs": 2, "wall_time_s": 80.0}),  # older
    ]
    assert estimate_duration(spec_json(epochs=10), history) == pytest.approx(150.0)


def test_no_similar_run_means_no_estimate() -> None:
    history = [
        Record(spec_json(batch=32), summary={"epochs": 2, "wall_time_s": 30.0}),
        Record(spec_json(device="cuda:0"), summary={"epochs": 2, "wall_time_s": 30.0}),
        Record(spec_json(), status="failed", summary={"epochs": 1, "wall_time_s": 5.0}),
    ]
    assert estimate_duration(spec_json(), history) is None
    assert estimate_duration("not json", history) is None


def test_cuda_device_index_does_not_matter_for_the_estimate() -> None:
    history = [Record(spec_json(device="cuda:1"), summary={"epochs": 1, "wall_time_s": 10.0})]
    assert estimate_duration(spec_json(epochs=3, device="cuda"), history) == pytest.approx(30.0)


def queue_of(
    *entries: QueueEntry, slots: tuple[str, ...] = ("cuda:0", "cuda:1", "cpu")
) -> JobQueue:
    queue = JobQueue(slots)
    for entry in entries:
        queue.add(entry)
    return queue


def test_runs_take_the_slot_that_frees_first() -> None:
    queue = queue_of(
        QueueEntry(1, "cuda"), QueueEntry(2, "cuda"), QueueEntry(3, "cuda"), QueueEntry(4, "cpu")
    )
    # cuda:0 busy for 100 s, cuda:1 for 20 s, the CPU is free
    times = finish_times(
        queue, {"cuda:0": 100.0, "cuda:1": 20.0}, {1: 50.0, 2: 50.0, 3: 10.0, 4: 5.0}
    )
    assert times == {1: 70.0, 2: 120.0, 3: 110.0, 4: 5.0}


def test_an_unknown_duration_makes_only_its_slots_later_runs_unknown() -> None:
    queue = queue_of(QueueEntry(1, "cpu"), QueueEntry(2, "cpu"), QueueEntry(3, "cuda:0"))
    times = finish_times(queue, {}, {1: None, 2: 10.0, 3: 10.0})
    assert times == {1: None, 2: None, 3: 10.0}


def test_a_running_job_without_eta_delays_its_slot_indefinitely() -> None:
    queue = queue_of(QueueEntry(1, "cuda:0"))
    assert finish_times(queue, {"cuda:0": None}, {1: 5.0}) == {1: None}


def test_a_data_parallel_run_waits_for_all_its_gpus() -> None:
    queue = queue_of(QueueEntry(1, "cuda", world_size=2), QueueEntry(2, "cuda"))
    times = finish_times(queue, {"cuda:0": 10.0, "cuda:1": 40.0}, {1: 100.0, 2: 1.0})
    assert times == {1: 140.0, 2: 141.0}
