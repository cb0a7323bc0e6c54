"""The run store: runs, their metrics, system samples and artifacts in one SQLite file.

Several processes share the file at once (the GUI reads while each job process writes its own
run), so the store runs in WAL mode, where readers never block the writer, with a busy timeout
so writers queue for each other instead of failing. Every write is one short ``BEGIN IMMEDIATE``
transaction: taking the write lock up front means a writer waits in the busy handler instead of
failing with "database is locked" when it upgrades from a read lock.

A ``RunStore`` wraps one connection and, like the connection, belongs to the thread that opened
it. Every SQLite failure leaves as a ``StoreError`` with a sentence, never as a raw sqlite3 error.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import math
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import psutil
import sqlite_utils

from cnn_lab.engine.errors import RunNotFound, StoreError
from cnn_lab.engine.store import artifact_paths, backup, rollups, run_query, schema, tables
from cnn_lab.engine.store.busy import LOCK_WAITS
from cnn_lab.engine.store.liveness import this_host
from cnn_lab.engine.store.paths import ENV_VAR, resolve_db_path
from cnn_lab.engine.store.run_query import RunQuery
from cnn_lab.engine.store.status import ACTIVE, ALL, CRASHED, FINAL, QUEUED, RUNNING

_T = TypeVar("_T")
_log = logging.getLogger(__name__)

SWEEP_WAIT_MS = 1000
"""How long opening waits for the lock to crash stale runs before leaving it to the next open:
the sweep is housekeeping, and the GUI opens the store on its own thread."""

RUN_COLUMNS = (
    "id",
    "name",
    "status",
    "reason",
    "hint",
    "spec_json",
    "spec_hash",
    "dataset",
    "model",
    "device",
    "host",
    "pid",
    "created_at",
    "started_at",
    "ended_at",
    "heartbeat_at",
    "summary_json",
    "experiment_id",
    "note",
    "archived",
)
RUN_SELECT = f"SELECT {', '.join(f'runs.{c}' for c in RUN_COLUMNS)} FROM runs"

DEFAULT_BUCKETS = 2000
"""Step ranges a curve is cut into (``RunStore.curve``): two points each, about one per pixel
of a wide chart."""


def crash_reason(last: float) -> str:
    """Why the sweep crashed a run whose job last reported at ``last`` (both backends)."""
    stamp = time.strftime("%H:%M:%S", time.localtime(last))
    return f"The job stopped reporting at {stamp}; its process is gone."


CRASH_HINT = (
    "Everything it wrote before then is kept; look at the job's log for the cause, "
    "or start the run again."
)


@dataclass(frozen=True)
class RunRecord:
    """One row of ``runs``, decoded. Frozen so it can cross to the GUI thread safely."""

    id: int
    name: str
    status: str
    reason: str | None
    hint: str | None
    spec_json: str
    spec_hash: str
    dataset: str
    model: str
    device: str
    host: str | None
    pid: int | None
    created_at: float
    started_at: float | None
    ended_at: float | None
    heartbeat_at: float | None
    summary: dict[str, Any] = field(default_factory=dict)
    experiment_id: int | None = None
    note: str = ""
    archived: bool = False
    tags: tuple[str, ...] = ()

    @property
    def duration_s(self) -> float | None:
        """Seconds it ran: to its end, or to its last heartbeat while it still runs."""
        if self.started_at is None:
            return None
        until = self.ended_at if self.ended_at is not None else self.heartbeat_at
        return None if until is None else max(0.0, until - self.started_at)

    def to_dict(self) -> dict[str, Any]:
        """Every field plus ``duration_s``, as plain JSON-ready values."""
        data = asdict(self)
        data["duration_s"] = self.duration_s
        return data


@dataclass(frozen=True, slots=True)
class MetricPoint:
    """One scalar logged by training at a step. ``value`` may be NaN (stored as NULL)."""

    run_id: int
    step: int
    epoch: int
    key: str
    value: float
    time: float


@dataclass(frozen=True, slots=True)
class SystemSample:
    """One reading of a system gauge (GPU use, memory, CPU) at a wall-clock time."""

    run_id: int
    time: float
    key: str
    value: float


@dataclass(frozen=True)
class GaugeStats:
    """One system gauge of one run, summarised (``RunStore.gauge_stats``)."""

    key: str
    count: int
    mean: float | None
    low: float | None
    high: float | None
    first_time: float


class UnreadableStore(StoreError):
    """The file cannot be read as a run store: it is not SQLite, or it is damaged. The window
    offers to start a new one or restore a backup; nothing has moved or changed it yet."""

    def __init__(self, path: Path, what: str) -> None:
        super().__init__(
            f"The file at {path} {what}, so cnn-lab cannot use it as its run store. "
            "Nothing in it was changed.",
            "Open the cnn-lab window to start a new database (the file is kept, moved aside) "
            f"or restore a backup, or point {ENV_VAR} at another file.",
        )
        self.path = path
        self.what = what

    def __reduce__(self) -> tuple[type[UnreadableStore], tuple[Path, str]]:
        return type(self), (self.path, self.what)  # crosses process pipes whole


def _is_locked(exc: BaseException | None) -> bool:
    text = str(exc).lower()
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text)


def _is_unreadable(exc: BaseException | None) -> bool:
    text = str(exc).lower()
    return isinstance(exc, sqlite3.DatabaseError) and any(
        word in text for word in ("not a database", "malformed", "corrupt")
    )


def _store_error(exc: sqlite3.Error, path: Path) -> StoreError:
    """Turn a sqlite3 error into a sentence that names the file and what to do."""
    text = str(exc)
    lowered = text.lower()
    if _is_unreadable(exc):
        what = "is not a SQLite database" if "not a database" in lowered else "is damaged"
        return UnreadableStore(path, f"{what} ({text})")
    if _is_locked(exc):
        return StoreError(
            f"The run store at {path} is busy (locked by another process) and did not free up "
            "in time.",
            "Wait for other cnn-lab windows or jobs using it to finish, then try again.",
        )
    if "readonly" in lowered or "read-only" in lowered:
        return StoreError(
            f"The run store at {path} is read-only.", "Check the file's and its folder's rights."
        )
    if "disk is full" in lowered or "disk i/o" in lowered:
        return StoreError(
            f"The run store at {path} could not be written ({text}).",
            "Free some disk space, then try again.",
        )
    return StoreError(f"The run store at {path} could not be used: {text}.")


def _guarded(method: Callable[..., _T]) -> Callable[..., _T]:
    """Let no raw sqlite3 error out of a public method: callers handle only StoreError."""

    @functools.wraps(method)
    def wrapper(self: RunStore, *args: Any, **kwargs: Any) -> _T:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.Error as exc:
            raise _store_error(exc, self.path) from exc

    return wrapper


def _json_default(value: Any) -> Any:
    """Accept NumPy and torch scalars (anything with ``.item()``) in summaries."""
    item = getattr(value, "item", None)
    if callable(item):
        return item()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"{type(value).__name__} cannot be stored in a run summary")


def _dump_summary(summary: dict[str, Any]) -> str:
    return json.dumps(summary, default=_json_default, sort_keys=True)


def _load_summary(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    loaded = json.loads(text)
    return loaded if isinstance(loaded, dict) else {}


def _spec_tags(spec_json: str) -> list[str]:
    """The ``tags`` a run's spec was given; none for specs that are not JSON objects."""
    try:
        tags = json.loads(spec_json).get("tags", [])
    except (ValueError, AttributeError):
        return []
    return (
        [t.strip() for t in tags if isinstance(t, str) and t.strip()]
        if isinstance(tags, list)
        else []
    )


def _artifact_record(
    run_id: int, path: str | os.PathLike[str], kind: str, sha256: str, size: int, root: Path
) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "path": artifact_paths.to_stored(path, root),
        "kind": kind,
        "sha256": sha256,
        "bytes": int(size),
        "created_at": time.time(),
    }


def _float_or_nan(value: float | None) -> float:
    # SQLite turns NaN into NULL on the way in; turn it back so a chart shows a gap, not a crash.
    return math.nan if value is None else float(value)


def _chunks(rows: Iterable[_T], size: int) -> Iterator[list[_T]]:
    """``rows`` in lists of at most ``size``."""
    chunk: list[_T] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _pid_alive(pid: int) -> bool:
    """Whether ``pid`` is a live process on this machine. A zombie counts as dead."""
    if pid <= 0 or not psutil.pid_exists(pid):
        return False
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:  # AccessDenied and friends: it exists, so assume it is alive
        return True


class RunStore:
    """One connection to the run store. Open it with :meth:`RunStore.open`."""

    def __init__(self, db: sqlite_utils.Database, path: Path, *, stale_after_s: float) -> None:
        self._db = db
        self._path = path
        self._stale_after_s = stale_after_s
        self._closed = False

    # ----------------------------------------------------------------- opening and closing

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        stale_after_s: float = 30.0,
        busy_timeout_ms: int = 15000,
        sweep: bool = True,
        check: bool = False,
    ) -> RunStore:
        """Open (creating if needed) the store at ``path``, migrate it and sweep stale runs.

        ``sweep=False`` is for the one who knows better than the sweep why a run ended: the
        job thread that watched its child die records the exit signal itself. The sweep waits
        at most ``SWEEP_WAIT_MS`` for the write lock and is otherwise left to the next open.

        ``check=True`` first runs SQLite's ``quick_check`` over the whole file, to find damage
        in pages that opening does not read (about 0.25 s per 100 MB); the window does it once
        at start, every other open relies on SQLite noticing damage where it reads.

        A store from an older cnn-lab is backed up beside itself (``backup.backup_path``)
        before it is migrated, and all its pending migrations run in one transaction: one
        that fails leaves the file as it was.

        Raises ``UnreadableStore`` when the file is not a SQLite database, is another program's
        database, or is damaged; ``StoreError`` with a sentence when it was written by a newer
        cnn-lab, could not be migrated, stays locked, or cannot be created.
        """
        resolved = resolve_db_path(path)
        try:
            resolved.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"The folder for the run store at {resolved} could not be created ({exc})."
            ) from exc
        try:
            db = sqlite_utils.Database(resolved, execute_plugins=False)
        except sqlite3.Error as exc:
            raise _store_error(exc, resolved) from exc
        store = cls(db, resolved, stale_after_s=stale_after_s)
        try:
            store._configure(busy_timeout_ms)
            if check:
                store._check()
            store._migrate()
            if sweep:
                store._sweep_at_open(busy_timeout_ms)
        except BaseException:
            store.close()
            raise
        return store

    @_guarded
    def _configure(self, busy_timeout_ms: int) -> None:
        # busy_timeout first, so even switching to WAL waits for a writer instead of failing.
        self._set_busy_timeout(busy_timeout_ms)
        self._refuse_foreign()  # before WAL mode is written into another program's file
        self._db.execute("PRAGMA foreign_keys = ON")
        self._db.enable_wal()
        # NORMAL is durable across application crashes in WAL mode and avoids an fsync per
        # commit; only a power cut can lose the last batch, which a heartbeat sweep tolerates.
        self._db.execute("PRAGMA synchronous = NORMAL")

    def _set_busy_timeout(self, milliseconds: int) -> None:
        self._db.execute(f"PRAGMA busy_timeout = {int(milliseconds)}")

    @_guarded
    def _check(self) -> None:
        """Read every page (``quick_check``); damage anywhere becomes ``UnreadableStore``."""
        try:
            rows = self._db.execute("PRAGMA quick_check").fetchall()
        except sqlite3.DatabaseError as exc:  # so damaged that the check cannot even start
            if _is_locked(exc):
                raise _store_error(exc, self._path) from exc
            raise UnreadableStore(self._path, f"is damaged ({exc})") from exc
        if [tuple(row) for row in rows] != [("ok",)]:
            first = str(rows[0][0]).splitlines()
            detail = first[1] if len(first) > 1 and first[0].startswith("***") else first[0]
            raise UnreadableStore(self._path, f"is damaged (SQLite's check found: {detail})")

    @_guarded
    def _migrate(self) -> None:
        version = schema.current_version(self._db)
        self._refuse_newer(version)
        if version >= schema.MIGRATIONS[-1].version:
            return  # up to date: opening takes no write lock
        with self._write():
            # Re-read under the write lock: another process may have migrated meanwhile.
            version = schema.current_version(self._db)
            self._refuse_newer(version)
            pending = [m for m in schema.MIGRATIONS if m.version > version]
            if not pending:
                return
            # Only a store with data is worth a copy. Taken under the write lock, so the copy
            # is exactly what the migrations start from.
            saved = backup.make_backup(self._path, version) if version >= 1 else None
            try:
                for migration in pending:
                    schema.apply_migration(self._db, migration)
            except Exception as exc:  # _write rolls every pending migration back
                if _is_unreadable(exc):  # damage found on the way is not the migration's fault
                    raise _store_error(exc, self._path) from exc
                raise self._migration_failed(version, pending[-1].version, saved, exc) from exc

    def _refuse_foreign(self) -> None:
        """A SQLite file with tables but no migrations record is some other program's.

        Also the first read of the file, so a file that is not SQLite, or is damaged where
        SQLite starts reading, is refused here, before anything was written to it.
        """
        tables = [t for t in self._db.table_names() if not t.startswith("sqlite_")]
        if tables and "migrations" not in tables:
            # Not UnreadableStore: its owner still uses it, so it is not offered to move aside.
            shown = ", ".join(tables[:5]) + (", …" if len(tables) > 5 else "")
            raise StoreError(
                f"The file at {self._path} is a SQLite database of another program (tables "
                f"{shown}), not a cnn-lab run store. Nothing in it was changed.",
                f"Point {ENV_VAR} (or --db) at another file.",
            )

    def _migration_failed(
        self, version: int, target: int, saved: Path | None, exc: Exception
    ) -> StoreError:
        _log.error("migrating %s from v%d to v%d failed: %r", self._path, version, target, exc)
        kept = f"; a copy from before was saved as {saved}" if saved is not None else ""
        return StoreError(
            f"The run store at {self._path} could not be upgraded from schema version {version} "
            f"to {target} ({type(exc).__name__}: {exc}). It was left unchanged at version "
            f"{version}{kept}.",
            "Keep using the cnn-lab that wrote it, and report this with the log.",
        )

    @_guarded
    def _sweep_at_open(self, busy_timeout_ms: int) -> None:
        """Crash stale runs if the write lock is free soon; else the next open does it."""
        self._set_busy_timeout(min(busy_timeout_ms, SWEEP_WAIT_MS))
        try:
            self.sweep_stale()
        except StoreError as exc:
            if not _is_locked(exc.__cause__):
                raise
            _log.info("the run store at %s is busy; stale runs are swept next time", self._path)
        finally:
            self._set_busy_timeout(busy_timeout_ms)

    def _refuse_newer(self, version: int) -> None:
        if version > schema.SCHEMA_VERSION:
            raise StoreError(
                f"The run store at {self._path} was written by a newer cnn-lab (schema version "
                f"{version}; this cnn-lab knows up to {schema.SCHEMA_VERSION}).",
                f"Update cnn-lab, or point {ENV_VAR} at another file.",
            )

    @property
    def path(self) -> Path:
        """The absolute path of the SQLite file."""
        return self._path

    @property
    def location(self) -> str:
        """The file's path as a location (engine/store/locations.py) ``open_store`` takes."""
        return str(self._path)

    @property
    def sqlite_db(self) -> sqlite_utils.Database:
        """The SQLite backend's own handle, for engine/store's SQLite modules (curves,
        rollups, schema) and SQLite-specific tests. Not part of ``RunRepository``: nothing
        outside engine/store reads it (tests/engine/test_repository.py checks), so every
        read and write the engine and the app make goes through the store's methods."""
        return self._db

    def close(self) -> None:
        """Close the connection. Safe to call twice."""
        if not self._closed:
            self._closed = True
            self._db.close()

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction that holds the write lock from its first statement."""
        conn = self._db.conn
        with LOCK_WAITS.waiting():  # a long wait here shows in the window (store.busy)
            conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    # ------------------------------------------------------------------------------ runs

    @_guarded
    def create_run(
        self,
        *,
        spec_json: str,
        spec_hash: str,
        name: str = "",
        dataset: str = "",
        model: str = "",
        device: str = "",
        experiment_id: int | None = None,
        status: str = QUEUED,
    ) -> int:
        """Record a new run and return its id."""
        if status not in ALL:
            raise ValueError(f"{status!r} is not a run status; use one of {sorted(ALL)}.")
        record = {
            "experiment_id": experiment_id,
            "name": name,
            "status": status,
            "spec_json": spec_json,
            "spec_hash": spec_hash,
            "dataset": dataset,
            "model": model,
            "device": device,
            "created_at": time.time(),
            "summary_json": "{}",
        }
        with self._write() as conn:
            run_id = int(self._db["runs"].insert(record).last_pk)
            conn.executemany(
                "INSERT OR IGNORE INTO run_tags (run_id, tag) VALUES (?, ?)",
                [(run_id, tag) for tag in _spec_tags(spec_json)],
            )
            return run_id

    # ------------------------------------------------------- finding and organising runs

    @_guarded
    def query_runs(
        self, query: RunQuery, *, summary_keys: Sequence[str] | None = None
    ) -> list[RunRecord]:
        """The runs matching the Runs browser's search (see ``run_query``), in its order.

        ``summary_keys`` keeps only those top-level keys of each summary, extracted inside
        SQLite: a listing shows a few numbers, and parsing 10,000 whole summaries (class
        lists, evaluations) in Python took most of the time a person waits for the list.
        """
        clauses, params = run_query.to_sql(query)
        select = RUN_SELECT
        if summary_keys is not None:
            pairs = ", ".join(
                f"'{key}', json_extract(runs.summary_json, '$.{key}')"
                for key in summary_keys
                if key.isidentifier()
            )
            select = select.replace(
                "runs.summary_json", f"json_object({pairs}) AS summary_json" if pairs else "'{}'", 1
            )
        rows = self._db.execute(f"{select} {clauses}", params).fetchall()
        # json_object writes a missing key as null: drop those so .get() defaults still work.
        return self._records(rows, drop_nulls=summary_keys is not None)

    @_guarded
    def tags_in_use(self) -> list[tuple[str, int]]:
        """Every tag with how many runs carry it, most used first (the filter's suggestions)."""
        rows = self._db.execute(
            "SELECT tag, COUNT(*) FROM run_tags GROUP BY tag ORDER BY COUNT(*) DESC, tag"
        ).fetchall()
        return [(str(tag), int(count)) for tag, count in rows]

    @_guarded
    def rename_run(self, run_id: int, name: str) -> None:
        self._update_run(run_id, "name = ?", [name.strip()])

    @_guarded
    def set_note(self, run_id: int, note: str) -> None:
        self._update_run(run_id, "note = ?", [note])

    @_guarded
    def set_archived(self, run_ids: Iterable[int], archived: bool) -> None:
        """Archive (hide from the default listing) or bring back; nothing is deleted."""
        with self._write() as conn:
            conn.executemany(
                "UPDATE runs SET archived = ? WHERE id = ?",
                [(int(archived), int(run_id)) for run_id in run_ids],
            )

    @_guarded
    def set_tags(self, run_id: int, tags: Iterable[str]) -> None:
        """Replace the run's tags; blank ones are dropped and repeats kept once."""
        clean = sorted({t.strip() for t in tags if t.strip()}, key=str.lower)
        with self._write() as conn:
            if conn.execute("SELECT 1 FROM runs WHERE id = ?", [run_id]).fetchone() is None:
                raise self._not_found(run_id)
            conn.execute("DELETE FROM run_tags WHERE run_id = ?", [run_id])
            conn.executemany(
                "INSERT OR IGNORE INTO run_tags (run_id, tag) VALUES (?, ?)",
                [(run_id, tag) for tag in clean],
            )

    @_guarded
    def delete_run_rows(self, run_ids: Iterable[int]) -> list[int]:
        """Delete finished runs with their metrics, samples, tags and artifact rows.

        Refuses (``StoreError``) while any of them is queued or running: its job would go on
        writing into a run that no longer exists. The caller deletes the files afterwards
        (``run_files.delete_run_files``), so a locked database never leaves a run without them.
        """
        ids = [int(run_id) for run_id in run_ids]
        with self._write() as conn:
            marks = ",".join("?" * len(ids))
            active = conn.execute(
                f"SELECT id FROM runs WHERE id IN ({marks}) AND status IN "
                f"({','.join('?' * len(ACTIVE))})",
                [*ids, *sorted(ACTIVE)],
            ).fetchall()
            if active:
                raise StoreError(
                    f"Run {active[0][0]} is still queued or running, so it cannot be deleted.",
                    "Stop it first.",
                )
            found = {r[0] for r in conn.execute(f"SELECT id FROM runs WHERE id IN ({marks})", ids)}
            if missing := sorted(set(ids) - found):
                raise self._not_found(missing[0])
            conn.execute(f"DELETE FROM runs WHERE id IN ({marks})", ids)
        return ids

    @_guarded
    def mark_running(self, run_id: int, *, pid: int, device: str, host: str | None = None) -> None:
        """Claim a run for the process ``pid`` on ``host`` (this machine unless given)."""
        now = time.time()
        self._update_run(
            run_id,
            "status = ?, started_at = ?, heartbeat_at = ?, pid = ?, host = ?, device = ?",
            [RUNNING, now, now, pid, host or this_host(), device],
        )

    @_guarded
    def heartbeat(self, run_id: int, *, now: float | None = None) -> None:
        """Say the run's process is alive; a run without one for ``stale_after_s`` is crashed."""
        at = time.time() if now is None else now
        self._update_run(run_id, "heartbeat_at = ?", [at])

    @_guarded
    def finish_run(
        self,
        run_id: int,
        status: str,
        *,
        reason: str | None = None,
        hint: str | None = None,
        summary: dict[str, Any] | None = None,
    ) -> None:
        """End a run with a final status; ``summary`` is merged into the one already stored."""
        if status not in FINAL:
            raise ValueError(f"A run can only finish as one of {sorted(FINAL)}, not as {status!r}.")
        with self._write() as conn:
            merged = self._merged_summary(conn, run_id, summary or {})
            conn.execute(
                "UPDATE runs SET status = ?, reason = ?, hint = ?, ended_at = ?, "
                "summary_json = ? WHERE id = ?",
                [status, reason, hint, time.time(), _dump_summary(merged), run_id],
            )

    @_guarded
    def update_summary(self, run_id: int, summary: dict[str, Any]) -> None:
        """Merge ``summary``'s keys into the run's summary (best metrics, throughput, ...)."""
        with self._write() as conn:
            merged = self._merged_summary(conn, run_id, summary)
            conn.execute(
                "UPDATE runs SET summary_json = ? WHERE id = ?", [_dump_summary(merged), run_id]
            )

    @_guarded
    def queue_again(self, run_id: int) -> str | None:
        """Show an ended run as queued while it waits to resume; return the status it had.

        None when the run is not ended (queued or running already): nothing changes then.
        Its reason, hint and times stay, so ``unqueue`` gives the record back as it was.
        """
        with self._write() as conn:
            row = conn.execute("SELECT status FROM runs WHERE id = ?", [run_id]).fetchone()
            if row is None:
                raise self._not_found(run_id)
            if row[0] not in FINAL:
                return None
            conn.execute("UPDATE runs SET status = ? WHERE id = ?", [QUEUED, run_id])
            return str(row[0])

    @_guarded
    def unqueue(self, run_id: int, status: str) -> bool:
        """Give a run queued again by ``queue_again`` back its ended ``status`` (cancelled, or
        the window closed, before it started); False when it has started meanwhile."""
        if status not in FINAL:
            raise ValueError(f"A run can only go back to one of {sorted(FINAL)}, not {status!r}.")
        with self._write() as conn:
            cursor = conn.execute(
                "UPDATE runs SET status = ? WHERE id = ? AND status = ?", [status, run_id, QUEUED]
            )
            return cursor.rowcount > 0

    @_guarded
    def mark_crashed_if_active(self, run_id: int, reason: str) -> bool:
        """Crash a run only if it is still queued or running; return whether it changed.

        One conditional UPDATE, so a job that finished a moment earlier keeps its own status.
        """
        with self._write() as conn:
            cursor = conn.execute(
                "UPDATE runs SET status = ?, reason = ?, ended_at = COALESCE(ended_at, ?) "
                "WHERE id = ? AND status IN (?, ?)",
                [CRASHED, reason, time.time(), run_id, *sorted(ACTIVE)],
            )
            return cursor.rowcount > 0

    @_guarded
    def get_run(self, run_id: int) -> RunRecord:
        """The run with id ``run_id``; ``RunNotFound`` if there is none."""
        row = self._db.execute(f"{RUN_SELECT} WHERE runs.id = ?", [run_id]).fetchone()
        if row is None:
            raise self._not_found(run_id)
        return self._records([row])[0]

    @_guarded
    def list_runs(
        self, *, status: str | None = None, limit: int = 1000, offset: int = 0
    ) -> list[RunRecord]:
        """Runs newest first, optionally only those with ``status``."""
        where, params = ("WHERE status = ?", [status]) if status is not None else ("", [])
        rows = self._db.execute(
            f"{RUN_SELECT} {where} ORDER BY runs.created_at DESC, runs.id DESC LIMIT ? OFFSET ?",
            [*params, limit, offset],
        ).fetchall()
        return self._records(rows)

    def _update_run(self, run_id: int, assignments: str, params: Sequence[Any]) -> None:
        with self._write() as conn:
            cursor = conn.execute(f"UPDATE runs SET {assignments} WHERE id = ?", [*params, run_id])
            if cursor.rowcount == 0:
                raise self._not_found(run_id)

    def _merged_summary(
        self, conn: sqlite3.Connection, run_id: int, summary: dict[str, Any]
    ) -> dict[str, Any]:
        # Read inside the caller's write transaction, so concurrent merges never drop keys.
        row = conn.execute("SELECT summary_json FROM runs WHERE id = ?", [run_id]).fetchone()
        if row is None:
            raise self._not_found(run_id)
        return {**_load_summary(row[0]), **summary}

    def _not_found(self, run_id: int) -> RunNotFound:
        return RunNotFound(f"There is no run {run_id} in {self._path}.")

    def _records(
        self, rows: Sequence[Sequence[Any]], *, drop_nulls: bool = False
    ) -> list[RunRecord]:
        """Decode rows, with every listed run's tags fetched in one query.

        One query for all tags rather than a subquery per row: with 10,000 runs listed the
        per-row subquery cost more than the listing itself.
        """
        ids = json.dumps([row[0] for row in rows])
        tags: dict[int, list[str]] = {}
        for run_id, tag in self._db.execute(
            "SELECT run_id, tag FROM run_tags WHERE run_id IN (SELECT value FROM json_each(?)) "
            "ORDER BY tag COLLATE NOCASE",
            [ids],
        ):
            tags.setdefault(run_id, []).append(tag)
        records = []
        for row in rows:
            values = dict(zip(RUN_COLUMNS, row, strict=True))
            summary = _load_summary(values.pop("summary_json"))
            if drop_nulls:
                summary = {key: value for key, value in summary.items() if value is not None}
            values["summary"] = summary
            values["archived"] = bool(values["archived"])
            values["tags"] = tuple(tags.get(values["id"], ()))
            records.append(RunRecord(**values))
        return records

    # --------------------------------------------------------------- metrics and samples

    @_guarded
    def add_metrics(self, rows: Iterable[MetricPoint]) -> None:
        """Append metric points, all in one transaction."""
        with self._write() as conn:
            self._insert_metrics(conn, rows)

    @_guarded
    def write_batch(
        self,
        run_id: int,
        metrics: Iterable[MetricPoint],
        samples: Iterable[SystemSample],
        *,
        now: float | None = None,
    ) -> None:
        """Append metrics and samples and heartbeat ``run_id``, all in one transaction.

        This is the job's periodic write: one lock acquisition and one commit per second,
        however many points training produced.
        """
        with self._write() as conn:
            self._insert_metrics(conn, metrics)
            self._insert_samples(conn, samples)
            at = time.time() if now is None else now
            conn.execute("UPDATE runs SET heartbeat_at = ? WHERE id = ?", [at, run_id])

    @staticmethod
    def _insert_metrics(conn: sqlite3.Connection, rows: Iterable[MetricPoint]) -> None:
        # executemany on the raw connection: sqlite-utils' insert_all introspects the table on
        # every call, which is measurable at thousands of points a second.
        values = [(p.run_id, p.step, p.epoch, p.key, p.value, p.time) for p in rows]
        conn.executemany(
            "INSERT INTO metrics (run_id, step, epoch, key, value, time) VALUES (?, ?, ?, ?, ?, ?)",
            values,
        )
        rollups.add(conn, values)

    @staticmethod
    def _insert_samples(conn: sqlite3.Connection, rows: Iterable[SystemSample]) -> None:
        conn.executemany(
            "INSERT INTO system_samples (run_id, time, key, value) VALUES (?, ?, ?, ?)",
            ((s.run_id, s.time, s.key, s.value) for s in rows),
        )

    @_guarded
    def metrics(self, run_id: int, key: str) -> list[MetricPoint]:
        """Every point of one metric of one run, in step order. NULL values come back as NaN."""
        rows = self._db.execute(
            "SELECT run_id, step, epoch, key, value, time FROM metrics "
            "WHERE run_id = ? AND key = ? ORDER BY step, time, rowid",
            [run_id, key],
        ).fetchall()
        return [MetricPoint(r[0], r[1], r[2], r[3], _float_or_nan(r[4]), r[5]) for r in rows]

    @_guarded
    def last_metric(self, run_id: int, key: str) -> MetricPoint | None:
        """The metric's point at the highest step (None if it has none), read by the index."""
        row = self._db.execute(
            "SELECT run_id, step, epoch, key, value, time FROM metrics "
            "WHERE run_id = ? AND key = ? ORDER BY step DESC, time DESC, rowid DESC LIMIT 1",
            [run_id, key],
        ).fetchone()
        if row is None:
            return None
        return MetricPoint(row[0], row[1], row[2], row[3], _float_or_nan(row[4]), row[5])

    @_guarded
    def metric_keys(self, run_id: int) -> dict[str, int]:
        """Each metric key the run logged, with how many points it has."""
        rows = self._db.execute(
            "SELECT key, COUNT(*) FROM metrics WHERE run_id = ? GROUP BY key ORDER BY key",
            [run_id],
        ).fetchall()
        return {key: int(count) for key, count in rows}

    @_guarded
    def system_samples(self, run_id: int, key: str) -> list[SystemSample]:
        """Every sample of one gauge of one run, in time order. NULL values come back as NaN."""
        rows = self._db.execute(
            "SELECT run_id, time, key, value FROM system_samples "
            "WHERE run_id = ? AND key = ? ORDER BY time, rowid",
            [run_id, key],
        ).fetchall()
        return [SystemSample(r[0], r[1], r[2], _float_or_nan(r[3])) for r in rows]

    @_guarded
    def curve(self, run_id: int, key: str, buckets: int = DEFAULT_BUCKETS) -> list[MetricPoint]:
        """The metric as a chart draws it: each of ``buckets`` equal step ranges' smallest and
        largest point, in step order (curves.py; a short metric comes back whole)."""
        from cnn_lab.engine.store.curves import downsampled

        return downsampled(self, run_id, key, buckets)

    def metric_rows(self, run_id: int, batch: int = 5000) -> Iterator[tuple[Any, ...]]:
        """Every metric point of the run as (run_id, key, step, epoch, value, time): by key,
        then step, then the order written; read ``batch`` rows at a time, so an export of a
        million points never holds them all."""
        return self._stream(
            "SELECT run_id, key, step, epoch, value, time FROM metrics WHERE run_id = ? "
            "ORDER BY key, step, time, rowid",
            [run_id],
            batch,
        )

    def sample_rows(self, run_id: int, batch: int = 5000) -> Iterator[tuple[Any, ...]]:
        """Every system sample of the run as (key, time, value), by key then time, read
        ``batch`` rows at a time."""
        return self._stream(
            "SELECT key, time, value FROM system_samples WHERE run_id = ? "
            "ORDER BY key, time, rowid",
            [run_id],
            batch,
        )

    def dump_rows(self, table: str, batch: int = 5000) -> Iterator[tuple[Any, ...]]:
        """Every row of ``table`` (one of ``tables.TABLES``) with its columns, in the canonical
        order (``tables.ORDER``; ties in the order written), for a whole-store copy."""
        columns, order = tables.TABLES[table], [*tables.ORDER[table], "rowid"]
        return self._stream(
            f"SELECT {', '.join(columns)} FROM {table} ORDER BY {', '.join(order)}", [], batch
        )

    @_guarded
    def load_rows(self, table: str, rows: Iterable[tuple[Any, ...]]) -> int:
        """Write ``dump_rows`` rows of another store verbatim, ids included; how many. Metric
        points go through the usual insert, so their roll-ups are built as they are written;
        AUTOINCREMENT's counter follows the largest id inserted by itself."""
        columns = tables.TABLES[table]
        count = 0
        for chunk in _chunks(rows, 5000):
            with self._write() as conn:
                if table == "metrics":
                    self._insert_metrics(conn, (MetricPoint(*row) for row in chunk))
                elif table == "system_samples":
                    self._insert_samples(conn, (SystemSample(*row) for row in chunk))
                else:
                    marks = ", ".join("?" * len(columns))
                    conn.executemany(
                        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", chunk
                    )
            count += len(chunk)
        return count

    def _stream(self, sql: str, params: list[Any], batch: int) -> Iterator[tuple[Any, ...]]:
        """Rows of ``sql`` read ``batch`` at a time. A generator converts SQLite's errors
        itself: ``_guarded`` would cover only its creation."""
        try:
            cursor = self._db.execute(sql, params)
            while rows := cursor.fetchmany(batch):
                yield from rows
        except sqlite3.Error as exc:
            raise _store_error(exc, self.path) from exc

    @_guarded
    def keys_logged(self, run_ids: Iterable[int]) -> list[str]:
        """Every metric key any of the runs logged, sorted.

        Read from the roll-ups (one row per 64 steps) rather than counting points as
        ``metric_keys`` does: milliseconds instead of a scan of each long run's million rows.
        """
        ids = [int(i) for i in run_ids]
        if not ids:
            return []
        marks = ", ".join("?" * len(ids))
        rows = self._db.execute(
            f"SELECT DISTINCT key FROM metric_rollups WHERE run_id IN ({marks}) ORDER BY key", ids
        ).fetchall()
        return [row[0] for row in rows]

    @_guarded
    def best_metric(self, run_id: int, key: str, *, highest: bool = True) -> float | None:
        """The run's highest (or lowest) value of ``key``; None when it logged none."""
        pick = "MAX" if highest else "MIN"
        row = self._db.execute(
            f"SELECT {pick}(value) FROM metrics WHERE run_id = ? AND key = ?", [run_id, key]
        ).fetchone()
        return None if row is None or row[0] is None else float(row[0])

    @_guarded
    def gauge_stats(self, run_id: int) -> list[GaugeStats]:
        """Each system gauge the run sampled, with its count, mean, range and first time."""
        rows = self._db.execute(
            "SELECT key, COUNT(*), AVG(value), MIN(value), MAX(value), MIN(time) "
            "FROM system_samples WHERE run_id = ? GROUP BY key ORDER BY key",
            [run_id],
        ).fetchall()
        return [GaugeStats(*row) for row in rows]

    # ----------------------------------------------------------- artifacts and experiments

    @_guarded
    def add_artifact(
        self, run_id: int, *, path: str | os.PathLike[str], kind: str, sha256: str, bytes: int
    ) -> int:
        """Record a file a run produced (checkpoint, export, report); return its id."""
        record = _artifact_record(run_id, path, kind, sha256, bytes, self._path.parent)
        with self._write():
            return int(self._db["artifacts"].insert(record).last_pk)

    @_guarded
    def set_artifact(
        self, run_id: int, *, path: str | os.PathLike[str], kind: str, sha256: str, bytes: int
    ) -> int:
        """Record a file that replaces the run's previous one of this kind (the "last" and
        "best" checkpoints are rewritten in place every epoch; one row each, not hundreds)."""
        record = _artifact_record(run_id, path, kind, sha256, bytes, self._path.parent)
        with self._write() as conn:
            conn.execute("DELETE FROM artifacts WHERE run_id = ? AND kind = ?", [run_id, kind])
            return int(self._db["artifacts"].insert(record).last_pk)

    @_guarded
    def truncate_metrics(self, run_id: int, after_step: int) -> int:
        """Drop the run's metrics logged after ``after_step``; returns how many.

        A run resumed from a checkpoint repeats the steps after it, so what a crashed process
        logged past the checkpoint would otherwise appear twice.
        """
        with self._write() as conn:
            cursor = conn.execute(
                "DELETE FROM metrics WHERE run_id = ? AND step > ?", [run_id, after_step]
            )
            rollups.rebuild(conn, run_id, from_step=after_step + 1)
            return cursor.rowcount

    @_guarded
    def update_spec(self, run_id: int, spec_json: str, spec_hash: str) -> None:
        """Replace the run's spec (resuming with a new number of epochs changes it)."""
        self._update_run(run_id, "spec_json = ?, spec_hash = ?", [spec_json, spec_hash])

    @_guarded
    def artifacts(self, run_id: int) -> list[dict[str, Any]]:
        """The run's artifacts, oldest first, as plain dicts with absolute paths (the store
        records them relative to its folder: artifact_paths.py)."""
        rows = self._db["artifacts"].rows_where("run_id = ?", [run_id], order_by="created_at, id")
        root = self._path.parent
        return [{**row, "path": artifact_paths.to_absolute(row["path"], root)} for row in rows]

    @_guarded
    def has_artifact(self, run_id: int, kind: str) -> bool:
        """Whether the run recorded a file of this kind (``artifact_kinds.WEIGHTS`` ...)."""
        found = self._db.execute(
            "SELECT 1 FROM artifacts WHERE run_id = ? AND kind = ? LIMIT 1", [run_id, kind]
        ).fetchone()
        return found is not None

    @_guarded
    def find_or_create_experiment(self, name: str, *, kind: str, spec_json: str = "") -> int:
        """The oldest experiment of ``kind`` called ``name`` (its spec refreshed to
        ``spec_json`` when given), created if there is none.

        Checked and written in one write transaction, so two processes on one database
        (a sweep's workers) end up with one experiment.
        """
        with self._write() as conn:
            row = conn.execute(
                "SELECT id, spec_json FROM experiments WHERE kind = ? AND name = ? "
                "ORDER BY id LIMIT 1",
                (kind, name),
            ).fetchone()
            if row is not None:
                if spec_json and row[1] != spec_json:
                    conn.execute(
                        "UPDATE experiments SET spec_json = ? WHERE id = ?", (spec_json, row[0])
                    )
                return int(row[0])
            cursor = conn.execute(
                "INSERT INTO experiments (name, kind, spec_json, created_at) VALUES (?, ?, ?, ?)",
                (name, kind, spec_json, time.time()),
            )
            return int(cursor.lastrowid or 0)

    @_guarded
    def experiments(self, kind: str) -> list[dict[str, Any]]:
        """The experiments of ``kind`` (id, name, kind, spec_json, created_at), newest first."""
        return list(self._db["experiments"].rows_where("kind = ?", [kind], order_by="id DESC"))

    @_guarded
    def experiment(self, experiment_id: int, kind: str) -> dict[str, Any] | None:
        """One experiment of ``kind`` by id (as ``experiments`` gives it); None if none."""
        rows = self._db["experiments"].rows_where(
            "id = ? AND kind = ?", [experiment_id, kind], limit=1
        )
        return next(iter(rows), None)

    @_guarded
    def experiment_runs(self, experiment_id: int) -> list[int]:
        """The ids of an experiment's runs, oldest first."""
        rows = self._db.execute(
            "SELECT id FROM runs WHERE experiment_id = ? ORDER BY id", [experiment_id]
        ).fetchall()
        return [int(row[0]) for row in rows]

    # ----------------------------------------------------------------------- housekeeping

    @_guarded
    def sweep_stale(self, now: float | None = None) -> list[int]:
        """Crash every running run whose job is gone, and return their ids.

        A job is gone when its heartbeat is older than ``stale_after_s``, or when it ran on this
        machine and its process no longer exists. Without this a run whose process was killed
        would show as running forever. Only writes when something is stale, so opening an
        up-to-date store takes no write lock.
        """
        now = time.time() if now is None else now
        rows = self._db.execute(
            "SELECT id, host, pid, heartbeat_at, started_at, created_at FROM runs WHERE status = ?",
            [RUNNING],
        ).fetchall()
        doomed = [row for row in rows if self._is_gone(row, now)]
        if not doomed:
            return []
        changed: list[int] = []
        with self._write() as conn:
            for run_id, _host, _pid, heartbeat_at, started_at, created_at in doomed:
                last = heartbeat_at or started_at or created_at or now
                # heartbeat_at IS ? : skip a run whose job heartbeated since we looked.
                cursor = conn.execute(
                    "UPDATE runs SET status = ?, reason = ?, hint = ?, ended_at = ? "
                    "WHERE id = ? AND status = ? AND heartbeat_at IS ?",
                    [
                        CRASHED,
                        crash_reason(last),
                        CRASH_HINT,
                        last,
                        run_id,
                        RUNNING,
                        heartbeat_at,
                    ],
                )
                if cursor.rowcount:
                    changed.append(run_id)
        return changed

    def _is_gone(self, row: Sequence[Any], now: float) -> bool:
        _run_id, host, pid, heartbeat_at, started_at, created_at = row
        # A run created as running has no heartbeat yet: its creation time starts the clock.
        last = next((t for t in (heartbeat_at, started_at, created_at) if t is not None), now)
        if now - last > self._stale_after_s:
            return True
        on_this_host = host is not None and host == this_host()
        return on_this_host and pid is not None and not _pid_alive(int(pid))

    @_guarded
    def integrity_ok(self) -> bool:
        """Whether SQLite's own integrity check passes (for a "check store" command)."""
        row = self._db.execute("PRAGMA integrity_check").fetchone()
        return row is not None and row[0] == "ok"
