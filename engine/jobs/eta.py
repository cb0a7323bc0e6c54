"""When the queued runs will finish: each one's expected duration, played out over the slots.

A queued run has not measured anything yet, so its duration comes from the runs before it:
the most recent finished run of the same dataset, model and batch size on the same kind of
device and precision (seconds per epoch × its epochs; ``run_time_key`` is that rule, and
the Sweep panel's estimate matches past runs by it too). The queue is then simulated as the
JobQueue would dispatch it: each run starts on the candidate slot that frees up first (a
data-parallel run waits for all of its GPUs). A run without an estimate makes its slot's
later times unknown rather than wrong. Pure Python: the Jobs view asks it a few times a second.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Protocol, TypeVar

from cnn_lab.engine.errors import UserError
from cnn_lab.engine.jobs.queue import JobQueue, Slot
from cnn_lab.engine.specs import RunSpec
from cnn_lab.engine.store import status as st

Record = TypeVar("Record", bound="PastRun")


class PastRun(Protocol):
    """What the estimates read of a stored run (a RunRecord, or a test's stand-in)."""

    @property
    def status(self) -> str: ...
    @property
    def spec_json(self) -> str: ...


def run_time_key(spec: RunSpec) -> tuple[str, str, int, str, str]:
    """What decides how long an epoch of ``spec`` takes: runs with the same key time alike.

    The one rule both run-time estimates match past runs by: the job queue's ETAs
    (``estimate_duration``) and the Sweep panel's (engine/search/estimates.py). It is the
    queue's old key, the stricter of the two: the same data (its limit and split included)
    and model, and also the same batch size, precision and kind of device (``cuda:1`` and
    ``cuda`` are one kind). The Sweep panel used to match on data and model only, so a run on
    the CPU could time a sweep on a GPU, a hundredfold off. Keyed on the parsed spec rather
    than its JSON text, as the sweep was, so a run recorded before a field existed (its
    default filled in by RunSpec) still matches one written after.
    """
    train = spec.train
    return (
        json.dumps(spec.dataset.model_dump(mode="json"), sort_keys=True),
        json.dumps(spec.architecture.model_dump(mode="json"), sort_keys=True),
        train.batch_size,
        train.device.split(":", 1)[0],
        train.precision,
    )


@functools.lru_cache(maxsize=1024)
def _parsed(spec_json: str) -> RunSpec | None:
    """A stored spec, parsed once: the queue asks on every enqueue, the Sweep panel on every
    edit, each over the same recent runs (RunSpec is frozen, so sharing it is safe)."""
    try:
        return RunSpec.from_json(spec_json)
    except UserError:
        return None


def similar_runs(spec: RunSpec, history: Iterable[Record]) -> Iterator[tuple[Record, RunSpec]]:
    """The completed runs of ``history`` with ``spec``'s run-time key, each with its spec,
    in ``history``'s order (newest first, as the store lists them)."""
    wanted = run_time_key(spec)
    for record in history:
        if record.status != st.COMPLETED:
            continue
        past = _parsed(record.spec_json)
        if past is not None and run_time_key(past) == wanted:
            yield record, past


def estimate_duration(spec_json: str, history: Iterable[Any]) -> float | None:
    """Seconds the run of ``spec_json`` should take, from ``history`` (RunRecords, newest first).

    The newest similar run (``run_time_key``) whose summary says how many epochs it trained
    in how long, scaled to this run's epochs. None when there is none, or the spec is broken.
    """
    spec = _parsed(spec_json)
    if spec is None:
        return None
    for record, _past in similar_runs(spec, history):
        summary = record.summary or {}
        done, seconds = summary.get("epochs"), summary.get("wall_time_s")
        if done and seconds:
            return float(seconds) / float(done) * spec.train.epochs
    return None


def finish_times(
    queue: JobQueue,
    busy_for: Mapping[Slot, float | None],
    durations: Mapping[int, float | None],
) -> dict[int, float | None]:
    """Seconds from now until each queued run finishes (None where it cannot be told).

    ``busy_for`` maps a busy slot to its running job's ETA (None if unknown); free slots are
    absent. ``durations`` maps queued run ids to their estimated durations.
    """
    free_at: dict[Slot, float] = {
        slot: (math.inf if busy_for[slot] is None else float(busy_for[slot] or 0.0))
        if slot in busy_for
        else 0.0
        for slot in queue.slots
    }
    finished: dict[int, float | None] = {}
    for entry in queue.entries():
        candidates = queue.candidates(entry)
        if not candidates:
            finished[entry.run_id] = None
            continue
        wide = entry.world_size > 1 and len(candidates) > 1
        if wide:
            chosen = list(candidates)
            start = max(free_at[s] for s in chosen)
        else:
            slot = min(candidates, key=lambda s: free_at[s])
            chosen, start = [slot], free_at[slot]
        duration = durations.get(entry.run_id)
        end = math.inf if duration is None else start + duration
        for slot in chosen:
            free_at[slot] = end
        finished[entry.run_id] = None if math.isinf(end) else end
    return finished
