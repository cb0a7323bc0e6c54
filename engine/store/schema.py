"""The run store's schema as an ordered list of migrations.

Each migration is applied once and recorded in ``migrations``; a store is at the version of its
newest recorded migration. ``RunStore.open`` applies all pending ones in one transaction, after a
backup copy, so a migration that fails leaves the store at its old version. New columns or
tables get a new entry at the end of ``MIGRATIONS``: never edit one that has shipped, because
stores in the wild already recorded it as applied.

Foreign keys from metrics, samples and artifacts to ``runs`` cascade on delete so deleting a run
can never leave orphaned rows; ``value`` columns are nullable because SQLite stores NaN as NULL.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import sqlite_utils


@dataclass(frozen=True)
class Migration:
    """One step of the schema: ``apply(db)`` runs inside a transaction the caller opened."""

    version: int
    name: str
    apply: Callable[[sqlite_utils.Database], None]


MIGRATIONS_TABLE_SQL = """
CREATE TABLE IF NOT EXISTS migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at REAL NOT NULL
)
"""

_V1_STATEMENTS = (
    """
    CREATE TABLE experiments (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL DEFAULT '',
        kind TEXT NOT NULL DEFAULT 'group',
        created_at REAL NOT NULL,
        spec_json TEXT NOT NULL DEFAULT ''
    )
    """,
    """
    CREATE TABLE datasets (
        id TEXT PRIMARY KEY,
        source TEXT NOT NULL DEFAULT '',
        name TEXT NOT NULL DEFAULT '',
        report_json TEXT NOT NULL DEFAULT '{}',
        created_at REAL NOT NULL
    )
    """,
    # AUTOINCREMENT: a deleted run's id is never handed out again, so a stale reference
    # (a chart, an exported report, a checkpoint folder) cannot silently point at a new run.
    """
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        experiment_id INTEGER REFERENCES experiments(id) ON DELETE SET NULL,
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
        created_at REAL NOT NULL,
        started_at REAL,
        ended_at REAL,
        heartbeat_at REAL,
        summary_json TEXT NOT NULL DEFAULT '{}'
    )
    """,
    "CREATE INDEX idx_runs_status ON runs(status)",
    "CREATE INDEX idx_runs_created_at ON runs(created_at)",
    "CREATE INDEX idx_runs_experiment_id ON runs(experiment_id)",
    """
    CREATE TABLE metrics (
        run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        step INTEGER NOT NULL,
        epoch INTEGER NOT NULL,
        key TEXT NOT NULL,
        value REAL,
        time REAL NOT NULL
    )
    """,
    "CREATE INDEX idx_metrics_run_id_key_step ON metrics(run_id, key, step)",
    """
    CREATE TABLE system_samples (
        run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        time REAL NOT NULL,
        key TEXT NOT NULL,
        value REAL
    )
    """,
    "CREATE INDEX idx_system_samples_run_id_key_time ON system_samples(run_id, key, time)",
    """
    CREATE TABLE artifacts (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        path TEXT NOT NULL,
        kind TEXT NOT NULL,
        sha256 TEXT NOT NULL DEFAULT '',
        bytes INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL
    )
    """,
    "CREATE INDEX idx_artifacts_run_id ON artifacts(run_id)",
)


def _v1_initial(db: sqlite_utils.Database) -> None:
    for statement in _V1_STATEMENTS:
        db.execute(statement)


def _v2_rollups(db: sqlite_utils.Database) -> None:
    from cnn_lab.engine.store import rollups

    db.execute(rollups.CREATE_SQL)
    rollups.rebuild(db.conn)  # a store written before roll-ups gets them for its old runs


_V3_STATEMENTS = (
    "ALTER TABLE runs ADD COLUMN note TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE runs ADD COLUMN archived INTEGER NOT NULL DEFAULT 0",
    # Tags in their own table rather than a JSON column: "tag:baseline" over 10,000 runs is an
    # index lookup, and renaming or removing one tag never rewrites a run's spec.
    """
    CREATE TABLE run_tags (
        run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        tag TEXT NOT NULL,
        PRIMARY KEY (run_id, tag)
    )
    """,
    "CREATE INDEX idx_run_tags_tag ON run_tags(tag COLLATE NOCASE)",
    # Runs recorded before v3 keep the tags their spec was given.
    """
    INSERT OR IGNORE INTO run_tags (run_id, tag)
    SELECT runs.id, tags.value FROM runs, json_each(runs.spec_json, '$.tags') AS tags
    WHERE json_valid(runs.spec_json) AND json_type(runs.spec_json, '$.tags') = 'array'
      AND tags.type = 'text' AND tags.value <> ''
    """,
)


def _v3_organise(db: sqlite_utils.Database) -> None:
    for statement in _V3_STATEMENTS:
        db.execute(statement)


def _v4_relative_paths(db: sqlite_utils.Database) -> None:
    from cnn_lab.engine.store import artifact_paths

    artifact_paths.relative_paths(db)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "runs, metrics, system samples, artifacts, experiments, datasets", _v1_initial),
    Migration(2, "metric roll-ups: each curve's extremes per 64 steps", _v2_rollups),
    Migration(3, "run notes, tags and archiving", _v3_organise),
    Migration(4, "artifact paths relative to the database's folder", _v4_relative_paths),
)

SCHEMA_VERSION: int = MIGRATIONS[-1].version


def current_version(db: sqlite_utils.Database) -> int:
    """The newest migration recorded in ``db``; 0 for a store that has none yet.

    Only reads, so a store that is up to date is opened without taking the write lock.
    """
    if "migrations" not in db.table_names():
        return 0
    row = db.execute("SELECT MAX(version) FROM migrations").fetchone()
    return int(row[0] or 0)


def apply_migration(db: sqlite_utils.Database, migration: Migration) -> None:
    """Run one migration and record it. The caller owns the transaction around both."""
    db.execute(MIGRATIONS_TABLE_SQL)
    migration.apply(db)
    db.execute(
        "INSERT INTO migrations (version, name, applied_at) VALUES (?, ?, ?)",
        [migration.version, migration.name, time.time()],
    )
