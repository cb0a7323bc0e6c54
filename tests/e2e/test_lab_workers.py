"""A lab: three sweep workers "on three machines" run one sweep against one PostgreSQL, and
the window on the desk lists their runs as they go.

Each worker is a real ``cnn-lab sweep-worker`` process with its own home, user folders and
dataset cache, and its own host name (``CNN_LAB_HOST``), so no worker can see another's
process: a worker that dies is noticed only through its run's lease in the shared store. One
of them (``tests/e2e/lab_worker.py``) holds its first trial mid-training; once the other two
have trained every other grid point, and so are only waiting, it is killed with SIGKILL. Its
run's heartbeat stops, the lease (shortened to ``LEASE_S`` here) marks the run crashed for
whoever reads next, and a waiting worker trains the grid point again.

Nothing waits on a fixed time: the test waits on the hold file, the workers' exits and what
the window's Runs table shows. Nobody presses Refresh: the table follows the store by itself
(the Runs panel's live refresh), which is what "lists them live" means.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState
from PySide6.QtCore import Qt

from cnn_lab.app.main_window import MainWindow
from cnn_lab.engine.cli.main import main as cli
from cnn_lab.engine.jobs.job import create_run
from cnn_lab.engine.search import SearchSpec, queue
from cnn_lab.engine.search import storage as stg
from cnn_lab.engine.search.study import create_sweep, open_study
from cnn_lab.engine.store import open_store
from cnn_lab.engine.store import status as st
from cnn_lab.engine.store.liveness import (
    DEFAULT_LEASE_S,
    HOST_ENV_VAR,
    LEASE_ENV_VAR,
    MIN_LEASE_S,
    lease_s,
    this_host,
)
from cnn_lab.engine.store.locations import ARTIFACTS_ENV_VAR
from tests.app.conftest import shown_window
from tests.e2e.lab_worker import HOLD_ENV

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]

LEASE_S = 6.0
"""The lease for this test: short, so the killed worker's run is crashed seconds after it
went quiet, and still six heartbeats long, so a busy two-core machine never crashes a live one."""

WAIT_MS = 150_000
"""The longest any one wait may take before the test fails (it takes far less)."""

BASE: dict[str, Any] = {
    "dataset": {"source": "sample:shapes", "limit": 60, "image_size": 16},
    "architecture": {"preset": "small_cnn"},
    "train": {"epochs": 1, "batch_size": 32, "device": "cpu"},
}
LRS = (0.01, 0.02, 0.03)
OPTIMIZERS = ("sgd", "adamw")
POINTS = {(lr, opt) for lr in LRS for opt in OPTIMIZERS}


class Worker:
    """One ``cnn-lab sweep-worker`` process, set up as if on a machine of its own."""

    def __init__(self, host: str, tmp: Path, command: list[str], extra: dict[str, str]) -> None:
        self.host = host
        home = tmp / host
        env = {key: value for key, value in os.environ.items() if key != HOLD_ENV}
        env.update(
            {
                "HOME": str(home / "home"),
                "XDG_DATA_HOME": str(home / "data"),
                "XDG_CONFIG_HOME": str(home / "config"),
                "XDG_CACHE_HOME": str(home / "cache"),
                "XDG_STATE_HOME": str(home / "state"),
                "CNN_LAB_CACHE": str(home / "dataset-cache"),
                HOST_ENV_VAR: host,
                "OMP_NUM_THREADS": "1",  # three workers share two cores
                "PYTHONUNBUFFERED": "1",
                **extra,
            }
        )
        (home / "home").mkdir(parents=True)
        self.log = home / "worker.log"
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                command,
                cwd=ROOT,  # so that ``-m tests.e2e.lab_worker`` is found
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a group of its own: killed whole, children too
            )

    def exited(self) -> bool:
        return self.process.poll() is not None

    def tail(self) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return f"--- {self.host} (exit {self.process.poll()}):\n{text[-3000:]}"

    def kill(self) -> None:
        if not self.exited():
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)


def _rows(win: MainWindow) -> dict[int, str]:
    """What the Runs table shows: each listed run's id and status."""
    model = win.runs_panel.table.model()
    titles = [model.headerData(c, Qt.Orientation.Horizontal) for c in range(model.columnCount())]
    id_column, status_column = titles.index("ID"), titles.index("Status")
    return {
        int(model.data(model.index(row, id_column))): str(
            model.data(model.index(row, status_column))
        )
        for row in range(model.rowCount())
    }


def _wait_for_table(
    qtbot: Any,
    win: MainWindow,
    wanted: Callable[[dict[int, str]], bool],
    workers: list[Worker],
    what: str,
) -> dict[int, str]:
    """Wait, without touching the window, until its table shows what ``wanted`` accepts.

    Fails at once, with the workers' logs, when a worker that should still be working exits.
    """

    def check() -> bool:
        crashed = [w for w in workers if w.exited() and w.process.returncode != 0]
        if crashed:
            pytest.fail(f"a worker failed while waiting for {what}:\n" + _logs(workers))
        return wanted(_rows(win))

    try:
        qtbot.waitUntil(check, timeout=WAIT_MS)
    except AssertionError:
        pytest.fail(f"the table never showed {what}: {_rows(win)}\n" + _logs(workers))
    return _rows(win)


def _logs(workers: list[Worker]) -> str:
    return "\n".join(w.tail() for w in workers)


def _create_sweep(tmp_path: Path, url: str) -> str:
    search = {
        "base": BASE,
        "strategy": "grid",
        "name": "lab",
        "params": [
            {"path": "train.lr", "values": list(LRS)},
            {"path": "train.optimizer", "choices": list(OPTIMIZERS)},
        ],
    }
    path = tmp_path / "search.json"
    path.write_text(json.dumps(search))
    assert cli(["sweep", str(path), "--db", url, "--create-only"]) == 0
    return "lab"


@pytest.fixture
def lab(pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The lab's database; the desk (this process) shares the artifact folder and the lease."""
    monkeypatch.setenv(ARTIFACTS_ENV_VAR, str(tmp_path / "shared-artifacts"))
    monkeypatch.setenv(LEASE_ENV_VAR, str(LEASE_S))
    return pg_url


@pytest.fixture
def desk(qtbot: Any, lab: str) -> Iterator[MainWindow]:
    """The window on the lab's database, open before any worker starts, showing Runs."""
    for win in shown_window(qtbot, lab):  # type: ignore[arg-type]
        win.tabs.setCurrentWidget(win.runs_panel)
        yield win


def test_three_workers_share_one_sweep_and_a_killed_ones_trial_runs_again_elsewhere(
    qtbot: Any, desk: MainWindow, lab: str, tmp_path: Path
) -> None:
    name = _create_sweep(tmp_path, lab)
    command = ["sweep-worker", name, "--db", lab, "--slots", "cpu"]
    hold = tmp_path / "held.json"
    workers: list[Worker] = []
    try:
        # The victim first, so that it surely holds a trial before the others start.
        victim = Worker(
            "lab-c",
            tmp_path,
            [sys.executable, "-m", "tests.e2e.lab_worker", *command],
            {HOLD_ENV: str(hold)},
        )
        workers.append(victim)
        qtbot.waitUntil(lambda: hold.exists() or victim.exited(), timeout=WAIT_MS)
        assert hold.exists(), victim.tail()
        held = json.loads(hold.read_text())
        held_run = int(held["run_id"])
        _wait_for_table(
            qtbot, desk, lambda rows: rows.get(held_run) == st.RUNNING, workers, "the held run"
        )

        for host in ("lab-a", "lab-b"):
            workers.append(
                Worker(host, tmp_path, [sys.executable, "-m", "cnn_lab.engine.cli", *command], {})
            )
        others = workers[1:]
        # Every other grid point trains; the victim's run is still live, so they wait for it.
        rows = _wait_for_table(
            qtbot,
            desk,
            lambda rows: (
                list(rows.values()).count(st.COMPLETED) == len(POINTS) - 1
                and rows.get(held_run) == st.RUNNING
            ),
            workers,
            "five completed runs beside the held one",
        )
        assert len(rows) == len(POINTS)

        # The queue is empty now: only a worker that waits for the held trial can run it again.
        victim.kill()
        assert victim.process.returncode == -signal.SIGKILL
        qtbot.waitUntil(lambda: all(w.exited() for w in others), timeout=WAIT_MS)
        assert [w.process.returncode for w in others] == [0, 0], _logs(workers)
    finally:
        for worker in workers:
            worker.kill()

    # The study: every grid point completed exactly once; the victim's trial failed as
    # interrupted and its point was run again by another worker.
    study = optuna.load_study(study_name=name, storage=stg.open_storage(None, lab))
    trials = study.get_trials()
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert sorted((t.params["train.lr"], t.params["train.optimizer"]) for t in complete) == sorted(
        POINTS
    )
    assert {t.user_attrs["worker"]["host"] for t in complete} <= {"lab-a", "lab-b"}
    (lost,) = [t for t in trials if t.state != TrialState.COMPLETE]
    assert lost.state == TrialState.FAIL and lost.user_attrs[stg.INTERRUPTED]
    assert lost.user_attrs["worker"] == {"host": "lab-c", "pid": held["pid"]}
    assert lost.user_attrs[stg.RUN_NOW]["id"] == held_run
    (again,) = [t for t in complete if t.system_attrs.get(stg.RETRY_OF) == lost.number]
    assert again.params == lost.params

    # The store: every trial's run with its metrics, and the victim's run crashed by the lease.
    with open_store(lab) as store:
        runs = {r.id: r for r in store.list_runs()}
        assert len(runs) == len(POINTS) + 1
        for trial in complete:
            run = runs[trial.user_attrs["run_id"]]
            assert run.status == st.COMPLETED and run.host == trial.user_attrs["worker"]["host"]
            assert {"val.accuracy", "train.loss"} <= set(store.metric_keys(run.id))
        crashed = runs[held_run]
        assert crashed.status == st.CRASHED and crashed.host == "lab-c"
        assert crashed.reason is not None and "stopped reporting" in crashed.reason
        assert store.metric_keys(held_run)  # what it wrote before the kill is kept

    # The window lists them all as the store has them, the killed worker's run as crashed
    # (waited for whole: the table may be a refresh behind the last run's end).
    stored = {run_id: run.status for run_id, run in runs.items()}
    assert stored[held_run] == st.CRASHED
    _wait_for_table(
        qtbot, desk, lambda rows: rows == stored, [], "every run as stored, the killed one crashed"
    )


# ------------------------------------------------------------------ the pieces, in-process


@pytest.mark.parametrize(
    ("value", "lease"),
    [(None, DEFAULT_LEASE_S), ("7.5", 7.5), ("0.1", MIN_LEASE_S), ("soon", DEFAULT_LEASE_S)],
)
def test_the_lease_is_30_s_unless_the_environment_says(
    monkeypatch: pytest.MonkeyPatch, value: str | None, lease: float
) -> None:
    if value is None:
        monkeypatch.delenv(LEASE_ENV_VAR, raising=False)
    else:
        monkeypatch.setenv(LEASE_ENV_VAR, value)
    assert lease_s() == lease


def test_a_machine_may_be_named_for_its_runs_and_trials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(HOST_ENV_VAR, "container-7")
    assert this_host() == "container-7"
    assert stg.worker_record() == {"host": "container-7", "pid": os.getpid()}


def test_a_trial_is_given_up_when_its_process_is_gone_or_the_store_crashed_its_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Four claimed trials: on another machine, one whose run went quiet (crashed by the lease
    as this worker opens the store), one whose run heartbeats, and one whose run id belongs to
    another store (a different run here); on this machine, one whose pid lives (pid 1, as
    after a reboot) but whose run went quiet. The quiet ones are failed and queued again; the
    busy one is worth waiting for; the other store's is left alone, neither failed nor waited
    for."""
    monkeypatch.delenv(LEASE_ENV_VAR, raising=False)
    db = tmp_path / "runs.sqlite"
    lrs = [0.01, 0.02, 0.03, 0.04]
    search = SearchSpec.from_dict(
        {
            "base": BASE,
            "strategy": "grid",
            "name": "hosts",
            "params": [{"path": "train.lr", "values": lrs}],
        }
    )
    create_sweep(search, db)
    study = open_study(search, stg.open_storage(None, db))
    numbers = []
    with open_store(db) as store:
        claims = [
            ("quiet", 1000, True),
            ("busy", 0, True),
            ("far", 1000, False),
            (this_host(), 1000, True),
        ]
        for host, heartbeat_age, same_spec in claims:
            trial = queue.take(study, bounded=True)
            assert trial is not None
            spec = search.trial_spec({"train.lr": lrs[len(numbers)]}, trial.number)
            run_id = create_run(store, spec)
            store.mark_running(run_id, pid=1, device="cpu", host=host)
            store.heartbeat(run_id, now=time.time() - heartbeat_age)
            told = spec if same_spec else spec.model_copy(update={"name": "another run"})
            trial.set_user_attr(stg.WORKER, {"host": host, "pid": 1})
            trial.set_user_attr(stg.RUN_NOW, stg.run_now(run_id, told))
            numbers.append(trial.number)

    census = stg.reclaim(study, db)

    quiet, _busy, far, here = numbers
    assert census.queued == [quiet, here] and census.alive == 1
    states = {t.number: t.state for t in study.get_trials()}
    assert [states[n] for n in numbers] == [
        TrialState.FAIL,
        TrialState.RUNNING,
        TrialState.RUNNING,
        TrialState.FAIL,
    ]
    retried = {t.system_attrs.get(stg.RETRY_OF): t.state for t in study.get_trials()}
    assert retried[quiet] == retried[here] == TrialState.WAITING and far not in retried
    with open_store(db) as store:
        statuses = [r.status for r in sorted(store.list_runs(), key=lambda r: r.id)]
    # The other store's run is crashed by the lease all the same: only its trial is not ours.
    assert statuses == [st.CRASHED, st.RUNNING, st.CRASHED, st.CRASHED]
    assert stg.reclaim(study, db).queued == []  # a second look queues nothing twice
