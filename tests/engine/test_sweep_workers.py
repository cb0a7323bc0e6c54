"""Several workers on one study: a shared journal, one budget, no grid point run twice.

The two-worker test starts real processes ("spawn", as the GUI's job processes are), each
joining the study by name only and training through a planted trainer, so the outcome
depends on the queue and the storage, not on training speed. A barrier file makes both
workers hold a trial at once before any trains, so the test always exercises sharing.
"""

from __future__ import annotations

import json
import multiprocessing
import time
from pathlib import Path
from typing import Any

import optuna
import pytest

from cnn_lab.engine.cli.main import main
from cnn_lab.engine.search import SearchSpec
from cnn_lab.engine.search.storage import open_storage
from cnn_lab.engine.search.study import create_sweep, join_sweep
from cnn_lab.engine.store import RunRecord, RunStore
from cnn_lab.engine.store import status as st
from cnn_lab.engine.train.events import EpochEnd
from tests.engine.test_search import BASE

GRID: list[dict[str, Any]] = [
    {"path": "train.lr", "values": [0.01, 0.02, 0.03]},
    {"path": "train.optimizer", "choices": ["sgd", "adamw"]},
]

#: How long a worker waits for the other at the barrier before training alone.
BARRIER_S = 60.0


class BarrierTrainer:
    """run_job's call without training; the first call waits until every worker holds a trial.

    Picklable (a module-level class) so that a spawned worker process can be handed it.
    """

    def __init__(self, barrier: Path, workers: int) -> None:
        self.barrier = barrier
        self.workers = workers
        self.waited = False

    def __call__(
        self,
        spec: Any,
        db_path: str | Path,
        run_id: int | None = None,
        *,
        emit: Any,
        should_stop: Any,
        sample_system: bool,
    ) -> RunRecord:
        if not self.waited:
            self.waited = True
            (self.barrier / f"{multiprocessing.current_process().pid}").touch()
            deadline = time.monotonic() + BARRIER_S
            while len(list(self.barrier.iterdir())) < self.workers:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.05)
        value = spec.train.lr * (2 if spec.train.optimizer == "adamw" else 1)
        emit(EpochEnd(1, 10, 1.0, value, 1.0, value, 0.1, 100.0))
        assert run_id is not None
        with RunStore.open(db_path) as store:
            store.mark_running(run_id, pid=1, device="cpu")
            store.finish_run(run_id, st.COMPLETED)
            return store.get_run(run_id)


def _worker(study_name: str, storage: str, db_path: str, barrier: str) -> None:
    """A worker process: joins the study by name and works until the queue is empty."""
    join_sweep(study_name, storage, db_path, trainer=BarrierTrainer(Path(barrier), workers=2))


def _runs(db_path: Path) -> list[RunRecord]:
    if not db_path.exists():
        return []
    with RunStore.open(db_path) as store:
        return store.list_runs(limit=1000)


def test_two_worker_processes_share_one_grid_without_duplicates(tmp_path: Path) -> None:
    journal = tmp_path / "shared" / "study.journal"
    search = SearchSpec.from_dict(
        {"base": BASE, "params": GRID, "strategy": "grid", "name": "shared"}
    )
    name = create_sweep(search, tmp_path / "creator.sqlite", storage=str(journal))
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    context = multiprocessing.get_context("spawn")
    dbs = [tmp_path / f"worker{i}.sqlite" for i in range(2)]
    workers = [
        context.Process(target=_worker, args=(name, str(journal), str(db), str(barrier)))
        for db in dbs
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert [w.exitcode for w in workers] == [0, 0]

    study = optuna.load_study(study_name=name, storage=open_storage(str(journal), tmp_path))
    trials = study.get_trials()
    assert len(trials) == 6
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    points = {(t.params["train.lr"], t.params["train.optimizer"]) for t in trials}
    assert points == {(lr, opt) for lr in (0.01, 0.02, 0.03) for opt in ("sgd", "adamw")}
    # Every trial is one run, recorded by the worker that trained it; both did some.
    per_worker = [_runs(db) for db in dbs]
    assert all(per_worker) and sum(len(runs) for runs in per_worker) == 6
    assert {t.user_attrs["worker"]["pid"] for t in trials} == {w.pid for w in workers}
    assert study.best_params == {"train.lr": 0.03, "train.optimizer": "adamw"}


def test_a_worker_that_joins_a_finished_sweep_trains_nothing(tmp_path: Path) -> None:
    journal = tmp_path / "study.journal"
    search = SearchSpec.from_dict(
        {"base": BASE, "params": GRID[:1], "strategy": "grid", "name": "done"}
    )
    create_sweep(search, tmp_path / "a.sqlite", storage=str(journal))
    first = join_sweep(
        "done", str(journal), tmp_path / "a.sqlite", trainer=BarrierTrainer(tmp_path, 0)
    )
    assert first.trials_done == 3
    again = join_sweep(
        "done", str(journal), tmp_path / "b.sqlite", trainer=BarrierTrainer(tmp_path, 0)
    )
    assert again.trials_done == 3 and _runs(tmp_path / "b.sqlite") == []


def test_cli_sweep_worker_trains_a_created_sweep_for_real(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    journal = tmp_path / "study.journal"
    path = tmp_path / "search.json"
    path.write_text(
        json.dumps(
            {
                "base": BASE,
                "strategy": "grid",
                "name": "cli",
                "params": [{"path": "train.lr", "values": [0.01, 0.1]}],
            }
        )
    )
    creator_db, worker_db = tmp_path / "creator.sqlite", tmp_path / "worker.sqlite"
    args = ["sweep", str(path), "--db", str(creator_db), "--storage", str(journal)]
    assert main([*args, "--create-only", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"study_name": "cli"}
    assert _runs(creator_db) == []
    assert main(["sweep-worker", "cli", "--storage", str(journal), "--db", str(worker_db)]) == 0
    out = capsys.readouterr().out
    assert out.count(": complete ") == 2 and "Best: trial" in out and "2 done" in out
    runs = _runs(worker_db)
    assert len(runs) == 2 and {r.status for r in runs} == {st.COMPLETED}


@pytest.mark.parametrize(
    ("study", "where", "phrase"),
    [
        ("cli", "missing.journal", "There is no sweep storage at"),
        ("nope", "study.journal", "There is no sweep named 'nope'"),
    ],
)
def test_cli_sweep_worker_refuses_a_wrong_study_or_storage(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], study: str, where: str, phrase: str
) -> None:
    search = SearchSpec.from_dict(
        {"base": BASE, "params": GRID[:1], "strategy": "grid", "name": "cli"}
    )
    create_sweep(search, tmp_path / "a.sqlite", storage=str(tmp_path / "study.journal"))
    storage = str(tmp_path / where)
    db = str(tmp_path / "w.sqlite")
    assert main(["sweep-worker", study, "--storage", storage, "--db", db]) == 2
    err = capsys.readouterr().err
    assert phrase in err and "Traceback" not in err
    assert not (tmp_path / "missing.journal").exists()
