"""Artifact paths relative to the database's folder, so a store copied with it keeps its files.

A run's files (checkpoints, weights, reports) live beside the database
(``paths.run_files_dir``: ``<folder>/<db stem>-files/run-<id>/``). Recording them relative to
the database's folder, with forward slashes on every system, means that a SQLite store copied
or moved with its folder, to another folder or another machine, still finds every run's
weights; an absolute path would point at the old place. A file outside the folder (an export
the person saved elsewhere) keeps its absolute path: there is nothing to be relative to.

``RunStore`` writes through ``to_stored`` and reads through ``to_absolute``, so callers
always see absolute paths. Migration 4 (``relative_paths``) rewrites the absolute paths an
older cnn-lab recorded, including those of a store that was copied before it was upgraded
(found by their ``<stem>-files/run-<id>/`` part).
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath, PureWindowsPath

import sqlite_utils


def _is_relative(stored: str) -> bool:
    return not (PurePosixPath(stored).is_absolute() or PureWindowsPath(stored).is_absolute())


def to_stored(path: str | os.PathLike[str], root: Path) -> str:
    """What the store records for ``path``: relative to ``root`` (the database's folder) when
    inside it, else the absolute path as given."""
    absolute = Path(os.path.abspath(path))
    try:
        return absolute.relative_to(root).as_posix()
    except ValueError:
        return os.fspath(path)


def to_absolute(stored: str, root: Path) -> str:
    """The absolute path of a recorded artifact (``root``: the database's folder)."""
    if not _is_relative(stored):
        return stored
    return os.fspath(root.joinpath(*PurePosixPath(stored).parts))


def from_old(stored: str, root: Path, stem: str, run_id: int) -> str:
    """An absolute path an older cnn-lab recorded, made relative when it is a run file.

    Under ``root`` it becomes relative to it; elsewhere (the store was copied before this
    upgrade) its ``<stem>-files/run-<id>/`` part locates it in the copy's own folder.
    """
    if _is_relative(stored):
        return stored
    inside = to_stored(stored, root)
    if inside != stored:
        return inside
    marker = f"{stem}-files/run-{int(run_id)}/"
    slashed = stored.replace("\\", "/")
    at = slashed.rfind("/" + marker)
    return slashed[at + 1 :] if at >= 0 else stored


def database_file(db: sqlite_utils.Database) -> Path | None:
    """The main database's file (None for an in-memory one)."""
    for _, name, file in db.execute("PRAGMA database_list").fetchall():
        if name == "main" and file:
            return Path(file)
    return None


def relative_paths(db: sqlite_utils.Database) -> None:
    """Migration 4: rewrite every recorded artifact path with ``from_old``."""
    file = database_file(db)
    if file is None:
        return
    rows = db.execute("SELECT id, run_id, path FROM artifacts").fetchall()
    changed = [
        (new, artifact_id)
        for artifact_id, run_id, path in rows
        if (new := from_old(path, file.parent, file.stem, run_id)) != path
    ]
    db.conn.executemany("UPDATE artifacts SET path = ? WHERE id = ?", changed)


__all__ = ["from_old", "relative_paths", "to_absolute", "to_stored"]
