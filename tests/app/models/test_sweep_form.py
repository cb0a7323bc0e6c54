"""The Sweep panel's form model, without Qt: what the results side shows when, the sentences
under the best and the importance, launching, training the best, and the estimate's store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cnn_lab.app.models.sweep_form import (
    NO_SWEEP,
    NO_TRIALS,
    OPENED_EMPTY,
    WAITING,
    SweepForm,
    best_text,
    finished_text,
    importance_text,
    launchable,
    trial_curves,
)
from cnn_lab.engine.errors import UserError
from cnn_lab.engine.search.past import OpenedSweep
from cnn_lab.engine.search.spec import SearchSpec
from cnn_lab.engine.store import MetricPoint, RunStore

BASE = {"dataset": {"source": "sample:shapes", "limit": 100}, "train": {"device": "cpu"}}


def search(**fields: Any) -> SearchSpec:
    doc = {"base": BASE, "params": [{"path": "train.lr", "values": [0.01, 0.1]}], **fields}
    return SearchSpec.from_dict({"strategy": "grid", **doc})


def test_the_empty_state_says_why_there_is_no_trial() -> None:
    form = SweepForm()
    assert form.empty_message(has_trials=False, running=False) == NO_SWEEP
    form.launched(search())
    assert form.total == 2
    assert form.empty_message(has_trials=False, running=True) == WAITING
    assert form.empty_message(has_trials=False, running=False) == NO_TRIALS
    assert form.empty_message(has_trials=True, running=False) is None
    form.show_opened(OpenedSweep("old", search(), {"trials": []}))
    assert form.empty_message(has_trials=False, running=False) == OPENED_EMPTY
    assert form.opened_text(1) == "Sweep old: 1 trial, read from the database."
    form.clear()
    assert (form.search, form.result, form.opened) == (None, None, None)
    assert form.empty_message(has_trials=False, running=False) == NO_SWEEP


def test_progress_and_owner() -> None:
    form = SweepForm()
    assert form.owner() is None
    form.launched(search(name="rates"))
    assert form.owner() == "sweep rates"
    assert form.progress_text(1) == ""  # the bar counts against the budget
    form.launched(search(strategy="tpe", timeout_s=60.0))
    assert form.total is None and form.progress_text(3) == "3 trials finished."


def test_sentences_of_a_sweeps_end() -> None:
    result = {"best_value": 0.91234, "best_trial": 2, "metric": "val.accuracy", "best_run_id": 7}
    assert best_text(result) == "Best: trial 2, val.accuracy 0.9123 (run 7)."
    assert best_text({**result, "best_run_id": None}) == "Best: trial 2, val.accuracy 0.9123."
    assert best_text({}) == ""
    assert finished_text({"stopped": True}, 3) == (
        "Stopped after 3 trials; launch the same sweep again to resume it."
    )
    assert finished_text({}, 4) == "Done: 4 trials."
    assert importance_text({}).startswith("Parameter importance needs three")
    lines = importance_text({"train.lr": 0.25, "train.batch_size": 0.75}).splitlines()
    assert lines[0] == "How much each parameter moved the value:"
    assert lines[2].startswith("train.batch_size") and lines[2].endswith("75%")
    assert lines[3].count("█") == 8 and lines[3].endswith("25%")  # round(0.25 * 30)


def test_a_grid_with_a_point_that_is_no_run_does_not_launch() -> None:
    assert launchable(search()) == search()
    bad = search(params=[{"path": "train.lr", "values": [0.01, -1]}])
    with pytest.raises(UserError, match="do not make a valid run"):
        launchable(bad)
    # Other strategies draw their points as they go: each bad draw fails alone.
    drawn = search(strategy="tpe", trials=3, params=[{"path": "train.lr", "values": [0.01, -1]}])
    assert launchable(drawn) is drawn


def test_the_best_trains_on_all_the_data() -> None:
    form = SweepForm()
    assert form.best_on_all_data() is None
    base = {**BASE, "dataset": {"source": "sample:shapes", "limit": 100, "folds": 3}}
    form.launched(SearchSpec.from_dict({**search().model_dump(mode="json"), "base": base}))
    form.result = {"best_params": {}}
    assert form.best_on_all_data() is None  # no best trial yet
    form.result = {"best_params": {"train.lr": 0.1}}
    best = form.best_on_all_data()
    assert best is not None
    spec, shown = best
    assert spec.train.lr == 0.1 and shown == "train.lr=0.1"
    assert spec.dataset.limit is None and spec.dataset.folds is None


def test_the_estimate_uses_the_probe_of_this_base_else_past_runs() -> None:
    form = SweepForm()
    s = search()
    # No probe: the past runs are needed (the panel reads them, off the GUI thread).
    assert form.estimate(s, 1) == ("2 trials; measure an epoch to estimate the time.", True)
    assert form.take_history([]) is False  # nothing new: the panel need not say it again

    form.probed_hash = s.base.spec_hash()
    form.probe_finished({"epoch_s": 4.0, "device": "cpu"})
    assert form.measured is not None and form.measured.setup_s == 0.0
    text, needs_history = form.estimate(s, 2)
    assert text.endswith("(4.0 s an epoch and 0.0 s to set a run up, measured on cpu).")
    assert not needs_history  # a probed base needs no past runs


def test_trial_curves_read_each_runs_validation_accuracy(tmp_path: Path) -> None:
    db = tmp_path / "runs.sqlite"
    with RunStore.open(db) as store:
        run_id = store.create_run(spec_json=search().base.to_json(), spec_hash="h")
        store.add_metrics(
            MetricPoint(run_id, step, epoch, "val.accuracy", value, 0.0)
            for step, epoch, value in [(1, 0, 0.5), (2, 1, 0.75)]
        )
    with RunStore.open(db) as store:
        curves = trial_curves(store, [run_id])
    assert curves == {f"run {run_id}": ([0, 1], [0.5, 0.75])}
