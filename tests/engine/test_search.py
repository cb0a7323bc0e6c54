"""Sweeps: the SearchSpec's sentences, trial specs, grids, resuming, pruning and the CLI.

Training tests use the real job path (``run_job``) on a tiny sample so that "every trial is a
run" is checked against the store; resume and pruning tests plant metrics through a fake
trainer with run_job's call, so their outcome depends on the sweep's logic alone.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import pytest

from cnn_lab.engine.cli.main import main
from cnn_lab.engine.errors import SpecError, UserError
from cnn_lab.engine.search import SearchSpec, apply
from cnn_lab.engine.search.history import saved_sweeps
from cnn_lab.engine.search.storage import default_storage_path, open_storage
from cnn_lab.engine.search.study import run_sweep
from cnn_lab.engine.specs import RunSpec
from cnn_lab.engine.store import RunRecord, RunStore
from cnn_lab.engine.store import status as st
from cnn_lab.engine.train.events import EpochEnd

BASE: dict[str, Any] = {
    "dataset": {"source": "sample:shapes", "limit": 300},
    "architecture": {"preset": "small_cnn"},
    "train": {"epochs": 1, "batch_size": 32, "device": "cpu"},
}


def search(params: list[dict[str, Any]], **fields: Any) -> SearchSpec:
    return SearchSpec.from_dict({"base": BASE, "params": params, **fields})


def all_runs(db_path: Path) -> list[RunRecord]:
    with RunStore.open(db_path) as store:
        return store.list_runs(limit=1000)


# --------------------------------------------------------------------------- spec


@pytest.mark.parametrize(
    ("params", "fields", "phrase"),
    [
        ([{"path": "train.lrr", "values": [0.1]}], {}, "'train.lrr' is not a field"),
        ([{"path": "train", "values": [1]}], {}, "names a whole section"),
        ([{"path": "dataset.augment.0.strength", "values": [0.1]}], {}, "index below 0"),
        ([{"path": "train.lr", "values": []}], {}, "empty list"),
        ([{"path": "train.lr", "values": [0.1, 0.1]}], {}, "lists a value twice"),
        ([{"path": "train.lr"}], {}, "exactly one of values, range or choices (got none)"),
        (
            [{"path": "train.lr", "values": [0.1], "choices": [0.2]}],
            {},
            "exactly one of values, range or choices (got values, choices)",
        ),
        (
            [{"path": "train.lr", "range": {"low": 1e-4, "high": 1e-1, "log": True}}],
            {"strategy": "grid"},
            "a grid cannot step through the continuous range of train.lr",
        ),
        (
            [{"path": "train.lr", "range": {"low": 0, "high": 1, "log": True}}],
            {"strategy": "tpe", "trials": 3},
            "a log range needs a low above 0",
        ),
        (
            [{"path": "train.lr", "range": {"low": 1, "high": 0.1}}],
            {"strategy": "random", "trials": 3},
            "must not be above high",
        ),
        (
            [{"path": "train.lr", "range": {"low": 0.1, "high": 1}}],
            {"strategy": "random"},
            "needs a budget",
        ),
        (
            [{"path": "train.lr", "values": [0.1]}, {"path": "train.lr", "values": [0.2]}],
            {},
            "searched twice",
        ),
        ([{"path": "schema_version", "values": [1]}], {}, "describes the spec file"),
        ([{"path": "train.lr", "values": [0.1]}], {"strategy": "anneal"}, "strategy"),
    ],
)
def test_bad_searches_are_refused_with_a_sentence(
    params: list[dict[str, Any]], fields: dict[str, Any], phrase: str
) -> None:
    with pytest.raises(SpecError) as caught:
        search(params, **{"strategy": "grid", **fields})
    assert phrase in caught.value.message
    assert caught.value.message.startswith("The search spec is not valid")


def test_ranges_step_into_grids_and_the_spec_round_trips() -> None:
    spec = search(
        [
            {
                "path": "train.batch_size",
                "range": {"low": 16, "high": 64, "step": 16, "integer": True},
            },
            {"path": "train.lr", "range": {"low": 0.1, "high": 0.3, "step": 0.1}},
            {"path": "train.optimizer", "choices": ["sgd", "adamw"]},
        ],
        strategy="grid",
    )
    assert spec.grid_space() == {
        "train.batch_size": [16, 32, 48, 64],
        "train.lr": [0.1, 0.2, 0.3],
        "train.optimizer": ["sgd", "adamw"],
    }
    assert spec.grid_size() == 24 and len(spec.grid_points()) == 24
    again = SearchSpec.from_json(spec.to_json())
    assert again == spec and again.study_name() == spec.study_name()
    # The budget is not part of the study's identity, so a larger budget resumes it.
    assert spec.model_copy(update={"trials": 99}).study_hash() == spec.study_hash()


def test_apply_builds_a_valid_run_spec_and_refuses_impossible_values() -> None:
    base = RunSpec.from_dict(
        {**BASE, "dataset": {**BASE["dataset"], "augment": [{"name": "flip"}]}}
    )
    spec = apply(
        base,
        {
            "train.lr": 0.05,
            "train.optimizer": "SGD",
            "architecture.width": 0.5,
            "dataset.augment.0.strength": 0.25,
        },
        name="trial",
    )
    assert spec.train.lr == 0.05 and spec.train.optimizer == "sgd"
    assert spec.architecture.width == 0.5
    assert spec.dataset.augment[0].strength == 0.25
    assert spec.name == "trial" and spec.train.batch_size == 32
    assert base.train.lr != 0.05  # the base is frozen and left alone
    with pytest.raises(SpecError) as caught:
        apply(base, {"train.lr": -1.0})
    assert "train.lr=-1.0" in caught.value.message and "train.lr" in caught.value.message
    with pytest.raises(SpecError, match="not a field"):
        apply(base, {"train.nope": 1})


def test_a_grid_with_an_impossible_point_trains_nothing(db_path: Path) -> None:
    spec = search([{"path": "train.batch_size", "values": [32, 0]}], strategy="grid")
    with pytest.raises(SpecError, match="batch_size"):
        run_sweep(spec, db_path, trainer=_fail_if_called)
    assert not db_path.exists() or all_runs(db_path) == []


def _fail_if_called(*args: Any, **kwargs: Any) -> RunRecord:
    raise AssertionError("no trial may train")


# --------------------------------------------------------------------------- real training


def test_a_grid_of_n_points_runs_exactly_n_trials_each_a_run(db_path: Path) -> None:
    spec = search(
        [
            {"path": "train.lr", "values": [0.01, 0.1]},
            {"path": "train.optimizer", "choices": ["sgd", "adamw"]},
        ],
        strategy="grid",
    )
    seen: list[int] = []
    result = run_sweep(spec, db_path, sample_system=False, progress=lambda t: seen.append(t.number))
    assert seen == [0, 1, 2, 3]
    assert result.trials_done == 4 and result.trials_pruned == result.trials_failed == 0
    assert result.epochs_spent == 4
    runs = all_runs(db_path)
    assert len(runs) == 4 and {r.status for r in runs} == {st.COMPLETED}
    points = set()
    for trial in result.trials:
        run = next(r for r in runs if r.id == trial.run_id)
        trained = RunSpec.from_json(run.spec_json)
        assert trial.params == {
            "train.lr": trained.train.lr,
            "train.optimizer": trained.train.optimizer,
        }
        points.add((trained.train.lr, trained.train.optimizer))
    assert points == {(lr, opt) for lr in (0.01, 0.1) for opt in ("sgd", "adamw")}
    best = max(result.trials, key=lambda t: t.value or -1.0)
    assert result.best_value == best.value and result.best_params == best.params
    assert result.best_run_id is not None
    # Running the finished grid again trains nothing more.
    again = run_sweep(spec, db_path, sample_system=False, trainer=_fail_if_called)
    assert again.trials_done == 4 and len(all_runs(db_path)) == 4
    assert default_storage_path(db_path).exists()


def test_a_resumed_sweep_does_not_repeat_finished_trials(db_path: Path) -> None:
    params = [{"path": "train.lr", "range": {"low": 1e-3, "high": 1e-1, "log": True}}]
    first = run_sweep(search(params, strategy="random", trials=2), db_path, sample_system=False)
    assert first.trials_done == 2
    second = run_sweep(search(params, strategy="random", trials=4), db_path, sample_system=False)
    assert second.trials_done == 4 and second.epochs_spent == 4
    assert [t.number for t in second.trials] == [0, 1, 2, 3]
    assert second.trials[:2] == first.trials  # the first two kept, not trained again
    assert len(all_runs(db_path)) == 4


# --------------------------------------------------------------------------- planted metrics


class PlantedTrainer:
    """run_job's call, without training: emits ``epochs`` EpochEnd events with planted scores.

    ``score(call, spec)`` gives the val accuracy of the call-th run (0-based); it stops after
    an epoch when asked, as the real loop does after a step, and records the run's status.
    """

    def __init__(self, score: Callable[[int, RunSpec], float], epochs: int = 1) -> None:
        self.score = score
        self.epochs = epochs
        self.calls: list[RunSpec] = []

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
        value = self.score(len(self.calls), spec)
        self.calls.append(spec)
        status = st.COMPLETED
        for epoch in range(1, self.epochs + 1):
            emit(EpochEnd(epoch, epoch * 10, 1.0, value, 1.0, value, 0.1, 100.0))
            if should_stop():
                status = st.STOPPED
                break
        with RunStore.open(db_path) as store:
            store.mark_running(run_id, pid=1, device="cpu")
            store.finish_run(run_id, status)
            return store.get_run(run_id)


def test_the_median_pruner_stops_trials_that_trail_the_median(db_path: Path) -> None:
    trainer = PlantedTrainer(lambda call, spec: 0.9 if call < 2 else 0.1, epochs=4)
    spec = search(
        [{"path": "train.lr", "values": [0.01, 0.02, 0.03, 0.04, 0.05]}],
        strategy="grid",
        pruner="median",
        prune_startup_trials=2,
        prune_warmup_epochs=0,
    )
    result = run_sweep(spec, db_path, trainer=trainer)
    states = [t.state for t in result.trials]
    assert states == ["complete", "complete", "pruned", "pruned", "pruned"]
    assert [t.epochs for t in result.trials] == [4, 4, 1, 1, 1]
    assert result.trials_pruned == 3 and result.epochs_spent == 11
    assert result.best_value == 0.9
    statuses = {r.id: r.status for r in all_runs(db_path)}
    assert [statuses[t.run_id] for t in result.trials] == [st.COMPLETED] * 2 + [st.STOPPED] * 3


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_trial_killed_mid_run_is_failed_and_run_again(db_path: Path) -> None:
    spec = search([{"path": "train.lr", "values": [0.01, 0.02, 0.03]}], strategy="grid", trials=1)
    trainer = PlantedTrainer(lambda call, s: s.train.lr)
    run_sweep(spec, db_path, trainer=trainer)
    # A second worker took a grid point, then its process died: the trial stays RUNNING.
    study = optuna.load_study(
        study_name=spec.study_name(),
        storage=open_storage(None, db_path),
        sampler=optuna.samplers.GridSampler(spec.grid_space()),
    )
    done_lr = trainer.calls[0].train.lr
    orphan_lr = next(lr for lr in (0.01, 0.02, 0.03) if lr != done_lr)
    study.enqueue_trial({"train.lr": orphan_lr})
    orphan = study.ask()
    orphan.set_user_attr("worker", {"host": socket.gethostname(), "pid": _dead_pid()})
    assert orphan.suggest_categorical("train.lr", [0.01, 0.02, 0.03]) == orphan_lr

    result = run_sweep(spec.model_copy(update={"trials": None}), db_path, trainer=trainer)
    trials = study.get_trials()
    assert trials[1].state == optuna.trial.TrialState.FAIL
    complete = [t for t in result.trials if t.state == "complete"]
    assert sorted(t.params["train.lr"] for t in complete) == [0.01, 0.02, 0.03]
    assert orphan_lr in [s.train.lr for s in trainer.calls[1:]]
    assert len(trainer.calls) == 3  # each grid point trained once
    assert result.trials_done == 3 and result.trials_failed == 0
    assert result.best_params == {"train.lr": 0.03}


def test_a_stopped_sweep_reruns_the_interrupted_trial_on_resume(db_path: Path) -> None:
    stop = [False]
    spec = search([{"path": "train.lr", "values": [0.01, 0.02]}], strategy="grid")

    def score(call: int, s: RunSpec) -> float:
        stop[0] = call == 0  # the person presses Stop during the first trial
        return s.train.lr

    first = run_sweep(spec, db_path, trainer=PlantedTrainer(score), should_stop=lambda: stop[0])
    assert first.trials_done == 0 and first.trials_failed == 0
    # The database remembers the sweep, so the app can offer to resume it after a restart.
    (saved,) = saved_sweeps(db_path)
    assert saved.unfinished and saved.describe() == f"{spec.study_name()}: 0 of 2 trials done"
    assert saved.search == spec
    stop[0] = False
    trainer = PlantedTrainer(lambda call, s: s.train.lr)
    second = run_sweep(saved.search, db_path, trainer=trainer)
    assert second.trials_done == 2 and len(trainer.calls) == 2
    assert second.best_params == {"train.lr": 0.02}
    (saved,) = saved_sweeps(db_path)
    assert not saved.unfinished and saved.counted == 2
    # Every trial's run belongs to the sweep's one experiment (the cut-off one included).
    assert {r.experiment_id for r in all_runs(db_path)} == {1}


def test_a_different_search_under_the_same_name_is_refused(db_path: Path) -> None:
    trainer = PlantedTrainer(lambda call, s: 0.5)
    run_sweep(
        search([{"path": "train.lr", "values": [0.1]}], strategy="grid", name="mine"),
        db_path,
        trainer=trainer,
    )
    with pytest.raises(UserError, match="A different sweep named 'mine'"):
        run_sweep(
            search([{"path": "train.lr", "values": [0.2]}], strategy="grid", name="mine"), db_path
        )


def test_seed_repeats_train_each_seed_and_score_the_mean(db_path: Path) -> None:
    trainer = PlantedTrainer(lambda call, s: 0.2 + 0.1 * s.train.seed)
    spec = search([{"path": "train.lr", "values": [0.1]}], strategy="grid", seeds=3)
    result = run_sweep(spec, db_path, trainer=trainer)
    assert [s.train.seed for s in trainer.calls] == [0, 1, 2]
    assert result.best_value == pytest.approx(0.3) and result.epochs_spent == 3


# --------------------------------------------------------------------------- CLI


def test_cli_sweep_prints_the_best_as_json_then_as_text(
    tmp_path: Path, db_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "search.json"
    path.write_text(
        json.dumps(
            {
                "base": BASE,
                "strategy": "grid",
                "params": [{"path": "train.lr", "values": [0.01, 0.1]}],
            }
        )
    )
    assert main(["sweep", str(path), "--db", str(db_path), "--json"]) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert result["trials_done"] == 2 and result["epochs_spent"] == 2
    assert result["best_params"]["train.lr"] in (0.01, 0.1)
    assert result["best_run_id"] in {r.id for r in all_runs(db_path)}
    assert captured.err.count("trial ") == 2  # per-trial lines stay off stdout
    # Again, as text: the finished grid resumes with nothing left and prints the best.
    assert main(["sweep", str(path), "--db", str(db_path)]) == 0
    out = capsys.readouterr().out
    assert f"Best: trial {result['best_trial']}" in out and "2 done" in out


def test_cli_sweep_refuses_a_bad_file_with_one_line(
    tmp_path: Path, db_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "search.json"
    path.write_text(json.dumps({"base": BASE, "params": [{"path": "train.lrr", "values": [1]}]}))
    assert main(["sweep", str(path), "--db", str(db_path)]) == 2
    err = capsys.readouterr().err
    assert "'train.lrr' is not a field" in err and "Traceback" not in err
    assert main(["sweep", str(tmp_path / "missing.json"), "--db", str(db_path)]) == 2
    assert "Cannot read the search spec" in capsys.readouterr().err


@pytest.mark.parametrize("pruner", ["none", "median", "halving", "hyperband"])
@pytest.mark.parametrize("strategy", ["grid", "random", "tpe"])
def test_every_strategy_and_pruner_runs_its_budget(
    db_path: Path, strategy: str, pruner: str
) -> None:
    trainer = PlantedTrainer(lambda call, s: s.train.lr, epochs=2)
    params = [{"path": "train.lr", "values": [0.1, 0.2, 0.3]}]
    spec = search(params, strategy=strategy, pruner=pruner, trials=3)
    result = run_sweep(spec, db_path, trainer=trainer)
    assert result.trials_done + result.trials_pruned == 3 and result.trials_failed == 0
    assert len(trainer.calls) == 3 and result.best_value is not None


# --------------------------------------------------------------------------- cross-validation

#: Planted trainers below emit two epochs; the spec says so too, since each fold's steps
#: start where the last fold's epochs (as specified) ended.
TWO_EPOCHS: list[dict[str, Any]] = [{"path": "train.epochs", "values": [2]}]


@pytest.mark.parametrize(
    ("fields", "phrase"),
    [
        ({"folds": 3, "seeds": 2}, "use seeds 1 with folds"),
        ({"folds": 1}, "folds"),
        ({"folds": 21}, "folds"),
    ],
)
def test_bad_cross_validation_is_refused(fields: dict[str, Any], phrase: str) -> None:
    with pytest.raises(SpecError, match=phrase):
        search([{"path": "train.lr", "values": [0.1]}], strategy="grid", **fields)
    with pytest.raises(SpecError, match="set by the search's folds"):
        search([{"path": "dataset.fold", "values": [0, 1]}], strategy="grid", folds=2)


def test_a_cross_validated_trial_trains_one_run_per_fold_and_scores_the_mean(
    db_path: Path,
) -> None:
    trainer = PlantedTrainer(lambda call, s: 0.5 + 0.1 * s.dataset.fold, epochs=2)
    spec = search(TWO_EPOCHS, strategy="grid", folds=3)
    result = run_sweep(spec, db_path, trainer=trainer)
    assert [(s.dataset.folds, s.dataset.fold) for s in trainer.calls] == [(3, 0), (3, 1), (3, 2)]
    (trial,) = result.trials
    assert trial.scores == pytest.approx((0.5, 0.6, 0.7))
    assert trial.value == pytest.approx(0.6) and result.best_value == pytest.approx(0.6)
    assert trial.spread == pytest.approx(0.0816496, abs=1e-6) == result.best_spread
    assert trial.epochs == 6 and result.epochs_spent == 6
    # Each fold is a recorded run of its own, trained on that fold.
    runs = {r.id: RunSpec.from_json(r.spec_json) for r in all_runs(db_path)}
    assert sorted(s.dataset.fold for s in runs.values()) == [0, 1, 2]
    # The pruner saw the running mean at steps that carry on across folds.
    study = optuna.load_study(study_name=spec.study_name(), storage=open_storage(None, db_path))
    assert study.trials[0].intermediate_values == pytest.approx(
        {1: 0.5, 2: 0.5, 3: 0.55, 4: 0.55, 5: 0.6, 6: 0.6}
    )


def test_pruning_on_the_running_mean_stops_a_bad_trial_in_its_first_fold(
    db_path: Path,
) -> None:
    # Two good trials (3 folds each, calls 0-5), then a trial that is bad from its first epoch.
    trainer = PlantedTrainer(lambda call, s: 0.9 if call < 6 else 0.1, epochs=2)
    spec = search(
        [*TWO_EPOCHS, {"path": "train.lr", "values": [0.01, 0.02, 0.03]}],
        strategy="grid",
        folds=3,
        pruner="median",
        prune_startup_trials=2,
        prune_warmup_epochs=0,
    )
    result = run_sweep(spec, db_path, trainer=trainer)
    assert [t.state for t in result.trials] == ["complete", "complete", "pruned"]
    assert [t.epochs for t in result.trials] == [6, 6, 1]
    assert result.trials[2].reason == "pruned after 1 epochs of fold 0"
    assert len(trainer.calls) == 7  # the bad trial never trained its folds 1 and 2


def test_a_real_cross_validated_trial_records_one_run_per_fold(db_path: Path) -> None:
    spec = search([{"path": "train.lr", "values": [0.05]}], strategy="grid", folds=2)
    result = run_sweep(spec, db_path, sample_system=False)
    (trial,) = result.trials
    assert trial.state == "complete" and len(trial.scores) == 2
    assert trial.value == pytest.approx(sum(trial.scores) / 2)
    runs = all_runs(db_path)
    assert {r.status for r in runs} == {st.COMPLETED} and len(runs) == 2
    specs = [RunSpec.from_json(r.spec_json) for r in runs]
    assert sorted((s.dataset.folds, s.dataset.fold) for s in specs) == [(2, 0), (2, 1)]


def test_cli_sweep_shows_the_spread_over_folds(
    tmp_path: Path, db_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: Any
) -> None:
    from cnn_lab.engine.search import study as study_module

    trainer = PlantedTrainer(lambda call, s: 0.5 + 0.1 * s.dataset.fold)
    monkeypatch.setattr(study_module, "_run_job", lambda: trainer)
    path = tmp_path / "search.json"
    path.write_text(
        json.dumps(
            {
                "base": BASE,
                "strategy": "grid",
                "folds": 2,
                "params": [{"path": "train.lr", "values": [0.1]}],
            }
        )
    )
    assert main(["sweep", str(path), "--db", str(db_path)]) == 0
    out = capsys.readouterr().out
    assert "val.accuracy 55.0% ± 5.0%" in out and "1 done" in out


def test_a_sweep_kept_in_another_storage_is_not_offered_for_resuming_here(
    db_path: Path, tmp_path: Path
) -> None:
    spec = search([{"path": "train.lr", "values": [0.01, 0.02]}], strategy="grid", name="away")
    run_sweep(
        spec,
        db_path,
        storage=str(tmp_path / "shared.journal"),
        trainer=PlantedTrainer(lambda call, s: 0.5),
        should_stop=lambda: True,
    )
    assert saved_sweeps(db_path) == []  # its study is in shared.journal, not beside the db
