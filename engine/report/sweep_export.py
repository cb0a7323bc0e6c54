"""A sweep's CSV (one row per trial) and JSON (the search, trials, importance, every run).

The CSV is the trials table a spreadsheet wants: number, state, value, spread, runs,
epochs, reason, then one column per searched parameter. The JSON holds everything: the
sweep's search spec, every trial, parameter importance, and each of its runs as the run
export writes it (record, spec, every metric point and system sample, streamed).
"""

from __future__ import annotations

import csv
import json
from typing import Any, TextIO

from cnn_lab.engine import __version__
from cnn_lab.engine.report.export import write_run_object
from cnn_lab.engine.report.text import plain
from cnn_lab.engine.search.past import load_sweep
from cnn_lab.engine.store import RunRepository

TRIAL_COLUMNS = ("number", "state", "value", "spread", "run_ids", "epochs", "reason")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value) if value == value and abs(value) != float("inf") else ""
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value)
    return str(value)


def write_sweep_csv(
    store: RunRepository, ref: str | int, out: TextIO, storage: str | None = None
) -> int:
    """One row per trial; returns how many."""
    source = load_sweep(store, ref, storage)
    paths = [p.path for p in source.search.params]
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow((*TRIAL_COLUMNS, *paths))
    for t in source.trials:
        writer.writerow(
            (
                t.number,
                t.state,
                _cell(t.value),
                _cell(t.spread),
                " ".join(str(r) for r in t.run_ids),
                t.epochs,
                t.reason,
                *(_cell(t.params.get(p)) for p in paths),
            )
        )
    return len(source.trials)


def write_sweep_json(
    store: RunRepository, ref: str | int, out: TextIO, storage: str | None = None
) -> int:
    """The sweep as one JSON object, its runs' points streamed; returns how many trials."""
    source = load_sweep(store, ref, storage)
    head = plain(
        {
            "format": "cnn-lab sweep export",
            "version": 1,
            "cnn_lab": __version__,
            "experiment": {k: v for k, v in source.experiment.items() if k != "spec_json"},
            "search": source.search.model_dump(mode="json"),
            "storage": source.storage,
            "note": source.note,
            "queued": source.queued,
            "trials": [t.to_dict() for t in source.trials],
            "importance": source.importance,
        }
    )
    out.write(json.dumps(head, allow_nan=False)[:-1] + ', "runs": [')
    run_ids = store.experiment_runs(int(source.experiment["id"]))
    for index, run_id in enumerate(run_ids):
        out.write(", " if index else "")
        write_run_object(store, run_id, out)
    out.write("]}\n")
    return len(source.trials)


__all__ = ["TRIAL_COLUMNS", "write_sweep_csv", "write_sweep_json"]
