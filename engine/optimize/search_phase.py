"""The search phase: which fields to search for the goal, and the sweep run under one experiment.

The fields that matter most for a short budget, in the order they usually matter: the
learning rate (a log range around the range test's answer and the person's own rate, both
tried first; see ``lr_range``),
weight decay (the optimizer's own range, ``OptimizerInfo.decay_range``: an L2 penalty and
AdamW's decoupled decay differ a hundredfold), augmentation (the strength of the dataset's
first augmentation, or, when it has none, of random shifts from none to an eighth of the
side: ``SEARCHED_AUGMENTATION``), and the candidate widths or networks the person listed.

The sweep is engine/search's own (its TPE sampler, median pruner, trial queue and objective),
assembled here instead of through ``run_sweep`` for one reason: ``run_sweep`` files its
trials under a "sweep" experiment of their own, and optimize records everything under ONE
experiment. ``run_search`` therefore opens the study and queues its budget as
``run_sweep`` does and gives the objective the optimize experiment (``experiment_id``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import optuna

from cnn_lab.engine.optimize.plan import final_need_s, search_allotment, size_search
from cnn_lab.engine.optimize.state import Measured, RunState
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
from cnn_lab.engine.specs.dataset import AugmentStep
from cnn_lab.engine.train.optimizers import optimizer_info

LR_SPREAD = 4.0
AUGMENT_STRENGTH = (0.25, 1.0)
"""The strengths searched for the dataset's own first augmentation: the person chose it, so
the search tunes it rather than turning it off."""
SEARCHED_AUGMENTATION = "translate"
"""Searched at ``SHIFT_STRENGTHS`` (none to full) when the dataset has no augmentation.
Why shifts: they keep every class's meaning on centred-object data, where flips do not
(digits, text, left/right classes) and neither do rotations (6 and 9) or colour (classes
told apart by colour); and they were what mattered on cnn-lab's samples: on sample:shapes
(small_cnn, one-cycle, 2-core CPU) 60 epochs reached 0.9983 validation accuracy with shifts
against 0.9933 without, and 15 epochs 0.9983 against 0.9892. None is among the choices, so
data where shifts hurt keeps none."""


def lr_range(anchors: Sequence[float]) -> tuple[float, float]:
    """The searched learning rates: a log range holding every anchor with room beyond.

    One anchor (the range test's answer) gets ``LR_SPREAD`` either side. Two (the range test's
    and the person's own rate, which may be far apart: the test reads a fresh model over a
    hundred steps, a recipe that already trains well is evidence too) get at least a factor
    of two beyond each, and ``LR_SPREAD`` when they are close.
    """
    low, high = min(anchors), max(anchors)
    widen = max(2.0, LR_SPREAD / math.sqrt(high / low))
    return low / widen, min(10.0, high * widen)


def decay_range(spec: RunSpec) -> tuple[float, float]:
    """The weight decays searched for ``spec``'s optimizer (see ``OptimizerInfo.decay_range``)."""
    return optimizer_info(spec.train.optimizer).decay_range


def with_searched_augmentation(spec: RunSpec) -> RunSpec:
    """``spec`` with an augmentation whose strength the search can vary: its own, or
    ``SEARCHED_AUGMENTATION`` at strength 0 (which changes nothing) when it has none."""
    if spec.dataset.augment:
        return spec
    step = AugmentStep(name=SEARCHED_AUGMENTATION, strength=0.0)
    dataset = spec.dataset.model_copy(update={"augment": (step,)})
    return spec.model_copy(update={"dataset": dataset})


def without_idle_augmentation(spec: RunSpec) -> RunSpec:
    """``spec`` less augmentations at strength 0: a chosen recipe shows what it does."""
    kept = tuple(step for step in spec.dataset.augment if step.strength > 0)
    if kept == spec.dataset.augment:
        return spec
    return spec.model_copy(update={"dataset": spec.dataset.model_copy(update={"augment": kept})})


SHIFT_STRENGTHS = (0.0, 0.25, 0.5, 0.75, 1.0)
"""The strengths of ``SEARCHED_AUGMENTATION`` the search picks from: none, and shifts of up
to 1, 2, 3 or 4 pixels on 32. Steps rather than a range, so that "none" can be picked (a
range would offer 0.003, a shift of no pixel that still reads as an augmentation)."""


def searches_shifts(asked: RunSpec) -> bool:
    """Whether the searched augmentation is the search's own shifts, not the person's: their
    data has none. The one rule for the searched range, the first points and the final run."""
    return not asked.dataset.augment


def _strength_param(asked: RunSpec) -> dict[str, Any]:
    """How the first augmentation's strength is searched (see the constants above)."""
    if not searches_shifts(asked):
        low, high = AUGMENT_STRENGTH
        return {"range": {"low": low, "high": high}}
    return {"choices": list(SHIFT_STRENGTHS)}


def search_params(
    base: RunSpec,
    lr_bounds: tuple[float, float],
    widths: tuple[float, ...],
    networks: tuple[str, ...],
    asked: RunSpec | None = None,
) -> list[dict[str, Any]]:
    """The parameters a short search varies (see the module docstring), as SearchSpec wants;
    ``lr_bounds`` from ``lr_range``. ``base`` comes from ``with_searched_augmentation``;
    ``asked`` (default ``base``) is the person's spec, which says whose augmentation it is."""
    low, high = lr_bounds
    decay = dict(zip(("low", "high"), decay_range(base), strict=True), log=True)
    params: list[dict[str, Any]] = [
        {"path": "train.lr", "range": {"low": low, "high": high, "log": True}},
        {"path": "train.weight_decay", "range": decay},
    ]
    if base.dataset.augment:
        params.append({"path": "dataset.augment.0.strength", **_strength_param(asked or base)})
    if len(set(widths)) > 1:
        params.append({"path": "architecture.width", "choices": sorted(set(widths))})
    if len(set(networks)) > 1:
        params.append({"path": "architecture.preset", "choices": list(dict.fromkeys(networks))})
    return params


def first_points(asked: RunSpec, found_lr: float | None) -> list[dict[str, Any]]:
    """The trials the search runs first, before TPE samples: the person's own rate, weight
    decay and augmentation (a recipe that already works is the point to beat); when the data
    has no augmentation, the same recipe with full-strength shifts (a short search samples
    too few points to find them by chance: on sample:shapes its nine trials at 3 minutes
    tried shifts only at rates too low to train); then the range test's rate with the same
    decay and an augmentation strength the sampler picks. Values outside the searched
    ranges are left to the sampler."""
    decay = asked.train.weight_decay
    low, high = decay_range(asked)
    fixed: dict[str, Any] = {"train.weight_decay": decay} if low <= decay <= high else {}
    weakest, strongest = AUGMENT_STRENGTH
    shifts = searches_shifts(asked)
    if shifts:
        own: dict[str, Any] = {"dataset.augment.0.strength": 0.0}
    elif weakest <= asked.dataset.augment[0].strength <= strongest:
        own = {"dataset.augment.0.strength": asked.dataset.augment[0].strength}
    else:
        own = {}
    points = [{"train.lr": asked.train.lr, **fixed, **own}]
    if shifts:  # the same recipe with shifts: a paired answer to "do shifts help here?"
        points.append({"train.lr": asked.train.lr, **fixed, "dataset.augment.0.strength": 1.0})
    if found_lr is not None and not math.isclose(found_lr, asked.train.lr, rel_tol=0.05):
        points.append({"train.lr": found_lr, **fixed})
    return points


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
    db_path: str | Path,
    experiment_id: int,
    trainer: Trainer,
    should_stop: Callable[[], bool],
    on_trial: Callable[[TrialOutcome], None],
    emit: Callable[[Any], None] = lambda event: None,
    *,
    first: Sequence[dict[str, Any]] = (),
) -> SweepResult:
    """Train ``search``'s trials as runs of ``experiment_id`` until done or stopped.

    ``first`` are points (some or all parameters) tried before the sampler's own, as Optuna's
    ``enqueue_trial`` queues them; they count towards the trial budget.
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = open_study(search, stg.open_storage(None, db_path))
    if not study.get_trials(deepcopy=False):
        for point in list(first)[: search.trials]:
            study.enqueue_trial(point, skip_if_exists=True)
    queue.top_up(search, study)
    objective = objective_for(
        search,
        db_path,
        trainer,
        should_stop,
        sample_system=False,
        emit=emit,
        experiment_id=experiment_id,
    )
    work(search, study, objective, should_stop, on_trial)
    return summarise(search, study)


# --------------------------------------------------------------------------- the phase


def search(run: RunState, measured: Measured) -> None:
    """A short TPE search sized to its allotment, then the pick the final run trains.

    The allotment is the search's share of what remains, or all that a final run of
    ``Plan.epoch_cap`` epochs would leave over, whichever is more (the cap of an augmented
    recipe, since augmentation is among what the search varies).

    Skipped, with its time handed on, when the allotment affords fewer than ``MIN_TRIALS``
    trials. The trials' measured epochs and setup recalibrate the final run's sizing.
    """
    began, ledger = run.ledger.clock(), run.ledger
    cap = run.plan.epoch_cap(augmented=True)
    final_s = final_need_s(cap, measured.epoch_s, measured.setup_s)
    allot = search_allotment(ledger.allot("search"), ledger.remaining(), final_s)
    size = size_search(allot, measured.epoch_s, measured.setup_s)
    if not size.affordable:
        why = f"{allot:.0f} s afford {size.trials} trials of {size.trial_s:.1f} s"
        run.timed("search", allot, began, f"skipped: {why}")
        run.notes.reject("search", "search", f"skipped: {why}; the final run gets the time")
        return
    base = with_searched_augmentation(
        run.spec.model_copy(
            update={"train": run.spec.train.model_copy(update={"epochs": size.epochs})}
        )
    )
    found = run.found_lr
    anchors = [run.asked.train.lr] + ([found] if found is not None else [])
    low, high = lr_range(anchors)
    params = search_params(base, (low, high), run.plan.widths, run.plan.networks, run.asked)
    sweep = search_spec(base, params, f"optimize-{run.experiment_id}", size.trials)
    points = first_points(run.asked, found)
    rates = {point["train.lr"] for point in points}
    tried = "tried first" if len(rates) == 1 else "both tried first"
    run.notes.decide(
        "search",
        f"lr from {low:.1e} to {high:.1e}",
        f"around your rate {run.asked.train.lr:.1e}"
        + (f" and the range test's {found:.1e}" if found is not None else "")
        + f" ({tried}), {size.trials} trials of up to {size.epochs} epochs",
    )
    if searches_shifts(run.asked):
        run.notes.decide(
            "search",
            f"{SEARCHED_AUGMENTATION} from 0 to 1",
            "your data has no augmentation, so random shifts (up to an eighth of the side) "
            "are searched, none included, your recipe tried first without them and with "
            "them at full strength: they keep a centred object's class, and on cnn-lab's "
            "samples they let longer runs keep improving",
        )
    walls: dict[int, float] = {}
    last = [run.ledger.clock()]
    show = run.stage("search")
    epoch_times: dict[int, list[float]] = {}
    current: list[float] = []  # the running trial's epochs (trials run one at a time)

    def on_trial(outcome: Any) -> None:
        now = run.ledger.clock()
        if outcome.run_id is not None:
            walls[outcome.run_id] = now - last[0]
            epoch_times[outcome.run_id] = list(current)
        current.clear()
        last[0] = now
        show(f"trial {outcome.number} {outcome.state}", len(walls), size.trials)

    def on_event(event: Any) -> None:
        from cnn_lab.engine.train.events import EpochEnd

        if isinstance(event, EpochEnd) and event.epoch_s > 0:
            current.append(float(event.epoch_s))

    result = run.tuners.search(
        sweep,
        run.db_path,
        run.experiment_id,
        run.tuners.train,
        run.stop_at(began + allot),
        on_trial,
        on_event,
        first=points,
    )
    completed = [t for t in result.trials if t.state == "complete" and t.run_id is not None]
    for trial in result.trials:
        if trial.run_id is not None:
            run.run_ids.append(trial.run_id)
    for trial in completed:
        run.scores[trial.run_id] = float(trial.value or 0.0)
        run.trials[trial.run_id] = trial.number
        run.specs[trial.run_id] = without_idle_augmentation(
            sweep.trial_spec(trial.params, trial.number)
        )
    pick(run, sweep, result.trials, walls)
    calibrate(run, walls, epoch_times, measured)
    run.timed("search", allot, began, "stopped" if run.user_stop() else "done")


def pick(run: RunState, sweep: Any, trials: Any, walls: dict[int, float]) -> None:
    """Choose the trial the final run trains, and word why."""
    from cnn_lab.engine.optimize.choice import choose, trial_sentences

    completed = [t for t in trials if t.state == "complete" and t.run_id is not None]
    if not completed:
        run.notes.reject(
            "search", "search", "no trial completed; the final run keeps the measured recipe"
        )
        return
    chosen, why = choose(completed, walls, run.plan.goal, run.plan.target)
    run.spec = without_idle_augmentation(
        sweep.trial_spec(chosen.params, chosen.number).model_copy(update={"name": run.spec.name})
    )
    for choice, evidence in why:
        run.notes.decide("search", choice, evidence)
    for option, reason in trial_sentences(trials, chosen, walls):
        run.notes.reject("search", option, reason)


def calibrate(
    run: RunState, walls: dict[int, float], epoch_times: dict[int, list[float]], measured: Measured
) -> None:
    """The trials' real epoch time and per-run setup replace the probe's estimates.

    The probe times a few steps; the trials ran whole epochs (validation included) and
    whole runs (the store, the data, the model, the test pass, the weights), so the final
    run is sized from them: an epoch is the larger of the median and the mean of every
    trial epoch (a slow epoch now and then counts), and a run's setup is its wall time
    less its own epochs, the larger of median and mean over the trials.
    """
    every = sorted(t for times in epoch_times.values() for t in times)
    if not every:
        return
    measured.epoch_s = max(every[len(every) // 2], sum(every) / len(every))
    measured.epochs_seen = len(every)
    overheads = sorted(
        max(0.0, walls[run] - sum(times))
        for run, times in epoch_times.items()
        if run in walls and times
    )
    if overheads:
        middle = overheads[len(overheads) // 2]
        measured.setup_s = max(middle, sum(overheads) / len(overheads))
        measured.setup_from_runs = len(overheads)


__all__ = ["run_search", "search", "search_params", "search_spec", "searches_shifts"]
