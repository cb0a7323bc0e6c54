"""A throwaway PostgreSQL cluster for the tests, started from Debian's server binaries.

The PostgreSQL run store is tested against a real server, never a mock: ``initdb`` makes a
cluster in a temporary folder, and ``pg_ctl`` starts it listening on a Unix socket in that
folder only (no TCP port, so parallel test workers and other servers on the machine never
collide), with fsync off because the cluster is thrown away. Each test gets a database of
its own (``new_database``).

Logins: the superuser ``cnnlab`` and every other role get in over the socket without a
password (``trust``), except ``PASSWORD_ROLE``, which must give its password
(``scram-sha-256``), so the store's "password refused" sentence can be tested.

Run as root (a container), ``initdb`` refuses to start; the server then runs as the
``postgres`` user (or ``nobody``), which owns the folder.

``stop_server`` and ``start_server`` take the server away and bring it back with the same
data and socket, for the tests of a server that goes away mid-run (test_pg_outage.py); they
use a cluster of their own, never the session's shared one.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

BIN_ENV = "CNN_LAB_PG_BIN"
"""A folder holding initdb and pg_ctl, to use instead of /usr/lib/postgresql/*/bin."""

SUPERUSER = "cnnlab"
PASSWORD_ROLE = "cnnlab_pw"
PORT = 5432  # only names the socket file: the server listens on no TCP port

_HBA = f"""\
# Written by tests/store/pg_cluster.py: first match wins.
local all {PASSWORD_ROLE} scram-sha-256
local all all trust
"""


class MissingServer(RuntimeError):
    """The PostgreSQL server binaries are not installed."""


def find_bin() -> Path:
    """The newest installed PostgreSQL's bin folder (or ``$CNN_LAB_PG_BIN``)."""
    chosen = os.environ.get(BIN_ENV)
    if chosen:
        candidates = [Path(chosen) / "initdb"]
    else:
        found = glob.glob("/usr/lib/postgresql/*/bin/initdb")
        candidates = [Path(p) for p in sorted(found, key=_major_version, reverse=True)]
    for initdb in candidates:
        if initdb.is_file() and (initdb.parent / "pg_ctl").is_file():
            return initdb.parent
    raise MissingServer(
        "The PostgreSQL server binaries (initdb, pg_ctl) were not found in "
        f"{chosen or '/usr/lib/postgresql/*/bin'}, so the PostgreSQL run store cannot be "
        "tested. Install them (Debian/Ubuntu: sudo apt-get install -y postgresql; .ci/run "
        f"does this) or point {BIN_ENV} at their folder."
    )


def _major_version(initdb: str) -> int:
    try:
        return int(Path(initdb).parent.parent.name.split(".")[0])
    except ValueError:
        return 0


def _server_user() -> tuple[int, int] | None:
    """The (uid, gid) the server runs as when we are root, else None (it runs as us)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            entry = pwd.getpwnam(name)
            return entry.pw_uid, entry.pw_gid
    raise MissingServer("Running as root, and there is no postgres or nobody user to run as.")


@dataclass
class Cluster:
    """A running throwaway cluster: its folder (which holds the socket) and binaries."""

    folder: Path
    bin: Path
    owner: tuple[int, int] | None
    _numbers: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def data(self) -> Path:
        return self.folder / "data"

    @classmethod
    def start(cls) -> Cluster:
        """initdb, write pg_hba.conf, start the server and wait until it accepts logins."""
        bin_dir = find_bin()
        owner = _server_user()
        # Under /tmp, not pytest's tmp_path: a Unix socket's path must stay under ~100 bytes,
        # and a root-owned 0700 pytest folder would be closed to the server's user.
        folder = Path(tempfile.mkdtemp(prefix="cnn-lab-pg-", dir="/tmp"))
        if owner is not None:
            os.chown(folder, *owner)
        cluster = cls(folder, bin_dir, owner)
        try:
            cluster._run(
                "initdb", "-D", str(cluster.data), "-U", SUPERUSER, "--auth=trust",
                "-E", "UTF8", "--locale=C", "--no-sync",
            )  # fmt: skip
            (cluster.data / "pg_hba.conf").write_text(_HBA, encoding="utf-8")
            cluster.start_server()
        except BaseException:
            cluster.stop()
            raise
        return cluster

    def start_server(self) -> None:
        """Start the server on the cluster's data and socket; return once it accepts logins."""
        options = (
            f"-c listen_addresses='' -c unix_socket_directories={self.folder} -p {PORT} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c password_encryption=scram-sha-256"
        )
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.folder / "server.log"),
            "-o", options, "-w", "-t", "60", "start",
        )  # fmt: skip

    @property
    def running(self) -> bool:
        """Whether the server is up (pg_ctl keeps postmaster.pid while it is)."""
        return (self.data / "postmaster.pid").exists()

    def stop_server(self, mode: str = "fast") -> None:
        """Stop the server, keeping its data: ``fast`` ends every session and writes what
        was committed (synchronous_commit is off, so ``immediate`` may lose the last
        commits, as a crash would); return once it is down."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def _run(self, program: str, *args: str) -> None:
        kwargs: dict[str, Any] = {}
        if self.owner is not None:
            kwargs = {"user": self.owner[0], "group": self.owner[1], "extra_groups": []}
        done = subprocess.run(
            [str(self.bin / program), *args],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=self.folder,
            check=False,
            **kwargs,
        )
        if done.returncode != 0:
            log = self.folder / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(
                f"{program} failed ({done.returncode}): {done.stdout}{done.stderr}{tail}"
            )

    def stop(self) -> None:
        """Stop the server at once (nothing in it is worth a clean shutdown) and delete it."""
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(Exception):
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.folder, ignore_errors=True)

    def url(self, dbname: str, user: str = SUPERUSER, password: str | None = None) -> str:
        """A postgresql:// address of ``dbname`` over this cluster's socket."""
        secret = f":{password}" if password is not None else ""
        return f"postgresql://{user}{secret}@/{dbname}?host={self.folder}&port={PORT}"

    @contextlib.contextmanager
    def admin(self) -> Iterator[psycopg.Connection[Any]]:
        """A superuser connection to the ``postgres`` database, in autocommit."""
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            yield conn

    def new_database(self, owner: str = SUPERUSER) -> str:
        """Create an empty database ``t_<n>`` owned by ``owner``; its superuser address."""
        name = f"t_{next(self._numbers)}"
        with self.admin() as conn:
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(name), sql.Identifier(owner)
                )
            )
        return self.url(name)

    def ensure_password_role(self, password: str) -> str:
        """Create (or reset) ``PASSWORD_ROLE`` with ``password``; its name."""
        with self.admin() as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_roles WHERE rolname = %s", [PASSWORD_ROLE]
            ).fetchone()
            verb = "ALTER" if exists else "CREATE"
            conn.execute(
                sql.SQL(verb + " ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(PASSWORD_ROLE), sql.Literal(password)
                )
            )
        return PASSWORD_ROLE


__all__ = ["BIN_ENV", "PASSWORD_ROLE", "SUPERUSER", "Cluster", "MissingServer", "find_bin"]


@contextlib.contextmanager
def throwaway_cluster() -> Iterator[Cluster]:
    """A cluster for the caller alone, deleted afterwards. Missing server binaries fail the
    test that asked, loudly, and never skip it: CI installs them (.ci/run), and a skipped
    backend would pass unseen."""
    import pytest

    missing = None
    try:
        cluster = Cluster.start()
    except MissingServer as exc:
        missing = str(exc)
    if missing is not None:  # outside the except block: one clean message, no chained trace
        pytest.fail(missing, pytrace=False)
    try:
        yield cluster
    finally:
        cluster.stop()
