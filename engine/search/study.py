"""``run_sweep``: a SearchSpec's trials on an Optuna study, each trained as a recorded run.

Every trial trains through ``cnn_lab.engine.jobs.run_job`` (or an injected trainer with
the same call), so every trial is a normal run in the run store: listed, comparable and
resumable like any other. Its per-epoch validation metric is reported to Optuna as it
arrives, so the pruner can stop a hopeless trial mid-run: the trainer's ``should_stop``
turns true, the run ends "stopped" after its current step, and the trial is marked pruned.

The study lives in a storage that survives a kill (see storage.py), so running the same
search again resumes it: finished trials are kept, interrupted ones run again, and the
budget counts what is already done. The budget is queued in the study up front (see
queue.py), so workers on other machines (``join_sweep``) share it without repeating a point.
A worker whose queue is empty stays while others still hold trials, and takes over any whose
worker died (``work``), so a worker killed on another machine costs its trial, not its point.
"""

from __future__ import annotations

import logging
import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import FrozenTrial, Trial, TrialState

from cnn_lab.engine.errors import SpecError, UserError
from cnn_lab.engine.search import queue
from cnn_lab.engine.search import storage as stg
from cnn_lab.engine.search.history import SWEEP_KIND
from cnn_lab.engine.search.spec import ParamSpec, SearchSpec
from cnn_lab.engine.specs import RunSpec
from cnn_lab.engine.store import RunRecord, RunRepository, open_store
from cnn_lab.engine.store import status as st
from cnn_lab.engine.store.liveness import lease_s

log = logging.getLogger(__name__)

Emit = Callable[[Any], None]


class Trainer(Protocol):
    """What trains one trial's run: ``run_job``'s call, which tests replace with a fake."""

    def __call__(
        self,
        spec: RunSpec,
        db_path: str | Path,
        run_id: int | None = None,
        *,
        emit: Emit,
        should_stop: Callable[[], bool],
        sample_system: bool,
    ) -> RunRecord | None: ...


@dataclass(frozen=True)
class TrialOutcome:
    """One finished trial, as the CLI prints it and the GUI will list it."""

    number: int
    state: str
    """complete, pruned or failed (interrupted trials are failed and queued again)."""
    params: dict[str, Any]
    value: float | None
    run_id: int | None
    epochs: int
    reason: str | None = None
    scores: tuple[float, ...] = ()
    """One score per run: per fold when cross-validating, per seed with seeds."""
    spread: float | None = None
    """The population standard deviation of ``scores`` (0 for a single run)."""

    @classmethod
    def of(cls, trial: FrozenTrial) -> TrialOutcome:
        return cls(
            number=trial.number,
            state=trial.state.name.lower(),
            params=dict(trial.params),
            value=trial.value if trial.state == TrialState.COMPLETE else None,
            run_id=trial.user_attrs.get("run_id"),
            epochs=int(trial.user_attrs.get("epochs", 0)),
            reason=trial.user_attrs.get("reason"),
            scores=tuple(trial.user_attrs.get("scores", ())),
            spread=trial.user_attrs.get("spread"),
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SweepResult:
    """The study as it stands after this invocation, earlier invocations included."""

    study_name: str
    metric: str
    maximise: bool
    best_trial: int | None
    best_params: dict[str, Any]
    best_value: float | None
    best_run_id: int | None
    trials_done: int
    trials_pruned: int
    trials_failed: int
    epochs_spent: int
    trials: tuple[TrialOutcome, ...] = field(default_factory=tuple)
    best_spread: float | None = None
    """The best trial's spread over its folds or seeds."""

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["trials"] = [t.to_dict() for t in self.trials]
        return data


# --------------------------------------------------------------------------- registries

SAMPLERS: dict[str, Callable[[SearchSpec], optuna.samplers.BaseSampler]] = {
    # A grid's points are all queued with fixed parameters (queue.py), so its sampler is never
    # asked; GridSampler itself would count the queued trials as unvisited and misbehave.
    "grid": lambda s: optuna.samplers.RandomSampler(seed=s.sampler_seed),
    "random": lambda s: optuna.samplers.RandomSampler(seed=s.sampler_seed),
    # constant_liar: a trial other workers are still training counts as a poor result,
    # so parallel workers do not all crowd around the same promising point.
    "tpe": lambda s: optuna.samplers.TPESampler(
        seed=s.sampler_seed, n_startup_trials=tpe_startup_trials(s), constant_liar=True
    ),
}


def tpe_startup_trials(search: SearchSpec) -> int:
    """Random trials before TPE models the results: a quarter of the budget, 3 to 10.

    Optuna's default of 10 suits long searches; a 16-trial budget would spend most of
    itself sampling blindly. A search bounded only by time keeps the default.
    """
    budget = search.budget()
    return 10 if budget is None else max(3, min(10, budget // 4))


PRUNERS: dict[str, Callable[[SearchSpec], optuna.pruners.BasePruner]] = {
    "none": lambda s: optuna.pruners.NopPruner(),
    "median": lambda s: optuna.pruners.MedianPruner(
        n_startup_trials=s.prune_startup_trials, n_warmup_steps=s.prune_warmup_epochs
    ),
    "halving": lambda s: optuna.pruners.SuccessiveHalvingPruner(min_resource=1),
    "hyperband": lambda s: optuna.pruners.HyperbandPruner(
        min_resource=1, max_resource=s.steps_per_trial
    ),
}


def suggest(trial: Trial, param: ParamSpec) -> Any:
    """Ask Optuna for one value of ``param``; the path is the parameter's name."""
    options = param.values if param.values is not None else param.choices
    if options is not None:
        return trial.suggest_categorical(param.path, list(options))
    r = param.range
    assert r is not None  # ParamSpec guarantees exactly one of the three
    if r.integer:
        return trial.suggest_int(
            param.path, int(r.low), int(r.high), step=int(r.step or 1), log=r.log
        )
    return trial.suggest_float(param.path, r.low, r.high, step=r.step, log=r.log)


# --------------------------------------------------------------------------- trial


class _TrialFailed(Exception):
    """The trial's run failed or its parameters make no valid run; the sweep goes on."""


class _Interrupted(Exception):
    """The person stopped the sweep mid-trial; the trial runs again when the sweep resumes."""


class _Objective:
    """Trains one trial: one run, ``seeds`` runs, or one run per fold when cross-validating.

    Pruning with folds reports the *running mean*: after epoch ``e`` of fold ``f`` the
    trial reports, at step ``f * epochs + e``, the mean of the finished folds' scores and
    the current fold's value at this epoch. Every cross-validating trial reports at the same
    steps with the same mix of finished and partial folds, so a pruner compares like with
    like, and a trial whose first fold is clearly bad stops after its first epochs instead
    of training k runs. (Optuna's percentile pruners judge a trial by its best report so
    far, so a trial good in fold 0 and bad later is let finish: its mean then tells.)
    """

    def __init__(
        self,
        search: SearchSpec,
        db_path: str,
        trainer: Trainer,
        should_stop: Callable[[], bool],
        emit: Emit,
        sample_system: bool,
        device: str | None = None,
        experiment_id: int | None = None,
    ) -> None:
        self.search = search
        self.db_path = db_path
        self.trainer = trainer
        self.should_stop = should_stop
        self.emit = emit
        self.sample_system = sample_system
        self.device = device
        """The slot this worker trains on (``cuda:1``, ``cpu``); None keeps the spec's own."""
        self._experiment_id = experiment_id
        """Where trial runs are filed; None: the sweep's own experiment, made at the first."""

    def _runs(self, params: dict[str, Any], number: int) -> list[tuple[RunSpec, bool]]:
        """Each run of the trial and whether it reports to the pruner.

        Seed repeats beyond the first stay silent: their epochs would repeat the first
        seed's steps. Folds all report, at steps that carry on where the last fold ended.
        """
        search = self.search
        if search.folds is not None:
            runs = [
                (search.trial_spec(params, number, fold=fold), True) for fold in range(search.folds)
            ]
        else:
            runs = [
                (search.trial_spec(params, number, seed_index), seed_index == 0)
                for seed_index in range(search.seeds)
            ]
        if self.device is None:
            return runs
        return [(on_device(spec, self.device), report) for spec, report in runs]

    def __call__(self, trial: Trial) -> float:
        trial.set_user_attr(stg.WORKER, stg.worker_record())
        if self.device is not None:
            trial.set_user_attr("slot", self.device)
        params = {p.path: suggest(trial, p) for p in self.search.params}
        scores: list[float] = []
        run_ids: list[int] = []
        step = 0
        cross_validating = self.search.folds is not None
        try:
            for spec, report in self._runs(params, trial.number):
                score, run_id = self._run(
                    trial,
                    spec,
                    report=report,
                    first_step=step,
                    finished=scores if cross_validating else [],
                )
                step += spec.train.epochs
                run_ids.append(run_id)
                scores.append(score)
                trial.set_user_attr("run_ids", run_ids)
                trial.set_user_attr("scores", scores)
        except SpecError as exc:
            trial.set_user_attr("reason", exc.message)
            raise _TrialFailed(exc.message) from None
        trial.set_user_attr("spread", statistics.pstdev(scores))
        return statistics.fmean(scores)

    def _run(
        self,
        trial: Trial,
        spec: RunSpec,
        *,
        report: bool,
        first_step: int = 0,
        finished: list[float] | None = None,
    ) -> tuple[float, int]:
        """Train one run; its best metric and run id. Raises to prune, fail or stop.

        With ``finished`` (earlier folds' scores) the pruner sees the running mean described
        on the class; without, the epoch's own value. The trial's ``run_id`` (its first run)
        and ``epochs`` (over all its runs) are recorded as soon as they are known, so even a
        killed trial points at its run.
        """
        from cnn_lab.engine.jobs.job import create_run
        from cnn_lab.engine.train.events import EpochEnd

        with open_store(self.db_path) as store:
            if self._experiment_id is None:
                self._experiment_id = sweep_experiment(store, self.search)
            run_id = create_run(store, spec, experiment_id=self._experiment_id)
        trial.set_user_attr("run_id", trial.user_attrs.get("run_id", run_id))
        # The run whose lease tells other workers whether this one is alive (storage.py).
        trial.set_user_attr(stg.RUN_NOW, stg.run_now(run_id, spec))
        metric = self.search.metric
        earlier = list(finished or [])
        values: list[float] = []
        pruned = [False]

        def on_event(event: Any) -> None:
            if isinstance(event, EpochEnd):
                value = event.val_accuracy if metric == "val.accuracy" else event.val_loss
                values.append(float(value))
                if report:
                    running = (sum(earlier) + float(value)) / (len(earlier) + 1)
                    trial.report(running, first_step + event.epoch)
                    if trial.should_prune():
                        pruned[0] = True
            self.emit(event)

        record = self.trainer(
            spec,
            self.db_path,
            run_id,
            emit=on_event,
            should_stop=lambda: pruned[0] or self.should_stop(),
            sample_system=self.sample_system,
        )
        trial.set_user_attr("epochs", trial.user_attrs.get("epochs", 0) + len(values))
        if pruned[0]:
            where = f" of fold {spec.dataset.fold}" if self.search.folds is not None else ""
            trial.set_user_attr("reason", f"pruned after {len(values)} epochs{where}")
            raise optuna.TrialPruned()
        if self.should_stop():
            trial.set_user_attr(stg.INTERRUPTED, True)
            raise _Interrupted()
        status = record.status if record is not None else st.FAILED
        finite = [v for v in values if v == v]  # drop NaN: a diverged epoch scores nothing
        if status != st.COMPLETED or not finite:
            reason = (record.reason if record is not None else None) or "the run has no result"
            trial.set_user_attr("reason", reason)
            raise _TrialFailed(reason)
        best = max(finite) if self.search.maximise else min(finite)
        return best, run_id


def on_device(spec: RunSpec, device: str) -> RunSpec:
    """``spec`` trained on ``device`` (a slot); the same spec when it already asks for it."""
    if spec.train.device == device:
        return spec
    return spec.model_copy(update={"train": spec.train.model_copy(update={"device": device})})


def sweep_experiment(store: RunRepository, search: SearchSpec) -> int:
    """The run store's experiment for this sweep (kind "sweep", named for its study).

    Every trial's runs belong to it, so the runs browser can group a sweep's runs and a
    report can find them; workers on one database share it, and a resumed sweep finds it.
    """
    return store.find_or_create_experiment(
        search.study_name(), kind=SWEEP_KIND, spec_json=search.to_json()
    )


# --------------------------------------------------------------------------- study


def open_study(search: SearchSpec, storage: Any, worker: int = 0) -> optuna.Study:
    """Create the study, or load it when this search ran before; refuse a changed search.

    The search itself is saved in the study's user_attrs (refreshed on every invocation,
    so a raised budget is what workers see), which is how ``join_sweep`` recovers it from
    nothing but the study's name and storage.

    ``worker`` shifts the sampler's seed: workers sharing a study with one seed would draw
    the same random points for their first trials, each repeating the others' work.
    """
    seeded = search.model_copy(update={"sampler_seed": (search.sampler_seed + worker) % 2**31})
    storage = optuna.storages.get_storage(storage)  # an opened storage comes back as it is
    study = optuna.create_study(
        study_name=search.study_name(),
        storage=storage,
        sampler=SAMPLERS[search.strategy](seeded),
        pruner=PRUNERS[search.pruner](search),
        direction="maximize" if search.maximise else "minimize",
        load_if_exists=True,
    )
    stg.remember(study, storage)
    known = study.user_attrs.get("search_hash")
    if known is None:
        study.set_user_attr("search_hash", search.study_hash())
    elif known != search.study_hash():
        raise UserError(
            f"A different sweep named {search.study_name()!r} is already in this storage.",
            hint="Give this search a new name, or run the one that was saved.",
        )
    if study.user_attrs.get("search") != search.model_dump(mode="json"):
        study.set_user_attr("search", search.model_dump(mode="json"))
    return study


def summarise(search: SearchSpec, study: optuna.Study) -> SweepResult:
    """The result over every trial the study holds (earlier invocations included)."""
    trials = [t for t in study.get_trials(deepcopy=False) if t.state.is_finished()]
    outcomes = tuple(TrialOutcome.of(t) for t in trials)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    best = None
    if complete:
        key = (lambda t: t.value) if search.maximise else (lambda t: -t.value)
        best = max(complete, key=key)
    return SweepResult(
        study_name=study.study_name,
        metric=search.metric,
        maximise=search.maximise,
        best_trial=best.number if best else None,
        best_params=dict(best.params) if best else {},
        best_value=best.value if best else None,
        best_run_id=best.user_attrs.get("run_id") if best else None,
        trials_done=len(complete),
        trials_pruned=sum(t.state == TrialState.PRUNED for t in trials),
        trials_failed=sum(t.state == TrialState.FAIL and stg.counted(t) for t in trials),
        epochs_spent=sum(int(t.user_attrs.get("epochs", 0)) for t in trials),
        trials=outcomes,
        best_spread=best.user_attrs.get("spread") if best else None,
    )


IDLE_POLL_MAX_S = 10.0
"""The longest a worker without work waits before it looks again for a trial to take over."""


def idle_poll_s() -> float:
    """How often a worker without work looks for trials whose worker died: a third of the
    lease (``$CNN_LAB_LEASE_S``), so a dead worker's trial is taken over soon after its run
    is crashed, and at least every ``IDLE_POLL_MAX_S``."""
    return min(IDLE_POLL_MAX_S, max(0.5, lease_s() / 3))


def work(
    search: SearchSpec,
    study: optuna.Study,
    objective: _Objective,
    should_stop: Callable[[], bool],
    progress: Callable[[TrialOutcome], None],
) -> None:
    """Take trials from the queue and train them until the sweep is done, time is up or stopped.

    The ask-and-tell loop ``Study.optimize`` runs, with ``queue.take`` in place of ``ask``
    so that a budgeted study's workers never create trials beyond the queued ones.

    An empty queue ends the work only when no other worker's trial is still running: such a
    trial may yet die (its machine switched off, its process killed), and its point must run
    again. So this worker looks every ``idle_poll_s`` (``storage.reclaim``: this host's
    processes by pid, other hosts' through their runs' leases in this worker's run store),
    takes any trial queued again, and leaves once nothing waits and nothing it could judge
    runs.
    """
    deadline = None if search.timeout_s is None else time.monotonic() + search.timeout_s

    def over() -> bool:
        return should_stop() or (deadline is not None and time.monotonic() >= deadline)

    bounded = search.budget() is not None
    while not over():
        trial = queue.take(study, bounded=bounded)
        if trial is None:
            census = stg.reclaim(study, objective.db_path)
            if census.queued:
                log.info("took over trials whose worker died: %s", census.queued)
                continue
            if not census.alive:
                if _waiting(study):  # queued again by another worker a moment ago
                    continue
                return
            _idle(over)
            continue
        frozen = _attempt(study, trial, objective)
        if frozen is not None:
            progress(TrialOutcome.of(frozen))


def _waiting(study: optuna.Study) -> bool:
    return bool(study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))


def _idle(over: Callable[[], bool]) -> None:
    """Wait ``idle_poll_s``, or less when stopped or out of time."""
    until = time.monotonic() + idle_poll_s()
    while not over() and time.monotonic() < until:
        time.sleep(min(0.2, max(0.0, until - time.monotonic())))


def _attempt(study: optuna.Study, trial: Trial, objective: _Objective) -> FrozenTrial | None:
    """Train one trial and tell the study how it ended; None when another worker gave it up
    for dead meanwhile (this one stalled past its run's lease) and has queued it again."""
    try:
        value = objective(trial)
    except optuna.TrialPruned:
        return _tell(study, trial, state=TrialState.PRUNED)
    except _TrialFailed:
        return _tell(study, trial, state=TrialState.FAIL)
    except _Interrupted:
        frozen = _tell(study, trial, state=TrialState.FAIL)
        if frozen is not None:  # queued at once: other workers still at work take it now
            stg.retry(study, frozen)
        return frozen
    except UpdateFinishedTrialError:
        _given_up(trial)
        return None
    except BaseException:
        study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
        raise
    return _tell(study, trial, value)


def _tell(
    study: optuna.Study, trial: Trial, value: float | None = None, state: TrialState | None = None
) -> FrozenTrial | None:
    """``study.tell``; None when the trial was finished by another worker first."""
    try:
        return study.tell(trial, value, state=state)
    except (UpdateFinishedTrialError, ValueError):
        if not study.get_trials(deepcopy=False)[trial.number].state.is_finished():
            raise  # a ValueError about the value itself
        _given_up(trial)
        return None


def _given_up(trial: Trial) -> None:
    log.warning(
        "trial %d was given up for dead by another worker (its run's heartbeat was late) "
        "and queued again; its result here is dropped",
        trial.number,
    )


def _prepare(search: SearchSpec, storage: Any, db_path: str | Path) -> optuna.Study:
    """Open the study, requeue interrupted trials and queue the budget: a sweep's start."""
    if search.strategy == "grid":
        search.check_grid()  # every point must be a valid run before the first one trains
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = open_study(search, storage)
    requeued = stg.recover(study, os.fspath(db_path))
    if requeued:
        log.info("queued interrupted trials again: %s", requeued)
    queue.top_up(search, study)
    return study


def create_sweep(search: SearchSpec, db_path: str | Path, *, storage: str | None = None) -> str:
    """Create (or extend) the study and queue its budget without training; its name.

    For ``cnn-lab sweep --create-only``: workers on other machines then join it by name.
    """
    _prepare(search, stg.open_storage(storage, db_path), db_path)
    return search.study_name()


def run_sweep(
    search: SearchSpec,
    db_path: str | Path,
    *,
    storage: str | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    progress: Callable[[TrialOutcome], None] = lambda outcome: None,
    emit: Emit = lambda event: None,
    trainer: Trainer | None = None,
    sample_system: bool = True,
    slots: Sequence[str] | None = None,
) -> SweepResult:
    """Run (or resume) ``search`` until its budget is spent, it is stopped, or its grid is done.

    ``storage`` is a journal file path or an Optuna RDB URL (default: a journal beside the
    run database). ``progress`` sees each trial as it finishes; ``emit`` every training event
    (only when the trials train in this process). Workers started with ``join_sweep`` on the
    same storage share the budget.

    ``slots`` trains that many trials at once, each on its device (slots.py plans them; a
    GPU named twice trains two). With more than one, each slot is a worker process on the
    same study (parallel.py); with one, or None (the spec's own device), trials train here.
    """
    study = _prepare(search, stg.open_storage(storage, db_path), db_path)
    with open_store(db_path) as store:  # recorded before any trial, so a kill can resume it
        sweep_experiment(store, search)
    _train(
        search, study, db_path, storage, slots, should_stop, progress, emit, trainer, sample_system
    )
    return summarise(search, study)


def saved_search(study_name: str, storage: str | None, db_path: str | Path) -> SearchSpec:
    """The SearchSpec a sweep was created with, read back from its study in ``storage``
    (None: the default beside ``db_path``, which for a PostgreSQL run store is its database).

    Raises UserError when the storage, or a study of that name made by cnn-lab, is missing:
    a worker pointed at the wrong place must say so rather than create an empty study.
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    where = storage or stg.default_storage(db_path)
    if "://" not in where and not Path(where).is_file():
        raise UserError(
            f"There is no sweep storage at {where}.",
            hint="Give the journal file (or database URL) that `cnn-lab sweep --storage` used.",
        )
    opened = stg.open_storage(storage, db_path)
    try:
        saved = optuna.load_study(study_name=study_name, storage=opened).user_attrs.get("search")
    except KeyError:
        raise UserError(
            f"There is no sweep named {study_name!r} in {where}.",
            hint="Start it first with `cnn-lab sweep SEARCH.json --storage` and use its name.",
        ) from None
    if not isinstance(saved, dict):
        raise UserError(
            f"The study {study_name!r} in {where} was not made by cnn-lab sweep.",
            hint="Join only studies that `cnn-lab sweep` created.",
        )
    return SearchSpec.from_dict(saved)


def join_sweep(
    study_name: str,
    storage: str | None,
    db_path: str | Path,
    *,
    should_stop: Callable[[], bool] = lambda: False,
    progress: Callable[[TrialOutcome], None] = lambda outcome: None,
    emit: Emit = lambda event: None,
    trainer: Trainer | None = None,
    sample_system: bool = True,
    slots: Sequence[str] | None = None,
) -> SweepResult:
    """Work on a sweep another process created: train its queued trials until none is left.

    The SearchSpec comes from the study itself, so a worker needs only the study's name and
    a storage every machine reaches; its runs are recorded in its own ``db_path``. ``slots``
    as for ``run_sweep``: one machine's worker may train several trials at once.
    """
    search = saved_search(study_name, storage, db_path)
    seed = stg.worker_seed()  # another machine's workers must not draw this one's points
    study = open_study(search, stg.open_storage(storage, db_path), worker=seed)
    requeued = stg.recover(study, os.fspath(db_path))
    if requeued:
        log.info("queued interrupted trials again: %s", requeued)
    _train(
        search,
        study,
        db_path,
        storage,
        slots,
        should_stop,
        progress,
        emit,
        trainer,
        sample_system,
        seed_base=seed,
    )
    return summarise(search, study)


def _train(
    search: SearchSpec,
    study: optuna.Study,
    db_path: str | Path,
    storage: str | None,
    slots: Sequence[str] | None,
    should_stop: Callable[[], bool],
    progress: Callable[[TrialOutcome], None],
    emit: Emit,
    trainer: Trainer | None,
    sample_system: bool,
    seed_base: int = 0,
) -> None:
    """Train the study's trials here (one slot, or the spec's device) or on several slots.

    Slot ``i``'s worker shifts the sampler seed by ``seed_base + i + 1`` (see open_study).
    """
    if slots is not None and len(slots) > 1:
        from cnn_lab.engine.search.parallel import work_on_slots

        work_on_slots(
            search,
            db_path,
            storage,
            list(slots),
            should_stop,
            progress,
            trainer,
            sample_system,
            seed_base=seed_base,
        )
        return
    objective = objective_for(
        search,
        db_path,
        trainer,
        should_stop,
        sample_system,
        device=slots[0] if slots else None,
        emit=emit,
    )
    work(search, study, objective, should_stop, progress)


def objective_for(
    search: SearchSpec,
    db_path: str | Path,
    trainer: Trainer | None,
    should_stop: Callable[[], bool],
    sample_system: bool,
    *,
    device: str | None = None,
    emit: Emit = lambda event: None,
    experiment_id: int | None = None,
) -> _Objective:
    """What a worker calls per trial: trains it (on ``device``) and returns its score.

    ``experiment_id`` files the trial runs under an existing experiment (optimize keeps its
    trials beside its final run); by default they go under the sweep's own experiment.
    """
    return _Objective(
        search,
        os.fspath(db_path),  # a location, not a Path: a postgresql:// address must stay whole
        trainer or _run_job(),
        should_stop,
        emit,
        sample_system,
        device,
        experiment_id,
    )


def _run_job() -> Trainer:
    from cnn_lab.engine.jobs.job import run_job

    return run_job


__all__ = [
    "PRUNERS",
    "SAMPLERS",
    "SweepResult",
    "TrialOutcome",
    "create_sweep",
    "join_sweep",
    "run_sweep",
    "saved_search",
    "summarise",
]
