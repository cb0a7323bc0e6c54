"""The Sweep panel's estimate, as the engine says it: trials, epochs, trials at once, and the
time from a probe or from the newest past run that did the same work, found by the same key
the job queue's ETAs use (engine/jobs/eta.py's run_time_key)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from cnn_lab.engine.jobs.eta import estimate_duration, run_time_key, similar_runs
from cnn_lab.engine.search.estimates import (
    MeasuredEpoch,
    epochs_per_trial,
    estimate_text,
    expected_parallel,
    seconds_per_epoch,
    trial_count,
)
from cnn_lab.engine.search.spec import SearchSpec
from cnn_lab.engine.specs import RunSpec
from cnn_lab.engine.util.durations import format_duration


def run_spec(**train: Any) -> RunSpec:
    settings = {"epochs": 2, "batch_size": 32, "device": "cpu", **train}
    return RunSpec.from_dict(
        {"dataset": {"source": "sample:shapes", "limit": 200}, "train": settings}
    )


@dataclass
class Run:
    """A stored run as the estimates read it (RunRecord's fields)."""

    id: int
    spec_json: str
    duration_s: float | None
    summary: dict[str, Any] = field(default_factory=dict)
    status: str = "completed"


def run(run_id: int, spec: RunSpec, duration_s: float, epochs: int, **kw: Any) -> Run:
    summary = {"epochs": epochs, "wall_time_s": duration_s * 0.9}
    return Run(run_id, spec.to_json(), duration_s, summary, **kw)


def search(base: RunSpec | None = None, **fields: Any) -> SearchSpec:
    doc = {
        "base": base or run_spec(),
        "params": [{"path": "train.lr", "values": [0.01, 0.05, 0.1]}],
        "strategy": "grid",
        **fields,
    }
    return SearchSpec.from_dict(doc)


def test_the_key_is_what_decides_an_epochs_time() -> None:
    base = run_spec()
    assert run_time_key(base) == run_time_key(run_spec(lr=0.5, epochs=9))  # the recipe
    assert run_time_key(base) != run_time_key(run_spec(batch_size=64))
    assert run_time_key(base) != run_time_key(run_spec(device="cuda"))
    assert run_time_key(base) != run_time_key(run_spec(precision="bf16"))
    assert run_time_key(run_spec(device="cuda:1")) == run_time_key(run_spec(device="cuda"))
    # A spec stored without the fields it has defaults for is the same work.
    sparse = json.dumps(
        {
            "dataset": {"source": "sample:shapes", "limit": 200},
            "train": {"batch_size": 32, "device": "cpu"},
        }
    )
    history = [Run(1, sparse, 10.0, {"epochs": 2, "wall_time_s": 8.0})]
    assert [r.id for r, _ in similar_runs(base, history)] == [1]


def test_seconds_per_epoch_takes_the_newest_run_of_the_same_work() -> None:
    base = run_spec()
    history = [
        run(9, run_spec(device="cuda"), 5.0, 5),  # another device: a hundredfold off
        run(8, run_spec(batch_size=128), 5.0, 5),  # another batch size
        run(7, run_spec(), 30.0, 3, status="failed"),  # not finished
        run(6, run_spec(lr=0.3), 60.0, 3),  # the newest alike: lr does not matter
        run(5, run_spec(), 99.0, 1),  # older
    ]
    assert seconds_per_epoch(base, history) == (pytest.approx(20.0), 6)
    assert seconds_per_epoch(run_spec(precision="bf16"), history) is None
    # No epoch count in its summary: the spec's epochs divide the whole duration.
    bare = Run(3, run_spec(epochs=4).to_json(), 40.0)
    assert seconds_per_epoch(base, [bare]) == (pytest.approx(10.0), 3)


def test_the_queue_and_the_sweep_match_the_same_run() -> None:
    """One key: the run the sweep estimate names is the one the queue's ETA is scaled from."""
    history = [
        run(4, run_spec(device="cuda:0"), 10.0, 2),
        run(3, run_spec(batch_size=16), 10.0, 2),
        run(2, run_spec(lr=0.2), 40.0, 4),
    ]
    spec = run_spec(epochs=10)
    per_epoch = seconds_per_epoch(spec, history)
    assert per_epoch is not None and per_epoch[1] == 2
    # The queue scales that run's training time (its summary: 36 s for 4 epochs) to 10 epochs.
    assert estimate_duration(spec.to_json(), history) == pytest.approx(90.0)
    assert estimate_duration(run_spec(precision="bf16").to_json(), history) is None


def test_trials_and_epochs_per_trial() -> None:
    assert trial_count(search()) == 3
    assert trial_count(search(trials=2)) == 2  # a grid cut short
    assert trial_count(search(trials=10)) == 3  # never more than the grid
    assert trial_count(search(strategy="tpe", trials=7)) == 7
    assert trial_count(search(strategy="random", timeout_s=60.0)) is None
    epochs = search(params=[{"path": "train.epochs", "values": [2, 4]}], seeds=3)
    assert epochs_per_trial(epochs) == pytest.approx(9.0)  # mean 3 epochs, three seeds
    assert epochs_per_trial(search()) == pytest.approx(2.0)


def test_trials_at_once_follow_the_free_slots() -> None:
    auto = search(run_spec(device="auto"))
    assert expected_parallel(auto, None, cpu=True) == 1  # no queue known
    assert expected_parallel(auto, ["cuda:0", "cuda:1", "cpu"], cpu=False) == 2
    assert expected_parallel(auto, ["cuda:0", "cuda:1", "cpu"], cpu=True) == 3
    assert expected_parallel(search(run_spec(device="cpu")), ["cuda:0", "cpu"], cpu=False) == 1


def test_the_estimate_sentence() -> None:
    s = search()
    assert estimate_text(search(strategy="tpe", timeout_s=60.0)) == (
        "The sweep runs until its time is up."
    )
    assert estimate_text(s) == "3 trials; measure an epoch to estimate the time."

    probe = MeasuredEpoch.from_probe(
        s.base.spec_hash(), {"epoch_s": 10, "setup_s": 5, "device": "cpu"}
    )
    total = format_duration((10 * 2 + 5) * 3 / 3, "rough")
    assert estimate_text(s, at_once=3, measured=probe) == (
        f"3 trials, about {total} with 3 at once (10.0 s an epoch and 5.0 s to set a run up, "
        "measured on cpu)."
    )
    pruned = search(pruner="median")
    assert "at most (pruning stops some early)" in estimate_text(pruned, measured=probe)

    # A probe of another base does not count; then the history is read, and only then.
    read: list[bool] = []

    def history() -> list[Run]:
        read.append(True)
        return [run(12, run_spec(), 30.0, 3)]

    assert estimate_text(s, measured=probe, history=history).startswith("3 trials, about")
    assert not read
    other = search(run_spec(batch_size=8))
    assert estimate_text(other, measured=probe, history=history) == (
        "3 trials; measure an epoch to estimate the time."
    )
    assert read == [True]
    assert estimate_text(s, history=history) == (
        f"3 trials, about {format_duration(10.0 * 2 * 3, 'rough')} (10.0 s an epoch in run 12, "
        "same data, model, batch size and device)."
    )
