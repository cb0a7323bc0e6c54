"""Reading a past sweep back: the study gives the very result its sweep ended with, and a
study that is gone or damaged leaves its runs to rebuild the trials from, with a sentence.

The sweeps are recorded by ``run_sweep`` with planted trials (tests/engine/planted_sweep.py),
so every case takes milliseconds.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from cnn_lab.engine.errors import UserError
from cnn_lab.engine.search import SearchSpec
from cnn_lab.engine.search.history import saved_sweeps
from cnn_lab.engine.search.past import open_sweep
from cnn_lab.engine.search.storage import default_storage_path
from cnn_lab.engine.search.study import run_sweep
from tests.engine.planted_sweep import BASE, StoredEpochTrainer, planted_sweep


def test_a_past_sweep_reads_back_as_the_result_it_ended_with(db_path: Path) -> None:
    search, live = planted_sweep(db_path)
    opened = open_sweep(db_path, "planted")
    assert opened.name == "planted" and opened.search == search and opened.note == ""
    importance = opened.result.pop("importance")
    assert opened.result.pop("stopped") is False
    assert opened.result == live.to_dict()
    assert set(importance) == {"train.lr", "train.batch_size"}
    assert sum(importance.values()) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("damage", "phrase"),
    [
        (lambda journal: journal.unlink(), "The sweep's study journal"),
        (
            lambda journal: journal.write_text("{not json\nnor this\n"),
            "cannot be read (it looks damaged)",
        ),
    ],
    ids=["missing", "damaged"],
)
def test_without_its_study_a_sweep_is_rebuilt_from_its_runs(
    db_path: Path, damage: Callable[[Path], object], phrase: str
) -> None:
    _, live = planted_sweep(db_path)
    damage(default_storage_path(db_path))
    # Listed for opening (never for resuming), and nothing raises on the way.
    assert saved_sweeps(db_path) == []
    (listed,) = saved_sweeps(db_path, without_study=True)
    assert not listed.study_found and not listed.unfinished
    assert listed.label() == "planted: its study is not here, opens from its runs"

    opened = open_sweep(db_path, "planted")
    assert phrase in opened.note and "rebuilt from its recorded runs" in opened.note
    result = opened.result
    assert result["importance"] == {} and result["stopped"] is False
    by_number = {t.number: t for t in live.trials}
    assert len(result["trials"]) == 4
    for trial in result["trials"]:
        expected = by_number[trial["number"]]
        assert trial["state"] == "complete"
        assert (trial["params"], trial["value"], trial["run_id"]) == (
            expected.params,
            expected.value,
            expected.run_id,
        )
    assert (result["best_trial"], result["best_params"], result["best_value"]) == (
        live.best_trial,
        live.best_params,
        live.best_value,
    )
    assert result["best_run_id"] == live.best_run_id and result["trials_done"] == 4


def test_labels_say_how_far_each_sweep_got(db_path: Path) -> None:
    planted_sweep(db_path, name="done")
    stopped = SearchSpec.from_dict(
        {
            "base": BASE,
            "params": [{"path": "train.lr", "values": [0.01, 0.02, 0.03]}],
            "strategy": "grid",
            "name": "cut",
        }
    )
    run_sweep(stopped, db_path, trainer=StoredEpochTrainer(), should_stop=lambda: True)
    assert [s.label() for s in saved_sweeps(db_path, without_study=True)] == [
        "cut: 0 of 3 trials, unfinished",
        "done: 4 of 4 trials, finished",
    ]


def test_a_sweep_that_is_not_there_is_a_sentence(db_path: Path) -> None:
    planted_sweep(db_path, name="2024")  # digits are a name here, not an experiment id
    assert open_sweep(db_path, "2024").name == "2024"
    with pytest.raises(UserError, match=r"^There is no sweep 'gone' in "):
        open_sweep(db_path, "gone")
