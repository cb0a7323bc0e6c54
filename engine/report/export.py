"""CSV and JSON exports: every stored point, streamed from the database to the file.

A long run holds millions of metric points, so nothing here builds them in memory: rows go
from an SQLite cursor straight into the writer. NaN (stored as NULL) becomes an empty CSV
cell or a JSON ``null``, so both files stay strict and load anywhere.

Run CSV: one row per metric point, ``run_id,key,step,epoch,value,time``.
Run JSON: the run record and its spec, artifacts, every metric point and every system
sample, as ``{"metrics": {key: [[step, epoch, value, time], ...]}, ...}``.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Iterator
from typing import Any, TextIO

from cnn_lab.engine import __version__
from cnn_lab.engine.report.text import plain
from cnn_lab.engine.store import RunRepository

METRIC_COLUMNS = ("run_id", "key", "step", "epoch", "value", "time")


def _finite(value: Any) -> Any:
    return value if not isinstance(value, float) or math.isfinite(value) else None


def metric_rows(store: RunRepository, run_id: int) -> Iterator[tuple[Any, ...]]:
    """Every metric point of the run: by key, then step, then the order written."""
    return store.metric_rows(run_id)


def write_run_csv(store: RunRepository, run_id: int, out: TextIO) -> int:
    """One row per metric point; returns how many rows were written (header not counted)."""
    store.get_run(run_id)  # RunNotFound before anything is written
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(METRIC_COLUMNS)
    count = 0
    for run, key, step, epoch, value, when in metric_rows(store, run_id):
        value = _finite(value)
        writer.writerow((run, key, step, epoch, "" if value is None else repr(value), repr(when)))
        count += 1
    return count


def run_document(store: RunRepository, run_id: int) -> dict[str, Any]:
    """The run's record, spec and artifacts (everything but the points), JSON-ready."""
    record = store.get_run(run_id)
    info = record.to_dict()
    spec_json = info.pop("spec_json")
    return plain(
        {
            "run": info,
            "spec": json.loads(spec_json) if spec_json else None,
            "artifacts": store.artifacts(run_id),
        }
    )


def write_run_json(store: RunRepository, run_id: int, out: TextIO) -> int:
    """The run as one JSON object, points streamed; returns how many metric points."""
    head = {"format": "cnn-lab run export", "version": 1, "cnn_lab": __version__}
    count = write_run_object(store, run_id, out, head)
    out.write("\n")
    return count


def write_run_object(
    store: RunRepository, run_id: int, out: TextIO, head: dict[str, Any] | None = None
) -> int:
    """One run's JSON object (``head``'s keys first), metrics and samples streamed."""
    document = dict(head or {})
    document.update(run_document(store, run_id))
    out.write(json.dumps(document, allow_nan=False)[:-1])  # leave the object open
    out.write(', "metric_columns": ["step", "epoch", "value", "time"], "metrics": ')
    count = _write_grouped(
        out,
        (
            (key, (step, epoch, _finite(value), when))
            for _, key, step, epoch, value, when in metric_rows(store, run_id)
        ),
    )
    out.write(', "system_columns": ["time", "value"], "system_samples": ')
    _write_grouped(
        out,
        ((key, (when, _finite(value))) for key, when, value in store.sample_rows(run_id)),
    )
    out.write("}")
    return count


def _write_grouped(out: TextIO, rows: Iterable[tuple[str, tuple[Any, ...]]]) -> int:
    """``{key: [row, ...], ...}`` from rows sorted by key, written as they come."""
    out.write("{")
    current: str | None = None
    count = 0
    for key, row in rows:
        if key != current:
            out.write("]" if current is not None else "")
            out.write(", " if current is not None else "")
            out.write(json.dumps(key) + ": [")
            current = key
        else:
            out.write(", ")
        out.write(json.dumps(row, allow_nan=False))
        count += 1
    out.write("]}" if current is not None else "}")
    return count


__all__ = [
    "METRIC_COLUMNS",
    "metric_rows",
    "run_document",
    "write_run_csv",
    "write_run_json",
    "write_run_object",
]
