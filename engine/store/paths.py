"""Where the run store lives: an explicit path, else ``$CNN_LAB_DB``, else the user data folder.

One resolver so the GUI, the job process and ``cnn-lab`` on a terminal always agree on the file,
and tests can point everything at ``tmp_path`` with one environment variable.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import platformdirs

from cnn_lab.engine.errors import StoreError

ENV_VAR = "CNN_LAB_DB"


def default_db_path() -> Path:
    """The per-user store, e.g. ``~/.local/share/cnn-lab/runs.sqlite`` on Linux."""
    return platformdirs.user_data_path("cnn-lab") / "runs.sqlite"


_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
SQLITE_URL = "sqlite:///"


def _from_url(text: str) -> Path:
    """A path, or a ``sqlite:///path`` URL (SQLAlchemy's form), as the file's path.

    Any other URL is refused: taken as a path, ``postgresql://lab@host/db`` would quietly
    create a SQLite file in a folder named ``postgresql:``. Only callers that need the file
    itself (backups, moving a damaged store aside) come here; every other caller resolves a
    location (locations.py), which a PostgreSQL address is too.
    """
    match = _URL.match(text)
    if match is None:
        return Path(text)
    if text.startswith(SQLITE_URL) and len(text) > len(SQLITE_URL):
        return Path(text[len(SQLITE_URL) :])
    raise StoreError(
        f"cnn-lab cannot use {hide_password(text)!r} here: this needs the run store's SQLite file, "
        f"and {match.group(1)}:// is not a file.",
        hint="Give the path of a .sqlite file (or sqlite:///path).",
    )


def hide_password(text: str) -> str:
    """``text`` without a password written in it (``user:secret@host``), for sentences."""
    text = re.sub(r"(://[^:/@?#]*):[^@/?#]*@", r"\1:***@", text)
    return re.sub(r"([?&]password=)[^&#]*", r"\1***", text, flags=re.IGNORECASE)


def drop_password(text: str) -> str:
    """``text`` with any password written in it removed (not masked), for what is kept on
    disk: a remembered address then asks ~/.pgpass or PGPASSWORD, never a settings file."""
    text = re.sub(r"(://[^:/@?#]*):[^@/?#]*@", r"\1@", text)
    text = re.sub(r"([?&])password=[^&#]*&?", r"\1", text, flags=re.IGNORECASE)
    return re.sub(r"[?&]$", "", text)


def resolve_db_path(value: str | os.PathLike[str] | None = None) -> Path:
    """Pick the store's SQLite file: ``value`` wins, then ``$CNN_LAB_DB``, then the default.

    The result is absolute with ``~`` expanded, so a path handed to a child process means the
    same file whatever that process's working directory is.
    """
    if value is not None and str(value) != "":
        chosen = _from_url(os.fspath(value))
    elif os.environ.get(ENV_VAR):
        chosen = _from_url(os.environ[ENV_VAR])
    else:
        chosen = default_db_path()
    try:
        expanded = chosen.expanduser()
    except RuntimeError as exc:  # "~nosuchuser/runs.sqlite"
        raise StoreError(
            f"Cannot use the database path {str(chosen)!r}: {exc}.",
            hint="Give a full path, or a path under your own home folder.",
        ) from exc
    return Path(os.path.abspath(expanded))


def run_files_dir(db_path: str | os.PathLike[str], run_id: int) -> Path:
    """Where a run's files (weights, exports) live: beside the database, one folder per run.

    Kept next to the database rather than in a global folder so that copying or deleting a
    database folder takes its runs' files with it, and tests under tmp_path stay contained.
    """
    db = Path(db_path)
    return db.parent / f"{db.stem}-files" / f"run-{int(run_id)}"
