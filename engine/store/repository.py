"""``RunRepository``: every read and write the engine and the app make of the run store.

Why a protocol: a lab's runs belong in one place that every machine writes to, and the
embedded SQLite file cannot be that place (its WAL mode does not work on a network disk).
The engine and the app therefore depend on this interface, not on a backend: ``RunStore``
(SQLite, engine/store/store.py) is the one implementation today, and the contract suite
(tests/store/test_contract.py) is written against the protocol, once, so that a second
backend passes the same tests the way Optuna tests each of its storages.

What is deliberately absent: any connection, cursor or SQL. ``RunStore.sqlite_db`` exists
for engine/store's own SQLite modules and tests; nothing outside engine/store uses it
(tests/store/test_contract.py checks the source tree). Queries the panels and reports need
(a downsampled curve, the keys of several runs, a gauge summary, a streamed export) are
methods here, so each backend answers them with its own SQL.

The records (``RunRecord``, ``MetricPoint``, ``SystemSample``, ``GaugeStats``) are plain
frozen dataclasses; every path the store returns is absolute (artifact_paths.py).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from cnn_lab.engine.store.run_query import RunQuery
from cnn_lab.engine.store.store import (
    DEFAULT_BUCKETS,
    GaugeStats,
    MetricPoint,
    RunRecord,
    SystemSample,
)


@runtime_checkable
class RunRepository(Protocol):
    """The run store as the engine and the app use it (see the module docstring)."""

    # ----------------------------------------------------------------- the store itself

    @property
    def path(self) -> Path:
        """Where the store lives on this machine; run files are kept beside it."""
        ...

    @property
    def location(self) -> str:
        """What ``open_store`` opens this store from (a SQLite file's path or a
        ``postgresql://`` address), for what must find the same store: a sweep's study,
        a child process."""
        ...

    def close(self) -> None:
        """Release the store's connection; safe to call twice."""
        ...

    def integrity_ok(self) -> bool:
        """Whether the backend's own consistency check passes."""
        ...

    def __enter__(self) -> RunRepository: ...

    def __exit__(self, *exc_info: object) -> None: ...

    # ------------------------------------------------------------------- runs: writing

    def create_run(
        self,
        *,
        spec_json: str,
        spec_hash: str,
        name: str = "",
        dataset: str = "",
        model: str = "",
        device: str = "",
        experiment_id: int | None = None,
        status: str = "queued",
    ) -> int:
        """Record a new run; its id."""
        ...

    def rename_run(self, run_id: int, name: str) -> None: ...

    def set_note(self, run_id: int, note: str) -> None: ...

    def set_archived(self, run_ids: Iterable[int], archived: bool) -> None: ...

    def set_tags(self, run_id: int, tags: Iterable[str]) -> None: ...

    def delete_run_rows(self, run_ids: Iterable[int]) -> list[int]:
        """Delete ended runs' rows (not their files); refused while one is active."""
        ...

    def mark_running(self, run_id: int, *, pid: int, device: str, host: str | None = None) -> None:
        """The run's job started: its process, device and host, and its first heartbeat."""
        ...

    def heartbeat(self, run_id: int, *, now: float | None = None) -> None:
        """The run's job is alive (a run whose heartbeat grows old is swept as crashed)."""
        ...

    def finish_run(
        self,
        run_id: int,
        status: str,
        *,
        reason: str | None = None,
        hint: str | None = None,
        summary: dict[str, Any] | None = None,
    ) -> None:
        """The run ended: its final status, why, and its summary merged in."""
        ...

    def update_summary(self, run_id: int, summary: dict[str, Any]) -> None: ...

    def update_spec(self, run_id: int, spec_json: str, spec_hash: str) -> None: ...

    def queue_again(self, run_id: int) -> str | None:
        """Show an ended run as queued to resume; the status it had (None: not ended)."""
        ...

    def unqueue(self, run_id: int, status: str) -> bool:
        """Give a run queued again its ended ``status`` back; False once it has started."""
        ...

    def mark_crashed_if_active(self, run_id: int, reason: str) -> bool:
        """Crash the run if it is still queued or running; whether it was."""
        ...

    def sweep_stale(self, now: float | None = None) -> list[int]:
        """Crash every running run whose job is gone; their ids."""
        ...

    # ------------------------------------------------------------------- runs: reading

    def get_run(self, run_id: int) -> RunRecord:
        """One run; raises RunNotFound for an unknown id."""
        ...

    def list_runs(
        self, *, status: str | None = None, limit: int = 1000, offset: int = 0
    ) -> list[RunRecord]: ...

    def query_runs(
        self, query: RunQuery, *, summary_keys: Sequence[str] | None = None
    ) -> list[RunRecord]:
        """The runs a Runs-panel query matches (text, fields, status, tags), in its order."""
        ...

    def tags_in_use(self) -> list[tuple[str, int]]:
        """Every tag with how many runs carry it."""
        ...

    # ------------------------------------------------------------------------- metrics

    def add_metrics(self, rows: Iterable[MetricPoint]) -> None: ...

    def write_batch(
        self,
        run_id: int,
        metrics: Iterable[MetricPoint],
        samples: Iterable[SystemSample],
        *,
        now: float | None = None,
    ) -> None:
        """A job's batch: points, samples and the heartbeat in one transaction."""
        ...

    def truncate_metrics(self, run_id: int, after_step: int) -> int:
        """Drop the run's points past ``after_step`` (a resume); how many were dropped."""
        ...

    def metrics(self, run_id: int, key: str) -> list[MetricPoint]: ...

    def last_metric(self, run_id: int, key: str) -> MetricPoint | None: ...

    def metric_keys(self, run_id: int) -> dict[str, int]:
        """Each key the run logged, with its number of points."""
        ...

    def keys_logged(self, run_ids: Iterable[int]) -> list[str]:
        """Every key any of the runs logged, sorted, without counting points."""
        ...

    def curve(self, run_id: int, key: str, buckets: int = DEFAULT_BUCKETS) -> list[MetricPoint]:
        """The metric as a chart draws it: each step range's smallest and largest point."""
        ...

    def best_metric(self, run_id: int, key: str, *, highest: bool = True) -> float | None: ...

    def metric_rows(self, run_id: int, batch: int = 5000) -> Iterator[tuple[Any, ...]]:
        """Every point as (run_id, key, step, epoch, value, time), streamed."""
        ...

    def system_samples(self, run_id: int, key: str) -> list[SystemSample]: ...

    def gauge_stats(self, run_id: int) -> list[GaugeStats]: ...

    def sample_rows(self, run_id: int, batch: int = 5000) -> Iterator[tuple[Any, ...]]:
        """Every system sample as (key, time, value), streamed."""
        ...

    # ------------------------------------------------------------ artifacts and experiments

    def add_artifact(
        self, run_id: int, *, path: str | os.PathLike[str], kind: str, sha256: str, bytes: int
    ) -> int: ...

    def set_artifact(
        self, run_id: int, *, path: str | os.PathLike[str], kind: str, sha256: str, bytes: int
    ) -> int:
        """Record the run's one file of ``kind``, replacing an earlier one."""
        ...

    def artifacts(self, run_id: int) -> list[dict[str, Any]]:
        """The run's files, oldest first, with absolute paths."""
        ...

    def has_artifact(self, run_id: int, kind: str) -> bool: ...

    def find_or_create_experiment(self, name: str, *, kind: str, spec_json: str = "") -> int:
        """The oldest experiment of ``kind`` called ``name``, created if none (atomically)."""
        ...

    def experiments(self, kind: str) -> list[dict[str, Any]]: ...

    def experiment(self, experiment_id: int, kind: str) -> dict[str, Any] | None: ...

    def experiment_runs(self, experiment_id: int) -> list[int]: ...

    # ----------------------------------------------------------- whole-store copy (transfer.py)

    def dump_rows(self, table: str, batch: int = 5000) -> Iterator[tuple[Any, ...]]:
        """Every row of a ``tables.TABLES`` table, its columns in that order, canonically
        ordered (``tables.ORDER``)."""
        ...

    def load_rows(self, table: str, rows: Iterable[tuple[Any, ...]]) -> int:
        """Write another store's ``dump_rows`` verbatim, ids included (into an empty store)."""
        ...


__all__ = ["RunRepository"]
