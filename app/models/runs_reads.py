"""What the Runs panel reads from the store, each in one call on the store's thread.

The panel hands these functions to the window's store link (app/store_link.py), so a
listing of 10,000 runs or a long run's curves is read off the GUI thread and arrives whole:
the table and the charts never show half of one answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cnn_lab.engine.store import MetricPoint, RunRecord, RunRepository, artifact_kinds
from cnn_lab.engine.store.run_query import RunQuery


@dataclass(frozen=True)
class Listing:
    """The runs a query selects, and whether the store holds any run at all (asked only when
    an unfiltered listing is empty, for the empty state's sentence)."""

    records: list[RunRecord]
    stored: bool


@dataclass(frozen=True)
class RunCurvesRead:
    """The current run, its loss and accuracy curves, and whether it kept weights."""

    record: RunRecord
    loss: list[MetricPoint]
    accuracy: list[MetricPoint]
    has_weights: bool


def read_listing(
    store: RunRepository, query: RunQuery, summary_keys: Sequence[str], *, ask_stored: bool
) -> Listing:
    records = store.query_runs(query, summary_keys=summary_keys)
    stored = bool(records) or (ask_stored and bool(store.list_runs(limit=1)))
    return Listing(records, stored)


def read_run_curves(store: RunRepository, run_id: int) -> RunCurvesRead:
    return RunCurvesRead(
        record=store.get_run(run_id),
        loss=store.curve(run_id, "train.loss"),
        accuracy=store.curve(run_id, "val.accuracy"),
        has_weights=store.has_artifact(run_id, artifact_kinds.WEIGHTS),
    )


__all__ = ["Listing", "RunCurvesRead", "read_listing", "read_run_curves"]
