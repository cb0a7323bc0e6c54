"""The search phase: which fields to search for the goal, and the sweep run under one experiment.

The fields that matter most for a short budget, in the order they usually matter: the
learning rate (a log range around the range test's answer, a quarter to four times it:
the test reads the rate for a fresh model, training longer shifts it by less than that),
weight decay (a log range around the common 5e-4), the strength of the first augmentation
when the dataset has one, and the candidate widths or networks the person listed.

The sweep is engine/search's own (its TPE sampler, median pruner, trial queue and objective),
assembled here instead of through ``run_sweep`` for one reason: ``run_sweep`` files its
trials under a "sweep" experiment of their own, and optimize records everything under ONE
experiment. ``run_search`` therefore opens the study and queues its budget as
``run_sweep`` does and points the objective at the optimize experiment.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna

from cnn_lab.engine.search import SearchSpec, queue
from cnn_lab.engine.search import storage as stg
from cnn_lab.engine.search.study import (
    SweepResult,
    Trainer,
    TrialOutcome,
    objective_for,
    open_study,
    summarise,
    work,
)
from cnn_lab.engine.specs import RunSpec

LR_SPREAD = 4.0
WEIGHT_DECAY = (1e-5, 5e-3)
AUGMENT_STRENGTH = (0.25, 1.0)


def search_params(
    base: RunSpec, lr: float, widths: tuple[float, ...], networks: tuple[str, ...]
) -> list[dict[str, Any]]:
    """The parameters a short search varies (see the module docstring), as SearchSpec wants."""
    params: list[dict[str, Any]] = [
        {
            "path": "train.lr",
            "range": {"low": lr / LR_SPREAD, "high": min(10.0, lr * LR_SPREAD), "log": True},
        },
        {
            "path": "train.weight_decay",
            "range": {"low": WEIGHT_DECAY[0], "high": WEIGHT_DECAY[1], "log": True},
        },
    ]
    if base.dataset.augment:
        low, high = AUGMENT_STRENGTH
        params.append({"path": "dataset.augment.0.strength", "range": {"low": low, "high": high}})
    if len(set(widths)) > 1:
        params.append({"path": "architecture.width", "choices": sorted(set(widths))})
    if len(set(networks)) > 1:
        params.append({"path": "architecture.preset", "choices": list(dict.fromkeys(networks))})
    return params


def search_spec(base: RunSpec, params: list[dict[str, Any]], name: str, trials: int) -> SearchSpec:
    """A TPE search with the median pruner: a trial behind the median after its first epoch
    stops, so the budget goes to the promising ones."""
    return SearchSpec.from_dict(
        {
            "name": name,
            "base": base.model_dump(mode="json"),
            "params": params,
            "strategy": "tpe",
            "pruner": "median" if base.train.epochs > 1 else "none",
            "prune_startup_trials": 2,
            "prune_warmup_epochs": 1,
            "trials": trials,
        }
    )


def run_search(
    search: SearchSpec,
    db_path: Path,
    experiment_id: int,
    trainer: Trainer,
    should_stop: Callable[[], bool],
    on_trial: Callable[[TrialOutcome], None],
    emit: Callable[[Any], None] = lambda event: None,
) -> SweepResult:
    """Train ``search``'s trials as runs of ``experiment_id`` until done or stopped."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = open_study(search, stg.open_storage(None, db_path))
    queue.top_up(search, study)
    objective = objective_for(search, db_path, trainer, should_stop, sample_system=False, emit=emit)
    # The objective files trial runs under the experiment it holds; optimize's, not a sweep's.
    objective._experiment_id = experiment_id
    work(search, study, objective, should_stop, on_trial)
    return summarise(search, study)


__all__ = ["run_search", "search_params", "search_spec"]
