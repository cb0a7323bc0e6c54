"""The loop's time limit (the schedule runs on time, the run completes on time) and its
target accuracy (reaching it completes the run): what optimize's final run relies on."""

from __future__ import annotations

import torch

from cnn_lab.engine.specs import RunSpec
from cnn_lab.engine.store import status as st
from cnn_lab.engine.train.events import EpochEnd, RunFinished, StepEnd
from cnn_lab.engine.train.loop import train_events
from cnn_lab.engine.train.schedules import build_schedule


def tiny_spec(**train: object) -> RunSpec:
    return RunSpec.from_dict(
        {
            "dataset": {"source": "sample:shapes", "limit": 300},
            "train": {"batch_size": 32, "device": "cpu", **train},
        }
    )


def test_new_fields_leave_old_hashes_alone() -> None:
    assert RunSpec().spec_hash() == "87408ed31518ec38"
    timed = RunSpec.from_dict({"train": {"time_limit_s": 30}})
    target = RunSpec.from_dict({"train": {"stop_at_accuracy": 0.9}})
    assert len({RunSpec().spec_hash(), timed.spec_hash(), target.spec_hash()}) == 3


def test_advance_to_jumps_ahead_never_back_and_is_saved() -> None:
    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    schedule = build_schedule(optimizer, tiny_spec().train, total_steps=100, steps_per_epoch=10)
    schedule.advance_to(0.5)
    assert schedule.step_count == 50
    schedule.advance_to(0.3)  # behind: the steps already taken stand
    assert schedule.step_count == 50
    assert schedule.state_dict()["step"] == 50
    schedule.advance_to(1.0)  # time is up: the last step's (annealed) rate
    assert schedule.lr < 0.1 * 1e-3


def test_a_time_limit_completes_the_run_with_its_rate_annealed() -> None:
    # 0.05 s hold at most a few steps of 50 epochs: time, not epochs, ends the run.
    events = list(train_events(tiny_spec(epochs=50, lr=0.01, time_limit_s=0.05)))
    finished = events[-1]
    assert isinstance(finished, RunFinished)
    assert finished.status == st.COMPLETED
    assert "time limit" in (finished.reason or "")
    assert finished.summary["time_limit_reached"] is True
    epochs = [e for e in events if isinstance(e, EpochEnd)]
    steps = [e for e in events if isinstance(e, StepEnd)]
    assert 1 <= len(epochs) < 50  # validated once more after the last step
    assert steps[-1].lr < 0.01 * 1e-3  # the one-cycle ended at its end, not mid-cycle


def test_reaching_the_target_accuracy_completes_the_run() -> None:
    events = list(train_events(tiny_spec(epochs=5, stop_at_accuracy=0.01)))
    finished = events[-1]
    assert isinstance(finished, RunFinished)
    assert finished.status == st.COMPLETED
    assert "reached the target of 1.0%" in (finished.reason or "")
    assert finished.summary["target_reached_epoch"] == 1
    assert finished.summary["epochs"] == 1
