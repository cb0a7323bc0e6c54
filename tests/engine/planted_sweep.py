"""A sweep recorded the real way (``run_sweep``: study, experiment, one run per trial) whose
trials do not train: each run gets one planted epoch (``val.accuracy`` and ``train.loss``)
and its best accuracy, written to the store as training would, so the study, the runs and
their curves agree in milliseconds.

Shared by the tests of sweep reports and of opening past sweeps.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cnn_lab.engine.search import SearchSpec
from cnn_lab.engine.search.study import SweepResult, run_sweep
from cnn_lab.engine.specs import RunSpec
from cnn_lab.engine.store import MetricPoint, RunRecord, RunStore
from cnn_lab.engine.store import status as st
from cnn_lab.engine.train.events import EpochEnd

BASE: dict[str, Any] = {
    "dataset": {"source": "sample:shapes", "limit": 300},
    "architecture": {"preset": "small_cnn"},
    "train": {"epochs": 1, "batch_size": 32, "device": "cpu"},
}
GRID = [
    {"path": "train.lr", "values": [0.01, 0.05]},
    {"path": "train.batch_size", "values": [16, 32]},
]


def score(spec: RunSpec) -> float:
    """Accuracy planted for a trial: the learning rate matters, the batch size barely."""
    return round(0.5 + 5 * spec.train.lr + spec.train.batch_size / 10_000, 4)


class StoredEpochTrainer:
    """``run_job``'s call without training: one epoch scored by ``score``, stored and sent."""

    def __init__(self, score: Callable[[RunSpec], float] = score) -> None:
        self.score = score

    def __call__(
        self,
        spec: RunSpec,
        db_path: str | Path,
        run_id: int | None = None,
        *,
        emit: Callable[[Any], None],
        should_stop: Callable[[], bool],
        sample_system: bool,
    ) -> RunRecord:
        assert run_id is not None
        value = self.score(spec)
        emit(EpochEnd(1, 10, 1.0, value, 1.0, value, 0.1, 100.0))
        with RunStore.open(db_path) as store:
            store.mark_running(run_id, pid=1, device="cpu")
            store.add_metrics(
                [
                    MetricPoint(run_id, 10, 1, "val.accuracy", value, time.time()),
                    MetricPoint(run_id, 10, 1, "train.loss", 1 - value, time.time()),
                ]
            )
            store.finish_run(run_id, st.COMPLETED, summary={"best_val_accuracy": value})
            return store.get_run(run_id)


def planted_sweep(
    db_path: Path,
    *,
    name: str = "planted",
    params: list[dict[str, Any]] | None = None,
    **fields: Any,
) -> tuple[SearchSpec, SweepResult]:
    """Run a grid (by default 2 × 2 points) with planted scores; its search and result."""
    search = SearchSpec.from_dict(
        {"base": BASE, "params": params or GRID, "strategy": "grid", "name": name, **fields}
    )
    return search, run_sweep(search, db_path, trainer=StoredEpochTrainer(), sample_system=False)
