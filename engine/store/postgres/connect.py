"""Opening a connection to the lab's PostgreSQL, and its errors as sentences.

A person types the database's address once (``postgresql://lab@db.example/cnnlab``), and
every way it can go wrong (a typo in the address, a refused password, a server that is down
or unreachable, a database that does not exist) must reach them as a sentence that says
which server and database, never the password, and what to do. Later errors (a lost
connection, a lock that did not free up) are phrased here too, so the store has one place
that turns ``psycopg.Error`` into ``StoreError``.

A server that cannot be reached, or a connection that dropped, is a ``ServerGone``: the one
kind of failure worth waiting out (the batched writer does, engine/store/writer.py), told
apart from a refused password or a missing table that no wait would cure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import psycopg
import psycopg.errors
from psycopg import conninfo

from cnn_lab.engine.errors import StoreError, StoreUnreachable

LOCK_TIMEOUT_MS = 15_000
"""How long a write waits for a row or the schema lock another process holds, like the SQLite
store's busy timeout: long enough for any other writer's short transaction."""

CONNECT_TIMEOUT_S = 10
"""How long opening waits for the server before saying it is unreachable."""

TCP_USER_TIMEOUT_MS = 30_000
"""How long sent data may go unacknowledged before a TCP connection counts as dead, and
(with the keepalives) how soon a silent one does: without them a server that vanished
from the network (no reset, no FIN) holds a call for the kernel's ~15 minutes of
retransmissions, past any wait the writer bounds. Unix sockets ignore both."""
_KEEPALIVES = {"keepalives_idle": 10, "keepalives_interval": 5, "keepalives_count": 4}


class ServerGone(StoreUnreachable):
    """The server could not be reached, or the connection to it dropped: a failure that may
    pass by itself (a restart, a network blip), unlike a refused login or a missing table.
    It is the engine's ``StoreUnreachable``, so a caller (the batched writer, the window's
    store link) tells it apart without importing this backend."""


_URL_SECRET = re.compile(r"(://[^:/@?#]*):[^@/?#]*@")
_KEY_SECRET = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)


def scrub(text: str) -> str:
    """``text`` with any password written in it (URL or ``key=value`` form) replaced."""
    return _KEY_SECRET.sub(r"\1***", _URL_SECRET.sub(r"\1:***@", text))


@dataclass(frozen=True)
class Target:
    """Which database a URL names, for sentences: never the password."""

    host: str
    port: str
    dbname: str
    user: str

    def __str__(self) -> str:
        where = f"the local socket in {self.host}" if self.host.startswith("/") else self.host
        port = f" port {self.port}" if self.port else ""
        return f"database {self.dbname!r} on {where}{port}"


def target(url: str) -> Target:
    """Read the parts of ``url`` a sentence names; a URL that cannot be read is refused."""
    try:
        parts = conninfo.conninfo_to_dict(url)
    except psycopg.Error as exc:
        raise StoreError(
            f"{scrub(url)!r} is not a PostgreSQL address cnn-lab can read "
            f"({scrub(' '.join(str(exc).split()))}).",
            "Write it as postgresql://USER@HOST:PORT/DATABASE.",
        ) from None
    port = str(parts.get("port") or "")
    if port and not all(p.strip().isdigit() for p in port.split(",")):
        raise StoreError(
            f"{scrub(url)!r} is not a PostgreSQL address cnn-lab can read (its port "
            f"{port!r} is not a number).",
            "Write it as postgresql://USER@HOST:PORT/DATABASE.",
        )
    return Target(
        host=str(parts.get("host") or "localhost"),
        port=port,
        dbname=str(parts.get("dbname") or parts.get("user") or "postgres"),
        user=str(parts.get("user") or ""),
    )


def connect(url: str) -> tuple[psycopg.Connection, Target]:
    """A connection with autocommit off and the store's lock timeout, and what it names."""
    where = target(url)
    given = conninfo.conninfo_to_dict(url)
    # Added to, not replacing, options the address sets; a timeout it gives wins.
    options = f"-c lock_timeout={LOCK_TIMEOUT_MS} {given.get('options') or ''}".strip()
    tcp = {key: given.get(key) or value for key, value in _KEEPALIVES.items()}
    try:
        conn = psycopg.connect(
            url,
            autocommit=False,
            connect_timeout=given.get("connect_timeout") or CONNECT_TIMEOUT_S,
            options=options,
            application_name=given.get("application_name") or "cnn-lab",
            tcp_user_timeout=given.get("tcp_user_timeout") or TCP_USER_TIMEOUT_MS,
            **tcp,
        )
    except psycopg.Error as exc:
        raise _connect_error(exc, where) from None
    return conn, where


def _connect_error(exc: psycopg.Error, where: Target) -> StoreError:
    text = scrub(str(exc)).strip()
    lowered = text.lower()
    user = f"user {where.user!r}" if where.user else "this user"
    if exc.sqlstate == "28P01" or "password authentication failed" in lowered:
        return StoreError(
            f"The PostgreSQL server refused the password of {user} for {where}.",
            "Check the password (in the address or ~/.pgpass) with the database's owner.",
        )
    if exc.sqlstate == "28000" or "no pg_hba.conf entry" in lowered or "authentication" in lowered:
        return StoreError(
            f"The PostgreSQL server did not let {user} into {where} ({_last_line(text)}).",
            "Ask the database's owner to grant access to this user from this machine.",
        )
    if exc.sqlstate == "3D000" or ("database" in lowered and "does not exist" in lowered):
        return StoreError(
            f"There is no {where}.",
            "Check the database's name in the address, or ask its owner to create it.",
        )
    return ServerGone(
        f"cnn-lab could not reach the PostgreSQL server for {where} ({_last_line(text)}).",
        "Check that the server is running and that the address and port are right.",
    )


def _last_line(text: str) -> str:
    """libpq's last sentence: a line that starts in lower case continues the one before it
    ("...terminated abnormally\n\tbefore or while processing the request.")."""
    lines: list[str] = []
    for line in (raw.strip() for raw in text.splitlines()):
        if lines and line[:1].islower():
            lines[-1] = f"{lines[-1]} {line}"
        elif line:
            lines.append(line)
    return (lines[-1] if lines else "no reason given").rstrip(".")


def dropped(exc: psycopg.Error) -> bool:
    """Whether ``exc`` says the connection itself is gone: an error libpq raised with no
    server code (the server closed the socket, the network failed), a connection exception
    (class 08), or the server terminating the session (shut down, crashed, not accepting)."""
    if not isinstance(exc, psycopg.OperationalError):
        return False
    state = exc.sqlstate
    return state is None or state.startswith("08") or state in ("57P01", "57P02", "57P03")


def store_error(exc: psycopg.Error, where: Target, *, lost: bool = False) -> StoreError:
    """Turn an error of an open connection into a sentence naming the database; ``lost``:
    the caller saw the connection break (``conn.broken``), whatever the error says."""
    # The server's own message, not the query excerpt and caret libpq prints below it.
    primary = exc.diag.message_primary if exc.sqlstate else None
    text = scrub(primary).rstrip(".") if primary else _last_line(scrub(str(exc)))
    if lost or dropped(exc):
        return ServerGone(
            f"The connection to the run store in {where} was lost ({text}).",
            "Check the network and the server; the store connects again on its next use.",
        )
    if isinstance(exc, psycopg.errors.LockNotAvailable | psycopg.errors.QueryCanceled):
        return StoreError(
            f"The run store in {where} is busy (another process holds what this needed) and "
            "did not free up in time.",
            "Wait for other cnn-lab windows or jobs using it to finish, then try again.",
        )
    if isinstance(exc, psycopg.errors.DeadlockDetected | psycopg.errors.SerializationFailure):
        return StoreError(
            f"The run store in {where} could not finish a write at the same time as another "
            f"process ({text}).",
            "Try again.",
        )
    if isinstance(exc, psycopg.errors.InsufficientPrivilege):
        return StoreError(
            f"The run store in {where} cannot be written by this user ({text}).",
            "Ask the database's owner for the rights to its tables.",
        )
    return StoreError(f"The run store in {where} could not be used: {text}.")


__all__ = [
    "LOCK_TIMEOUT_MS",
    "ServerGone",
    "Target",
    "connect",
    "dropped",
    "scrub",
    "store_error",
    "target",
]
