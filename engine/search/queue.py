"""The study's trial queue: how many workers share one budget without running a point twice.

Optuna's samplers pick a trial's parameters when a worker asks for it, so two workers
asking at the same moment can both pick the same grid point, and two workers that each
count "budget minus finished" can together run more trials than the budget. Instead, the
process that creates (or extends) a sweep puts its whole budget into the study as WAITING
trials: one per grid point with its parameters fixed, or, for random and TPE, empty tickets
whose parameters the sampler picks when the ticket is taken. Workers then only *pop*
waiting trials; Optuna's storages make the pop atomic (the journal by log order, an RDB by
its row update), so each waiting trial runs on exactly one worker. A worker that finds the
queue empty is done once no other worker's trial runs either (study.work waits for those,
since a trial whose worker dies is queued again: storage.reclaim).
"""

from __future__ import annotations

import json
import random
from typing import Any

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import FrozenTrial, Trial, TrialState

from cnn_lab.engine.search import storage as stg
from cnn_lab.engine.search.spec import SearchSpec

#: Where Optuna's enqueue_trial keeps a queued trial's parameters before they are suggested.
FIXED_PARAMS = "fixed_params"


def _key(point: dict[str, Any]) -> str:
    return json.dumps(point, sort_keys=True, default=str)


def point_of(trial: FrozenTrial) -> dict[str, Any]:
    """The parameters a trial stands for, whether suggested already or only queued."""
    return dict(trial.params) or dict(trial.system_attrs.get(FIXED_PARAMS, {}))


def _held(trial: FrozenTrial) -> bool:
    """Whether a trial takes a share of the budget: counted, running, or waiting to run."""
    return stg.counted(trial) or trial.state in (TrialState.RUNNING, TrialState.WAITING)


def top_up(search: SearchSpec, study: optuna.Study) -> int:
    """Queue trials until finished, running and waiting ones make the budget; how many queued.

    A grid queues its points in a seeded random order (as Optuna's GridSampler visits them),
    skipping those any trial already stands for, so a partial grid samples the space evenly
    and extending it never repeats a point. An unbounded search (timeout only) queues
    nothing: its workers ask the sampler directly until time runs out.
    """
    budget = search.budget()
    if budget is None:
        return 0
    trials = study.get_trials(deepcopy=False)
    held = [t for t in trials if _held(t)]
    missing = budget - len(held)
    if missing <= 0:
        return 0
    if search.strategy != "grid":
        for _ in range(missing):
            study.enqueue_trial({})
        return missing
    covered = {_key(point_of(t)) for t in held}
    points = search.grid_points()
    random.Random(search.sampler_seed).shuffle(points)
    fresh = [p for p in points if _key(p) not in covered][:missing]
    for point in fresh:
        study.enqueue_trial(point)
    return len(fresh)


def take(study: optuna.Study, *, bounded: bool) -> Trial | None:
    """The next trial for this worker, or None when a bounded study's queue is empty.

    ``ask`` cannot serve a budget: it creates a fresh, unbudgeted trial whenever the queue is
    empty, which is how two workers overrun one. So the pop is done here the way ``ask`` does
    it inside, through public interfaces only: the storage's ``set_trial_state_values``
    moves a WAITING trial to RUNNING atomically (False, or UpdateFinishedTrialError, when
    another worker took it first), and ``optuna.trial.Trial(study, trial_id)`` (public,
    documented) wraps the trial won. No private Optuna call is made, so the Optuna pin can
    follow its releases.
    """
    storage = stg.storage_of(study)
    study_id = storage.get_study_id_from_name(study.study_name)
    for waiting in storage.get_all_trials(study_id, deepcopy=False, states=(TrialState.WAITING,)):
        trial_id = stg.trial_id(storage, study, waiting)
        try:
            if storage.set_trial_state_values(trial_id, state=TrialState.RUNNING):
                return Trial(study, trial_id)
        except UpdateFinishedTrialError:
            continue
    return None if bounded else study.ask()


__all__ = ["point_of", "take", "top_up"]
