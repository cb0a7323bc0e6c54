"""The run store's tables in PostgreSQL, as the same numbered migrations as SQLite's.

The versions and names mirror engine/store/schema.py, so one number says what a store holds
whichever backend it is: a future migration is added to both, with the same number. The
tables and columns are SQLite's, in PostgreSQL's types (BIGSERIAL ids, which like SQLite's
AUTOINCREMENT never hand a deleted run's id out again; DOUBLE PRECISION times; BOOLEAN
``archived``). Two additions, each because PostgreSQL has no ``rowid``: ``metrics`` and
``system_samples`` get an ``id``, the order points were written in, which breaks ties of
equal steps the way SQLite's rowid does and lets an export page through a run.

Metric keys and tags are ``COLLATE "C"``: they sort byte by byte, as SQLite's do, whatever
locale the lab's server was set up with.

Several processes may open a new database at once (a sweep's workers on every machine), so
the schema is created under a transaction-scoped advisory lock: the first creates it, the
others wait, re-read the version and find nothing to do.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from cnn_lab.engine.errors import StoreError
from cnn_lab.engine.store import schema as sqlite_schema
from cnn_lab.engine.store.postgres.connect import Target

SCHEMA_LOCK = 0x636E6E6C
"""The advisory lock key (``cnnl``) held while the schema is created or migrated."""

SERVER_NOW = "extract(epoch FROM clock_timestamp())::double precision"
"""The server's wall clock in Unix seconds: every time the store writes is read from it, so
machines with skewed clocks agree on how old a heartbeat is."""


@dataclass(frozen=True)
class Migration:
    """One step of the schema, applied once, in a transaction, and recorded."""

    version: int
    name: str
    statements: tuple[str, ...]


MIGRATIONS_TABLE_SQL = """
CREATE TABLE IF NOT EXISTS migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at DOUBLE PRECISION NOT NULL
)
"""

_V1 = (
    """
    CREATE TABLE experiments (
        id BIGSERIAL PRIMARY KEY,
        name TEXT NOT NULL DEFAULT '',
        kind TEXT NOT NULL DEFAULT 'group',
        created_at DOUBLE PRECISION NOT NULL,
        spec_json TEXT NOT NULL DEFAULT ''
    )
    """,
    """
    CREATE TABLE datasets (
        id TEXT PRIMARY KEY,
        source TEXT NOT NULL DEFAULT '',
        name TEXT NOT NULL DEFAULT '',
        report_json TEXT NOT NULL DEFAULT '{}',
        created_at DOUBLE PRECISION NOT NULL
    )
    """,
    # spec_json and summary_json stay TEXT: a spec reads back exactly as it was written (its
    # hash is of that text); queries cast them with ::jsonb where they look inside.
    """
    CREATE TABLE runs (
        id BIGSERIAL PRIMARY KEY,
        experiment_id BIGINT REFERENCES experiments(id) ON DELETE SET NULL,
        name TEXT NOT NULL DEFAULT '',
        status TEXT NOT NULL,
        reason TEXT,
        hint TEXT,
        spec_json TEXT NOT NULL,
        spec_hash TEXT NOT NULL,
        dataset TEXT NOT NULL DEFAULT '',
        model TEXT NOT NULL DEFAULT '',
        device TEXT NOT NULL DEFAULT '',
        host TEXT,
        pid INTEGER,
        created_at DOUBLE PRECISION NOT NULL,
        started_at DOUBLE PRECISION,
        ended_at DOUBLE PRECISION,
        heartbeat_at DOUBLE PRECISION,
        summary_json TEXT NOT NULL DEFAULT '{}'
    )
    """,
    "CREATE INDEX idx_runs_status ON runs(status)",
    "CREATE INDEX idx_runs_created_at ON runs(created_at)",
    "CREATE INDEX idx_runs_experiment_id ON runs(experiment_id)",
    """
    CREATE TABLE metrics (
        id BIGSERIAL,
        run_id BIGINT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        step BIGINT NOT NULL,
        epoch BIGINT NOT NULL,
        key TEXT COLLATE "C" NOT NULL,
        value DOUBLE PRECISION,
        time DOUBLE PRECISION NOT NULL
    )
    """,
    "CREATE INDEX idx_metrics_run_id_key_step ON metrics(run_id, key, step)",
    """
    CREATE TABLE system_samples (
        id BIGSERIAL,
        run_id BIGINT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        time DOUBLE PRECISION NOT NULL,
        key TEXT COLLATE "C" NOT NULL,
        value DOUBLE PRECISION
    )
    """,
    "CREATE INDEX idx_system_samples_run_id_key_time ON system_samples(run_id, key, time)",
    """
    CREATE TABLE artifacts (
        id BIGSERIAL PRIMARY KEY,
        run_id BIGINT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        path TEXT NOT NULL,
        kind TEXT NOT NULL,
        sha256 TEXT NOT NULL DEFAULT '',
        bytes BIGINT NOT NULL DEFAULT 0,
        created_at DOUBLE PRECISION NOT NULL
    )
    """,
    "CREATE INDEX idx_artifacts_run_id ON artifacts(run_id)",
)

_V2 = (
    """
    CREATE TABLE metric_rollups (
        run_id BIGINT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        key TEXT COLLATE "C" NOT NULL,
        bucket BIGINT NOT NULL,
        points BIGINT NOT NULL,
        first_step BIGINT NOT NULL,
        last_step BIGINT NOT NULL,
        min_step BIGINT, min_epoch BIGINT, min_value DOUBLE PRECISION,
        min_time DOUBLE PRECISION,
        max_step BIGINT, max_epoch BIGINT, max_value DOUBLE PRECISION,
        max_time DOUBLE PRECISION,
        PRIMARY KEY (run_id, key, bucket)
    )
    """,
)

# No PostgreSQL store predates v3 or v4, so unlike SQLite's they carry no data over: tags were
# always in run_tags, and artifact paths always relative to the artifact root.
_V3 = (
    "ALTER TABLE runs ADD COLUMN note TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE runs ADD COLUMN archived BOOLEAN NOT NULL DEFAULT FALSE",
    """
    CREATE TABLE run_tags (
        run_id BIGINT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        tag TEXT COLLATE "C" NOT NULL,
        PRIMARY KEY (run_id, tag)
    )
    """,
    "CREATE INDEX idx_run_tags_tag ON run_tags(LOWER(tag))",
)

_STATEMENTS = {1: _V1, 2: _V2, 3: _V3, 4: ()}

MIGRATIONS: tuple[Migration, ...] = tuple(
    Migration(m.version, m.name, _STATEMENTS[m.version]) for m in sqlite_schema.MIGRATIONS
)
SCHEMA_VERSION: int = MIGRATIONS[-1].version

_OWN_COLUMNS = {"version", "name", "applied_at"}


def prepare(conn: psycopg.Connection, where: Target) -> None:
    """Create or migrate the schema, or refuse the database; commits what it did.

    Reads first without any lock, so opening an up-to-date store waits for nobody.
    """
    with conn.transaction():
        version = _version(conn, where)
    if version >= SCHEMA_VERSION:
        return
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", [SCHEMA_LOCK])
        version = _version(conn, where)  # another process may have created it meanwhile
        conn.execute(MIGRATIONS_TABLE_SQL)
        for migration in MIGRATIONS:
            if migration.version <= version:
                continue
            for statement in migration.statements:
                conn.execute(statement)  # type: ignore[arg-type]  # our own constants
            conn.execute(
                f"INSERT INTO migrations (version, name, applied_at) VALUES (%s, %s, {SERVER_NOW})",
                [migration.version, migration.name],
            )


def _version(conn: psycopg.Connection, where: Target) -> int:
    """The store's schema version (0: an empty database); refuses another program's
    database and a newer cnn-lab's store before anything is written."""
    tables = [
        str(row[0])
        for row in conn.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = current_schema() ORDER BY table_name"
        )
    ]
    if not tables:
        return 0
    columns = {
        str(row[0])
        for row in conn.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = 'migrations'"
        )
    }
    if not columns >= _OWN_COLUMNS:
        shown = ", ".join(tables[:5]) + (", …" if len(tables) > 5 else "")
        raise StoreError(
            f"The {where} holds another application's tables ({shown}), not a cnn-lab run "
            "store. Nothing in it was changed.",
            "Give cnn-lab a database of its own (an empty one is set up on first use).",
        )
    row = conn.execute("SELECT MAX(version) FROM migrations").fetchone()
    version = int(row[0] or 0) if row else 0
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"The run store in {where} was written by a newer cnn-lab (schema version "
            f"{version}; this cnn-lab knows up to {SCHEMA_VERSION}).",
            "Update cnn-lab on this machine.",
        )
    return version


__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "SERVER_NOW", "Migration", "prepare"]
