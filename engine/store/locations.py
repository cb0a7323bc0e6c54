"""Where the run store lives, as one string: a SQLite path (or ``sqlite:///PATH``) or a
``postgresql://`` address, and how to open either.

Why one string: the window, ``cnn-lab`` on a terminal and every child process (a job, a sweep
worker) must agree on the store, and they pass it along as they always passed the file's path:
``--db``, ``$CNN_LAB_DB``, an argument of a spawned process. A location is never turned into a
``Path`` outside the SQLite backend: ``Path("postgresql://lab@host/db")`` collapses the ``//``.

Backends are registered by URL scheme (``register``), so a third one is a function and a line,
not another branch in every caller. ``resolve_db_path`` (paths.py) stays for the few callers
that truly need a SQLite file (backups, moving a damaged file aside); it refuses a database
address with a sentence.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import platformdirs

from cnn_lab.engine.errors import StoreError
from cnn_lab.engine.store.liveness import lease_s
from cnn_lab.engine.store.paths import ENV_VAR, default_db_path, hide_password, resolve_db_path

if TYPE_CHECKING:
    from cnn_lab.engine.store.repository import RunRepository

ARTIFACTS_ENV_VAR = "CNN_LAB_ARTIFACTS"
"""A folder every machine of a lab reaches (a shared disk), for a PostgreSQL store's files."""

ARTIFACTS_PARAM = "artifacts"
"""The query parameter of a ``postgresql://`` address that names its artifact root; it is
cnn-lab's, not the server's, so it is taken off before connecting."""

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")

Opener = Callable[[str, dict[str, Any]], "RunRepository"]
"""Opens a resolved location with the options its backend takes."""


@dataclass(frozen=True)
class Backend:
    """One kind of run store: what it is called in sentences, how a location of it is
    resolved, and how it is opened."""

    name: str
    resolve: Callable[[str], str]
    open: Opener


_BACKENDS: dict[str, Backend] = {}
"""Backends by URL scheme; ``""`` is a plain path."""


def register(*schemes: str) -> Callable[[Backend], Backend]:
    """Register a backend under each of ``schemes`` (``""`` for a plain path)."""

    def add(backend: Backend) -> Backend:
        for scheme in schemes:
            _BACKENDS[scheme] = backend
        return backend

    return add


def scheme(location: str) -> str:
    """The URL scheme of ``location``, lower case; ``""`` for a plain path."""
    match = _SCHEME.match(location)
    return match.group(1).lower() if match else ""


def _backend(location: str) -> Backend:
    found = _BACKENDS.get(scheme(location))
    if found is None:
        raise StoreError(
            f"cnn-lab cannot use {hide_password(location)!r} as its run store: it keeps runs in "
            "a SQLite file "
            f"or a PostgreSQL database, and {scheme(location)}:// is neither.",
            hint="Give the path of a .sqlite file (or sqlite:///path), a "
            "postgresql://USER@HOST/DATABASE address, or leave --db out.",
        )
    return found


def resolve_location(value: str | os.PathLike[str] | None = None) -> str:
    """Pick the store: ``value`` wins, then ``$CNN_LAB_DB``, then the default SQLite file.

    A SQLite location comes back as an absolute path with ``~`` expanded (so a child process
    in another working directory means the same file); a ``postgresql://`` address comes back
    as given. Any other scheme is refused with a sentence.
    """
    if value is not None and os.fspath(value) != "":
        chosen = os.fspath(value)
    elif os.environ.get(ENV_VAR):
        chosen = os.environ[ENV_VAR]
    else:
        chosen = str(default_db_path())
    return _backend(chosen).resolve(chosen)


def is_sqlite(location: str | os.PathLike[str]) -> bool:
    """Whether ``location`` names a SQLite file (a path or ``sqlite:///``)."""
    return _BACKENDS.get(scheme(os.fspath(location))) is SQLITE


def is_postgres(location: str | os.PathLike[str]) -> bool:
    """Whether ``location`` is a ``postgresql://`` (or ``postgres://``) address."""
    return _BACKENDS.get(scheme(os.fspath(location))) is POSTGRES


def store_exists(location: str | os.PathLike[str]) -> bool:
    """Whether there is a store to read at a resolved ``location``: a SQLite file must exist
    (reading must not leave an empty database behind a typo); a PostgreSQL database is
    asked when it is opened, and opening it creates nothing a person would have to remove."""
    text = os.fspath(location)
    return not is_sqlite(text) or Path(text).exists()


def open_store(
    location: str | os.PathLike[str] | None = None,
    *,
    stale_after_s: float | None = None,
    sweep: bool = True,
    busy_timeout_ms: int | None = None,
    check: bool = False,
) -> RunRepository:
    """Open the run store at ``location`` (resolved by ``resolve_location``).

    ``stale_after_s`` (the lease: by default ``$CNN_LAB_LEASE_S`` or 30 s, liveness.py)
    and ``sweep`` mean the same to both backends; ``busy_timeout_ms`` and
    ``check`` are SQLite's (a file lock's wait, a scan of the whole file) and a PostgreSQL
    store ignores them: its lock timeout is the connection's, and the server keeps its own
    pages consistent.
    """
    resolved = resolve_location(location)
    lease = lease_s() if stale_after_s is None else stale_after_s
    options: dict[str, Any] = {"stale_after_s": lease, "sweep": sweep}
    if is_sqlite(resolved):
        options["check"] = check
        if busy_timeout_ms is not None:
            options["busy_timeout_ms"] = busy_timeout_ms
    return _backend(resolved).open(resolved, options)


def describe(location: str) -> str:
    """The location as a sentence shows it: a path as is, an address without its password."""
    return hide_password(location)


# ------------------------------------------------------------------------------ SQLite


def _sqlite_resolve(location: str) -> str:
    return str(resolve_db_path(location))


def _sqlite_open(location: str, options: dict[str, Any]) -> RunRepository:
    from cnn_lab.engine.store.store import RunStore

    return RunStore.open(location, **options)


SQLITE = register("", "sqlite")(Backend("SQLite", _sqlite_resolve, _sqlite_open))


# -------------------------------------------------------------------------- PostgreSQL


def _query(location: str) -> list[tuple[str, str]]:
    return parse_qsl(urlsplit(location).query, keep_blank_values=True)


def connect_url(location: str) -> str:
    """The address to hand the server: ``location`` without cnn-lab's own parameters."""
    pairs = _query(location)
    if not any(key == ARTIFACTS_PARAM for key, _ in pairs):
        return location
    parts = urlsplit(location)
    kept = urlencode([(k, v) for k, v in pairs if k != ARTIFACTS_PARAM], safe="/")
    return urlunsplit(parts._replace(query=kept))


def artifact_root(location: str) -> Path:
    """Where a PostgreSQL store's run files live on this machine.

    ``$CNN_LAB_ARTIFACTS`` first (each machine may mount the lab's shared folder somewhere
    else), then the address's ``artifacts=/path`` parameter, then a folder per database under
    the user data folder, so two databases never mix their files.
    """
    chosen = os.environ.get(ARTIFACTS_ENV_VAR) or dict(_query(location)).get(ARTIFACTS_PARAM)
    if chosen:
        return Path(os.path.abspath(Path(chosen).expanduser()))
    from cnn_lab.engine.store.postgres.connect import target

    where = target(connect_url(location))
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{where.host}-{where.dbname}").strip("_")
    return platformdirs.user_data_path("cnn-lab") / "artifacts" / name


def _postgres_resolve(location: str) -> str:
    return location


def _postgres_open(location: str, options: dict[str, Any]) -> RunRepository:
    from cnn_lab.engine.store.postgres import PgRunStore

    return PgRunStore.open(connect_url(location), artifact_root=artifact_root(location), **options)


POSTGRES = register("postgresql", "postgres")(
    Backend("PostgreSQL", _postgres_resolve, _postgres_open)
)


__all__ = [
    "ARTIFACTS_ENV_VAR",
    "ARTIFACTS_PARAM",
    "Backend",
    "artifact_root",
    "connect_url",
    "describe",
    "is_postgres",
    "is_sqlite",
    "open_store",
    "register",
    "resolve_location",
    "scheme",
    "store_exists",
]
