"""How many trials a sweep runs and about how long they take, said before it launches.

The time comes from one of two measurements of an epoch of the sweep's base run: a probe
(``MeasuredEpoch``: a few steps and a validation pass timed on this machine, plus the time to
set a run up), or else the newest finished run that did the same work (engine/jobs/eta.py's
``run_time_key``, the rule the job queue's ETAs match past runs by too). Without either the
sentence says to measure rather than guess. Trials that train at once divide the time (the
slot plan of slots.py, without its memory estimate, so the figure errs long).

Pure functions over specs and stored records: the Sweep panel shows ``estimate_text`` under
its grid, and the CLI could print the same sentence.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from statistics import fmean
from typing import Any, Protocol

from cnn_lab.engine.jobs.eta import PastRun, similar_runs
from cnn_lab.engine.search.slots import GpuMemory, plan_slots
from cnn_lab.engine.search.spec import SearchSpec
from cnn_lab.engine.specs import RunSpec
from cnn_lab.engine.util.durations import format_duration

RECENT_RUNS = 50
"""How far back (finished runs, newest first) the estimate looks for one that did the same work."""


class TimedRun(PastRun, Protocol):
    """A finished run as the estimate reads it: a RunRecord has all of these."""

    @property
    def id(self) -> int: ...
    @property
    def duration_s(self) -> float | None: ...
    @property
    def summary(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class MeasuredEpoch:
    """An epoch of one base spec timed by the probe (the tuner's ``epoch-time`` command)."""

    spec_hash: str
    epoch_s: float
    setup_s: float
    device: str

    @classmethod
    def from_probe(cls, spec_hash: str, result: dict[str, Any]) -> MeasuredEpoch:
        """From the probe's result dict (``epoch_s``, ``device``, and ``setup_s`` when known)."""
        return cls(
            spec_hash,
            float(result["epoch_s"]),
            float(result.get("setup_s", 0.0)),
            str(result["device"]),
        )


def seconds_per_epoch(base: RunSpec, history: Iterable[TimedRun]) -> tuple[float, int] | None:
    """Seconds an epoch took in the newest completed run of ``history`` that did the same work.

    Returns (seconds, run id), or None when no such run exists: then the estimate says so
    rather than guess. The run's whole duration (data loading included) is divided by the
    epochs it trained (its summary's count, else its spec's), so the estimate errs long, which
    is the useful side to err on.
    """
    for record, spec in similar_runs(base, history):
        epochs = (record.summary or {}).get("epochs") or spec.train.epochs
        if record.duration_s and epochs:
            return record.duration_s / epochs, record.id
    return None


def trial_count(search: SearchSpec) -> int | None:
    """Trials the search will run: its grid, else its budget (None if only timed)."""
    if search.strategy == "grid":
        return min(search.trials or search.grid_size(), search.grid_size())
    return search.trials


def epochs_per_trial(search: SearchSpec) -> float:
    """The mean epochs a trial trains, counting a searched ``train.epochs`` and seed repeats."""
    epochs: float = search.base.train.epochs
    for param in search.params:
        grid = param.grid()
        if param.path == "train.epochs" and grid:
            epochs = fmean(float(e) for e in grid)
    return epochs * search.seeds


def expected_parallel(search: SearchSpec, free_slots: Sequence[str] | None, *, cpu: bool) -> int:
    """Trials at once as the sweep's child will plan them, at least: one per free GPU (+ CPU).

    The same plan (slots.py) without the memory estimate: the child may pack more onto a GPU
    when the estimate allows; the window does not load torch to find out, so the estimate
    errs long. ``free_slots`` is the job queue's free slots (None: the queue is not known,
    one at a time).
    """
    if free_slots is None:
        return 1
    gpus = [
        GpuMemory(int(slot.split(":", 1)[1]), "", 0)
        for slot in free_slots
        if slot.startswith("cuda:")
    ]
    train = search.base.train
    return plan_slots(train.device, train.world_size, gpus, None, cpu=cpu).parallel


def estimate_text(
    search: SearchSpec,
    *,
    at_once: int = 1,
    measured: MeasuredEpoch | None = None,
    history: Callable[[], Iterable[TimedRun]] = tuple,
) -> str:
    """The sentence under the grid: how many trials, and about how long they take.

    A probe of this very base spec is preferred (it also knows what setting a run up costs);
    else ``history()`` is read (only then: it opens the store) for a run that did the same
    work. Pruning makes the time an upper bound.
    """
    count = trial_count(search)
    if count is None:
        return "The sweep runs until its time is up."
    trials = f"{count} trial{'s' if count != 1 else ''}"
    per_trial = epochs_per_trial(search) * (search.folds or 1)
    share = f" with {at_once} at once" if at_once > 1 else ""
    upper = " at most (pruning stops some early)" if search.pruner != "none" else ""
    if measured is not None and measured.spec_hash == search.base.spec_hash():
        runs = search.seeds * (search.folds or 1)  # runs per trial, each set up anew
        total = (measured.epoch_s * per_trial + measured.setup_s * runs) * count / at_once
        return (
            f"{trials}, about {format_duration(total, 'rough')}{upper}{share} "
            f"({measured.epoch_s:.1f} s an epoch and {measured.setup_s:.1f} s to set a run "
            f"up, measured on {measured.device})."
        )
    past = seconds_per_epoch(search.base, history())
    if past is None:
        return f"{trials}; measure an epoch to estimate the time."
    seconds, run_id = past
    total = seconds * per_trial * count / at_once
    return (
        f"{trials}, about {format_duration(total, 'rough')}{upper}{share} "
        f"({seconds:.1f} s an epoch in run {run_id}, same data, model, batch size and device)."
    )
