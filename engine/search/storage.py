"""Where a sweep's study lives, and how a killed sweep's unfinished trials are recovered.

The default beside a SQLite run store is an Optuna JournalStorage file: an append-only log
that survives a kill at any moment (a half-written record is ignored on replay) and that
several worker processes on one machine can share. A URL ("sqlite:///…", "postgresql://…")
uses Optuna's RDB storage instead, for workers on several machines; and a PostgreSQL run
store keeps its sweeps' studies in its own database (schema ``cnn_lab_optuna``) by default.

Everything here goes through Optuna's public storage interface (``BaseStorage``'s methods,
the one custom storages implement): a study's own ``_storage`` is private, so ``open_study``
records the storage it opened the study on (``remember``) and ``storage_of`` gives it back.

A trial whose worker was killed would stay RUNNING for ever, its grid point never trained.
``recover`` (at a sweep's start) and ``reclaim`` (while a worker waits for the others) fail
such a trial and queue its parameters again. Each trial records its worker (host and
process, ``worker_record``) and the run it trains now (``RUN_NOW``); it is dead when

- it ran on this host and its process is gone (the fast path: a pid check); or
- its run, in the run store this worker uses, was crashed by the run store's lease: no
  heartbeat for ``stale_after_s`` on the store's clock (engine/store/liveness.py), whoever
  looked; this is how a worker killed on another machine is noticed.

Why the run store's lease and not Optuna's own heartbeat (``RDBStorage(heartbeat_interval,
grace_period)`` with ``optuna.storages.fail_stale_trials``): Optuna beats only inside
``Study.optimize`` (its heartbeat thread is private), and the workers here take trials with
``queue.take`` and ``tell``; it exists only for RDB storages, not the journal; and it would
be a second clock and a second deadline beside the run's. With one lease, a trial is given up
exactly when the window shows its run crashed, and on the PostgreSQL server's clock, so
machines whose clocks disagree still agree. A trial claimed on another host whose run the
store cannot vouch for (a run in another machine's SQLite file, or none recorded yet) is left
alone rather than failed on a guess, and no one waits for it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import BaseStorage, JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial, TrialState

from cnn_lab.engine.errors import RunNotFound, StoreError, UserError
from cnn_lab.engine.store import status as st
from cnn_lab.engine.store.liveness import lease_s, this_host
from cnn_lab.engine.store.locations import connect_url, describe, is_postgres, open_store

if TYPE_CHECKING:
    from cnn_lab.engine.specs import RunSpec
    from cnn_lab.engine.store import RunRecord

log = logging.getLogger(__name__)

#: user_attrs and system_attrs keys this package writes on trials.
WORKER = "worker"
INTERRUPTED = "interrupted"
RETRY_OF = "cnn_lab_retry_of"
RUN_NOW = "run_now"
"""The run a trial trains now, ``{"id": run id, "spec_hash": ..., "name": ...}`` of its
spec (they tell that a run of that id in this worker's store is this trial's, not another
store's run that happens to have the same id)."""

#: A RUNNING trial without a worker record older than this is taken to be dead: the record
#: is written first thing in the trial, so only a kill in that instant leaves none.
UNCLAIMED_GRACE_S = 60.0


OPTUNA_SCHEMA = "cnn_lab_optuna"
"""The PostgreSQL schema a sweep's study lives in when the run store is PostgreSQL: its own,
so the run store's check for another application's tables (in its schema) never sees
Optuna's, and Optuna's migrations never touch the run store's."""


def default_storage_path(db_location: str | Path) -> Path:
    """The journal file beside a SQLite run store (a PostgreSQL store has none: see
    ``default_storage``)."""
    db = Path(db_location)
    return db.with_name(db.stem + ".sweeps.journal")


def default_storage(db_location: str | Path) -> str:
    """Where a sweep's study lives when no ``--storage`` is given, as a sentence names it: the
    journal beside a SQLite store, or the PostgreSQL store's own database."""
    location = os.fspath(db_location)
    if is_postgres(location):
        return f"{describe(location)} (schema {OPTUNA_SCHEMA})"
    return str(default_storage_path(location))


def optuna_url(db_location: str) -> str:
    """The SQLAlchemy address of a PostgreSQL run store's database, through psycopg 3
    (the driver the run store uses, so no second one is needed)."""
    url = connect_url(db_location)
    return "postgresql+psycopg://" + url.split("://", 1)[1]


def _ensure_schema(db_location: str) -> None:
    """Create the study's schema if missing (Optuna creates tables, not schemas)."""
    import psycopg
    from psycopg import sql

    from cnn_lab.engine.store.postgres.connect import connect

    conn, where = connect(connect_url(db_location))
    try:
        with conn:
            conn.execute(
                sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(OPTUNA_SCHEMA))
            )
    except psycopg.errors.UniqueViolation:
        pass  # another worker created it at the same instant
    except psycopg.Error as exc:
        raise StoreError(
            f"The sweep's study could not be kept in {where} (schema {OPTUNA_SCHEMA}): "
            f"{' '.join(str(exc).split())}.",
            "Ask the database's owner for the right to create a schema, or give --storage.",
        ) from exc
    finally:
        conn.close()


def open_storage(storage: str | None, db_location: str | Path) -> BaseStorage:
    """A journal file (the default beside a SQLite store, or a plain path), an RDB URL, or,
    by default for a PostgreSQL run store, Optuna's RDB storage in the same database, opened
    for ``create_study`` (``optuna.storages.get_storage``, as ``create_study`` itself would
    open a URL).

    A lab's sweep workers on several machines then share one study without a second address
    to pass around: the run store's is enough.
    """
    if storage is not None and "://" in storage:
        return optuna.storages.get_storage(storage)
    location = os.fspath(db_location)
    if storage is None and is_postgres(location):
        _ensure_schema(location)
        return optuna.storages.RDBStorage(
            optuna_url(location),
            engine_kwargs={"connect_args": {"options": f"-csearch_path={OPTUNA_SCHEMA}"}},
        )
    path = Path(storage) if storage else default_storage_path(location)
    path.parent.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(str(path)))


_OPENED: weakref.WeakKeyDictionary[optuna.Study, BaseStorage] = weakref.WeakKeyDictionary()


def remember(study: optuna.Study, storage: BaseStorage) -> None:
    """Record the storage ``study`` was opened on, for ``storage_of``."""
    _OPENED[study] = storage


def storage_of(study: optuna.Study) -> BaseStorage:
    """The storage ``study`` was opened on by ``open_study`` (Optuna has no public accessor)."""
    try:
        return _OPENED[study]
    except KeyError:
        raise ValueError(f"study {study.study_name!r} was not opened by open_study") from None


def trial_id(storage: BaseStorage, study: optuna.Study, trial: FrozenTrial) -> int:
    """A trial's storage id, through the storage's public lookup (FrozenTrial keeps it
    private)."""
    study_id = storage.get_study_id_from_name(study.study_name)
    return storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)


def worker_record() -> dict[str, Any]:
    """Who runs a trial: this host (``$CNN_LAB_HOST`` or its hostname; liveness.py) and
    this process."""
    return {"host": this_host(), "pid": os.getpid()}


def worker_seed() -> int:
    """A number that differs between worker processes (host and pid), to shift sampler seeds."""
    digest = hashlib.sha256(f"{this_host()}:{os.getpid()}".encode()).digest()
    return 1 + int.from_bytes(digest[:3], "big")


def run_now(run_id: int, spec: RunSpec) -> dict[str, Any]:
    """The ``RUN_NOW`` record of a trial that trains ``spec`` as run ``run_id`` now."""
    return {"id": int(run_id), "spec_hash": spec.spec_hash(), "name": spec.name}


def _is_trial_run(record: RunRecord, run: dict[str, Any]) -> bool:
    """Whether ``record`` is the run ``run`` (a ``RUN_NOW`` record) names: the same spec
    hash and spec name (the hash leaves the name, which holds the trial's number, out)."""
    if record.spec_hash != run.get("spec_hash"):
        return False
    try:
        recorded = json.loads(record.spec_json)
    except ValueError:
        return False
    return isinstance(recorded, dict) and recorded.get("name") == run.get("name")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


DEAD, ALIVE, UNKNOWN = "dead", "alive", "unknown"
"""What ``reclaim`` makes of a RUNNING trial: its worker is gone; is (or may be) at work,
so worth waiting for; or cannot be judged from here (another host's trial whose run this
worker's store does not hold), so neither failed nor waited for."""

_STUCK: dict[tuple[str, int, int, str], float] = {}
"""When this process first saw a RUNNING trial's run queued (its job not started) or ended
(the trial not yet told), by (study, trial, run, status): a live worker leaves either state
within moments, so a trial seen in one for a whole lease has lost its worker."""


def _by_process(trial: FrozenTrial, now: float) -> str | None:
    """The verdict the worker record gives on this host; None for another host's trial.

    Only this host's processes can be checked; a trial without a record older than
    ``UNCLAIMED_GRACE_S`` is dead (the record is written first thing in a trial).
    """
    worker = trial.user_attrs.get(WORKER)
    if not isinstance(worker, dict):
        started = trial.datetime_start.timestamp() if trial.datetime_start else now
        return DEAD if now - started > UNCLAIMED_GRACE_S else ALIVE
    if worker.get("host") != this_host():
        return None
    pid = worker.get("pid")
    if not isinstance(pid, int):
        return UNKNOWN
    return DEAD if pid != os.getpid() and not _pid_alive(pid) else ALIVE


def _by_run(study_name: str, number: int, run: RunRecord) -> str:
    """The verdict another host's trial gets from its run: crashed by the lease is dead,
    running is alive, and queued or ended is alive until it has stayed so a whole lease."""
    if run.status == st.CRASHED:
        return DEAD
    if run.status == st.RUNNING:
        return ALIVE
    first = _STUCK.setdefault((study_name, number, run.id, run.status), time.monotonic())
    return DEAD if time.monotonic() - first > lease_s() else ALIVE


def _runs_of(
    trials: list[FrozenTrial], db_location: str | os.PathLike[str] | None
) -> dict[int, RunRecord]:
    """The run each trial trains now, from the run store at ``db_location``, by trial number.

    Opening the store sweeps it (a run whose heartbeat is older than the lease is crashed
    then), so this worker is "whoever looks next" for a run whose machine went quiet. A run
    is taken for a trial's only when its spec hash and name are the trial's (``RUN_NOW``): in
    another machine's store the same id is another run. A store that cannot be reached now
    gives nothing: nobody is judged by it until the next look.
    """
    asked = {}
    for trial in trials:
        run = trial.user_attrs.get(RUN_NOW)
        if isinstance(run, dict) and isinstance(run.get("id"), int):
            asked[trial.number] = run
    found: dict[int, RunRecord] = {}
    if db_location is None or not asked:
        return found
    try:
        with open_store(db_location) as store:
            for number, run in asked.items():
                try:
                    record = store.get_run(run["id"])
                except RunNotFound:
                    continue
                if _is_trial_run(record, run):
                    found[number] = record
    except UserError as exc:
        log.warning("could not ask the run store whether other workers live: %s", exc)
    return found


def _give_up(
    storage: BaseStorage, study: optuna.Study, trial: FrozenTrial, reason: str | None
) -> bool:
    """Fail a dead trial as interrupted; False when another worker failed it first.

    The storage's state change is atomic (a row lock, or the journal's order), so exactly
    one of several workers that find the same dead trial wins, and only it queues the retry.
    """
    dead = trial_id(storage, study, trial)
    try:
        storage.set_trial_user_attr(dead, INTERRUPTED, True)
        if reason:
            storage.set_trial_user_attr(dead, "reason", reason)
        return storage.set_trial_state_values(dead, state=TrialState.FAIL)
    except UpdateFinishedTrialError:
        return False


def _why(trial: FrozenTrial) -> str | None:
    worker = trial.user_attrs.get(WORKER)
    if not isinstance(worker, dict):
        return None
    run = trial.user_attrs.get(RUN_NOW)
    where = f"its worker on {worker.get('host')} (process {worker.get('pid')})"
    if worker.get("host") != this_host() and isinstance(run, dict):
        return f"{where} stopped reporting on run {run.get('id')}; run again elsewhere"
    return f"{where} is gone; run again"


def retry(study: optuna.Study, trial: FrozenTrial) -> None:
    """Queue ``trial``'s parameters again, keeping the grid point it stood for."""
    system_attrs = {k: v for k, v in trial.system_attrs.items() if k != RETRY_OF}
    system_attrs[RETRY_OF] = trial.number
    study.add_trial(
        optuna.create_trial(
            state=TrialState.WAITING,
            params=trial.params,
            distributions=trial.distributions,
            system_attrs=system_attrs,
        )
    )


@dataclass(frozen=True)
class Census:
    """What ``reclaim`` found among a study's RUNNING trials."""

    queued: list[int] = field(default_factory=list)
    """The dead trials this call failed and queued again."""
    alive: int = 0
    """Trials whose worker is (or may be) at work: a worker without work may wait for them,
    since each may still die and need running again."""


def reclaim(study: optuna.Study, db_location: str | os.PathLike[str] | None = None) -> Census:
    """Fail every RUNNING trial whose worker is dead and queue it again.

    Dead: on this host, its process is gone (the fast path), or its run in the run store at
    ``db_location`` was crashed by the lease; on another host, that run was crashed by the
    lease, or stayed queued or ended for a whole lease while this process watched. Without
    ``db_location`` only this host's processes are checked.
    """
    now = time.time()
    storage = storage_of(study)
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    by_process = {t.number: _by_process(t, now) for t in running}
    runs = _runs_of([t for t in running if by_process[t.number] != DEAD], db_location)
    verdicts: dict[int, str] = {}
    for trial in running:
        verdict, run = by_process[trial.number], runs.get(trial.number)
        if verdict is None:  # another host's trial: its run's lease tells
            verdict = UNKNOWN if run is None else _by_run(study.study_name, trial.number, run)
        elif verdict == ALIVE and run is not None and run.status == st.CRASHED:
            verdict = DEAD  # its pid now names another process (a reboot): the lease ran out
        verdicts[trial.number] = verdict
    queued = []
    for trial in running:
        if verdicts[trial.number] != DEAD:
            continue
        why = _why(trial)
        if _give_up(storage, study, trial, why):
            retry(study, trial)
            queued.append(trial.number)
            log.info("trial %d is queued again: %s", trial.number, why or "it was never claimed")
    return Census(queued, sum(v == ALIVE for v in verdicts.values()))


def recover(study: optuna.Study, db_location: str | os.PathLike[str] | None = None) -> list[int]:
    """At a sweep's start: ``reclaim`` the dead trials, then queue again every interrupted
    trial not queued yet; the numbers of the trials queued again.

    An interrupted trial is one stopped by the person or by a kill: its result says nothing
    about its parameters, so it must neither count against the budget nor be lost. Its own
    worker, or whoever reclaimed it, queues it at once; this catches one whose queuing was
    cut off (a kill between the two steps).
    """
    queued = reclaim(study, db_location).queued
    trials = study.get_trials(deepcopy=False)
    retried = {t.system_attrs.get(RETRY_OF) for t in trials}
    for trial in trials:
        if (
            trial.state == TrialState.FAIL
            and trial.user_attrs.get(INTERRUPTED)
            and trial.number not in retried
        ):
            retry(study, trial)
            queued.append(trial.number)
    return queued


def counted(trial: FrozenTrial) -> bool:
    """Whether a trial counts against the budget: finished, and not merely interrupted."""
    return trial.state.is_finished() and not trial.user_attrs.get(INTERRUPTED)


__all__ = [
    "Census",
    "counted",
    "default_storage",
    "default_storage_path",
    "open_storage",
    "reclaim",
    "recover",
    "retry",
    "run_now",
    "worker_record",
    "worker_seed",
]
