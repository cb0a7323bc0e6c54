"""Where a sweep's study lives, and how a killed sweep's unfinished trials are recovered.

The default beside a SQLite run store is an Optuna JournalStorage file: an append-only log
that survives a kill at any moment (a half-written record is ignored on replay) and that
several worker processes on one machine can share. A URL ("sqlite:///…", "postgresql://…")
uses Optuna's RDB storage instead, for workers on several machines; and a PostgreSQL run
store keeps its sweeps' studies in its own database (schema ``cnn_lab_optuna``) by default.

Everything here goes through Optuna's public storage interface (``BaseStorage``'s methods,
the one custom storages implement): a study's own ``_storage`` is private, so ``open_study``
records the storage it opened the study on (``remember``) and ``storage_of`` gives it back.

Optuna fails stale RUNNING trials only for storages with a heartbeat (RDB), and the journal
has none, so a trial whose process was killed would stay RUNNING for ever. ``recover``
does that job for the journal: each trial records which process runs it, and a trial whose
process is gone is failed and queued again with the same parameters.
"""

from __future__ import annotations

import hashlib
import os
import socket
import time
import weakref
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import BaseStorage, JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial, TrialState

from cnn_lab.engine.errors import StoreError
from cnn_lab.engine.store.locations import connect_url, describe, is_postgres

#: user_attrs and system_attrs keys this package writes on trials.
WORKER = "worker"
INTERRUPTED = "interrupted"
RETRY_OF = "cnn_lab_retry_of"

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
    return {"host": socket.gethostname(), "pid": os.getpid()}


def worker_seed() -> int:
    """A number that differs between worker processes (host and pid), to shift sampler seeds."""
    digest = hashlib.sha256(f"{socket.gethostname()}:{os.getpid()}".encode()).digest()
    return 1 + int.from_bytes(digest[:3], "big")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def _is_dead(trial: FrozenTrial, now: float) -> bool:
    """Whether a RUNNING trial's process is known to be gone.

    Only this machine's processes can be checked; a trial claimed on another host is left
    alone (its own host's next sweep recovers it), never failed on a guess.
    """
    worker = trial.user_attrs.get(WORKER)
    if not isinstance(worker, dict):
        started = trial.datetime_start.timestamp() if trial.datetime_start else now
        return now - started > UNCLAIMED_GRACE_S
    if worker.get("host") != socket.gethostname():
        return False
    pid = worker.get("pid")
    return isinstance(pid, int) and pid != os.getpid() and not _pid_alive(pid)


def _retry(study: optuna.Study, trial: FrozenTrial) -> None:
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


def recover(study: optuna.Study) -> list[int]:
    """Fail the trials whose process died, queue every interrupted trial again; their numbers.

    An interrupted trial is one stopped by the person or by a kill: its result says nothing
    about its parameters, so it must neither count against the budget nor be lost.
    """
    now = time.time()
    storage = storage_of(study)
    trials = study.get_trials(deepcopy=False)
    for trial in trials:
        if trial.state == TrialState.RUNNING and _is_dead(trial, now):
            dead = trial_id(storage, study, trial)
            storage.set_trial_user_attr(dead, INTERRUPTED, True)
            storage.set_trial_state_values(dead, state=TrialState.FAIL)
    trials = study.get_trials(deepcopy=False)
    retried = {t.system_attrs.get(RETRY_OF) for t in trials}
    queued = []
    for trial in trials:
        if (
            trial.state == TrialState.FAIL
            and trial.user_attrs.get(INTERRUPTED)
            and trial.number not in retried
        ):
            _retry(study, trial)
            queued.append(trial.number)
    return queued


def counted(trial: FrozenTrial) -> bool:
    """Whether a trial counts against the budget: finished, and not merely interrupted."""
    return trial.state.is_finished() and not trial.user_attrs.get(INTERRUPTED)


__all__ = [
    "counted",
    "default_storage",
    "default_storage_path",
    "open_storage",
    "recover",
    "worker_record",
    "worker_seed",
]
