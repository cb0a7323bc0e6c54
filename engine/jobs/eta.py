"""When the queued runs will finish: each one's expected duration, played out over the slots.

A queued run has not measured anything yet, so its duration comes from the runs before it:
the most recent finished run of the same dataset, model and batch size on the same kind of
device (seconds per epoch × its epochs). The queue is then simulated as the JobQueue would
dispatch it: each run starts on the candidate slot that frees up first (a data-parallel run
waits for all of its GPUs). A run without an estimate makes its slot's later times unknown
rather than wrong. Pure Python: the Jobs view asks it a few times a second.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

from cnn_lab.engine.jobs.queue import JobQueue, Slot
from cnn_lab.engine.store import status as st


def _key(spec: Mapping[str, Any]) -> tuple[Any, ...]:
    train = spec.get("train", {})
    architecture = spec.get("architecture", {})
    return (
        json.dumps(spec.get("dataset", {}), sort_keys=True),
        json.dumps(architecture, sort_keys=True),
        train.get("batch_size"),
        str(train.get("device", "auto")).split(":", 1)[0],
        train.get("precision"),
    )


def estimate_duration(spec_json: str, history: Iterable[Any]) -> float | None:
    """Seconds the run of ``spec_json`` should take, from ``history`` (RunRecords, newest first).

    None when no finished run trained the same data and model with the same batch size and
    precision on the same kind of device.
    """
    try:
        spec = json.loads(spec_json)
    except ValueError:
        return None
    wanted = _key(spec)
    epochs = int(spec.get("train", {}).get("epochs", 1))
    for record in history:
        if record.status != st.COMPLETED:
            continue
        summary = record.summary or {}
        done, seconds = summary.get("epochs"), summary.get("wall_time_s")
        if not done or not seconds:
            continue
        try:
            same = _key(json.loads(record.spec_json)) == wanted
        except ValueError:
            continue
        if same:
            return float(seconds) / float(done) * epochs
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
