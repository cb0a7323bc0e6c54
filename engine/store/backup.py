"""Copies of the run store: a backup before each migration, and putting a bad file aside.

A migration rewrites a person's whole history of runs, so before one touches a store that has
data, the store is copied beside itself with SQLite's online backup API (consistent even while
other processes read it): ``runs.sqlite`` at schema version 2 becomes ``runs.sqlite.v2-backup``.
Only the latest copy per version is kept; the file name says which cnn-lab can read it.

A store that cannot be read (not SQLite, damaged) is never deleted: starting afresh or
restoring a backup first moves it, with its WAL and shared-memory files, to
``runs.sqlite.damaged-YYYYmmdd-HHMMSS``, where SQLite can still open it for a rescue attempt.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import re
import shutil
import sqlite3
import time
from pathlib import Path

from cnn_lab.engine.errors import StoreError

_log = logging.getLogger(__name__)

SIDE_SUFFIXES = ("-wal", "-shm", "-journal")
"""The files SQLite keeps beside a database; they belong to it and move with it."""
_BACKUP = re.compile(r"\.v(\d+)-backup$")


def backup_path(db_path: str | os.PathLike[str], version: int) -> Path:
    """Where the copy of ``db_path`` taken at schema ``version`` lives."""
    path = Path(db_path)
    return path.with_name(f"{path.name}.v{int(version)}-backup")


def make_backup(db_path: str | os.PathLike[str], version: int) -> Path:
    """Copy the store at ``db_path`` (at schema ``version``) to ``backup_path``; return it.

    Written to a temporary name and renamed, so a crash or a full disk midway leaves the
    previous backup of that version whole. Reads through a connection of its own: the caller
    may hold the write lock (a connection cannot back itself up inside its write transaction).
    Raises ``StoreError`` when the copy cannot be written; the caller must not migrate then.
    """
    source_path = Path(db_path)
    target = backup_path(source_path, version)
    partial = target.with_name(target.name + ".partial")
    try:
        partial.unlink(missing_ok=True)
        source = sqlite3.connect(source_path, timeout=30)
        try:
            copy = sqlite3.connect(partial)
            try:
                source.backup(copy)
            finally:
                copy.close()
        finally:
            source.close()
        os.replace(partial, target)
    except (OSError, sqlite3.Error) as exc:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
        raise StoreError(
            f"The run store at {source_path} needs an upgrade, but the copy kept before "
            f"upgrading could not be written to {target} ({exc}). Nothing was changed.",
            "Free some disk space (or make the folder writable), then open it again.",
        ) from exc
    _log.warning(
        "Backed up the run store %s (schema version %d) to %s before migrating it.",
        source_path,
        version,
        target,
    )
    return target


def backups(db_path: str | os.PathLike[str]) -> list[Path]:
    """The backups of ``db_path``, newest first (by time written, then schema version)."""
    path = Path(db_path)
    found = []
    for candidate in path.parent.glob(f"{glob.escape(path.name)}.v*-backup"):
        match = _BACKUP.search(candidate.name)
        if match and candidate.name == f"{path.name}{match.group(0)}" and candidate.is_file():
            found.append((candidate.stat().st_mtime, int(match.group(1)), candidate))
    return [candidate for _, _, candidate in sorted(found, reverse=True)]


def latest_backup(db_path: str | os.PathLike[str]) -> Path | None:
    """The newest backup of ``db_path``, or None when it has none."""
    found = backups(db_path)
    return found[0] if found else None


def move_aside(db_path: str | os.PathLike[str], *, now: float | None = None) -> Path | None:
    """Rename ``db_path`` and its side files to ``<name>.damaged-<time>``; return the new path.

    None when there was nothing to move. Raises ``StoreError`` when a file cannot be moved
    (whatever moved already stays moved, under the same new name).
    """
    path = Path(db_path)
    if not path.exists():
        return None
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(time.time() if now is None else now))
    aside = path.with_name(f"{path.name}.damaged-{stamp}")
    serial = 1
    while any(Path(f"{aside}{s}").exists() for s in ("", *SIDE_SUFFIXES)):
        serial += 1
        aside = path.with_name(f"{path.name}.damaged-{stamp}-{serial}")
    for suffix in ("", *SIDE_SUFFIXES):
        source = Path(f"{path}{suffix}")
        if suffix and not source.exists():
            continue
        try:
            os.replace(source, f"{aside}{suffix}")
        except OSError as exc:
            raise StoreError(
                f"Could not move {source} aside to {aside}{suffix} ({exc}).",
                "Check the folder's rights, or move the file away yourself.",
            ) from exc
    _log.warning("Moved the unreadable run store %s aside to %s.", path, aside)
    return aside


def restore_backup(db_path: str | os.PathLike[str], source: str | os.PathLike[str]) -> Path | None:
    """Put the backup ``source`` in place of ``db_path``, moving the current file aside first.

    Returns where the current file went (None if there was none). The backup itself stays,
    so restoring can be tried again.
    """
    path = Path(db_path)
    aside = move_aside(path)
    partial = path.with_name(path.name + ".restoring")
    try:
        shutil.copyfile(source, partial)
        os.replace(partial, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
        raise StoreError(
            f"Could not copy the backup {source} to {path} ({exc}).",
            "Free some disk space, or copy the backup there yourself.",
        ) from exc
    _log.warning("Restored the run store %s from its backup %s.", path, source)
    return aside
