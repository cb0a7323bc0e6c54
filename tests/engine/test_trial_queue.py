"""The trial queue through Optuna's public interfaces: every waiting trial taken once.

``queue.take`` pops WAITING trials with the storage's atomic state change instead of
Optuna's private ``Study._pop_waiting_trial_id``; these tests hold it to what that pop
promised (one taker per trial, however many workers race, and nothing beyond the queue for
a budgeted study), and check that engine/search uses no private Optuna name at all.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

import optuna
from optuna.trial import TrialState

from cnn_lab.engine.search import queue
from cnn_lab.engine.search import storage as stg
from cnn_lab.engine.search.spec import SearchSpec
from cnn_lab.engine.search.study import open_study

ENGINE = Path(__file__).resolve().parents[2] / "engine"


def _search(trials: int) -> SearchSpec:
    return SearchSpec.from_dict(
        {
            "name": "queue",
            "base": {"dataset": {"source": "sample:shapes", "limit": 60}},
            "params": [{"path": "train.lr", "range": {"low": 1e-4, "high": 1e-1, "log": True}}],
            "strategy": "random",
            "trials": trials,
        }
    )


def test_racing_workers_take_each_waiting_trial_once(tmp_path: Path) -> None:
    """Six threads, each with its own storage handle on one journal (as separate worker
    processes have), take from a queue of 40 until it is empty."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    search = _search(40)
    journal = str(tmp_path / "sweeps.journal")
    first = open_study(search, stg.open_storage(journal, tmp_path / "runs.sqlite"))
    assert queue.top_up(search, first) == 40
    taken: list[int] = []
    lock = threading.Lock()
    barrier = threading.Barrier(6)

    def worker(seed: int) -> None:
        study = open_study(search, stg.open_storage(journal, tmp_path / "runs.sqlite"), seed)
        barrier.wait()
        while (trial := queue.take(study, bounded=True)) is not None:
            with lock:
                taken.append(trial.number)
            study.tell(trial, 0.5)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted(taken) == list(range(40))
    trials = first.get_trials(deepcopy=False)
    assert len(trials) == 40 and all(t.state == TrialState.COMPLETE for t in trials)


def test_an_empty_queue_ends_a_budgeted_study_and_asks_an_open_one(tmp_path: Path) -> None:
    study = open_study(_search(1), stg.open_storage(None, tmp_path / "runs.sqlite"))
    assert queue.take(study, bounded=True) is None
    assert study.get_trials() == []  # nothing was created for the empty queue
    trial = queue.take(study, bounded=False)  # an unbounded search asks the sampler
    assert trial is not None and len(study.get_trials()) == 1


def test_engine_search_uses_no_private_optuna_name() -> None:
    private = re.compile(r"\b(study|trial|frozen|waiting|storage)\._[a-z]|optuna(\.\w+)*\._\w")
    offenders = [
        f"{path.name}:{number}: {line.strip()}"
        for path in sorted((ENGINE / "search").glob("*.py"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if private.search(line)
    ]
    assert offenders == []
