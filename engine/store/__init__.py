"""The run store: runs, metrics, system samples and artifacts in one SQLite file (WAL mode) or a
lab's PostgreSQL database (postgres/).

``open_store(location)`` opens either from one string (locations.py): a SQLite path or a
``postgresql://`` address. ``RunStore`` is one connection for the thread that opened it;
``BatchedWriter`` is a job's write path, batching points from a background thread.
Importing this package loads no torch and no Qt.
"""

from cnn_lab.engine.store.locations import (
    artifact_root,
    is_postgres,
    is_sqlite,
    open_store,
    resolve_location,
    store_exists,
)
from cnn_lab.engine.store.paths import ENV_VAR, default_db_path, resolve_db_path, run_files_dir
from cnn_lab.engine.store.repository import RunRepository
from cnn_lab.engine.store.schema import MIGRATIONS, SCHEMA_VERSION, Migration
from cnn_lab.engine.store.status import (
    ACTIVE,
    ALL,
    COMPLETED,
    CRASHED,
    FAILED,
    FINAL,
    QUEUED,
    RUNNING,
    STOPPED,
)
from cnn_lab.engine.store.store import MetricPoint, RunRecord, RunStore, SystemSample
from cnn_lab.engine.store.writer import BatchedWriter

__all__ = [
    "ACTIVE",
    "ALL",
    "COMPLETED",
    "CRASHED",
    "ENV_VAR",
    "FAILED",
    "FINAL",
    "MIGRATIONS",
    "QUEUED",
    "RUNNING",
    "SCHEMA_VERSION",
    "STOPPED",
    "BatchedWriter",
    "MetricPoint",
    "Migration",
    "RunRecord",
    "RunRepository",
    "RunStore",
    "SystemSample",
    "artifact_root",
    "default_db_path",
    "is_postgres",
    "is_sqlite",
    "open_store",
    "resolve_db_path",
    "resolve_location",
    "run_files_dir",
    "store_exists",
]
