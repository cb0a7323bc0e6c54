"""Copying a whole run store between backends, losslessly, and proving it.

``cnn-lab db copy SRC DST`` moves a person's SQLite file into the lab's PostgreSQL (or a lab
database back into a file): every experiment, run (its id, status, times, host, summary,
note, archive flag), tag, artifact record, metric point and system sample, then the run
files under the artifact root. The destination must hold no runs: merging two stores
would renumber runs, and then references to a run id (a report, a checkpoint folder, a
sweep's trial) would point at the wrong run.

Each backend streams a table's rows in one canonical order (``RunRepository.dump_rows``) and
writes them verbatim, ids included (``load_rows``), keeping its own derived data (metric
roll-ups, id sequences) in step. Afterwards both sides are read again and each table's row
count and SHA-256 over its canonical rows must agree; a mismatch raises, naming the table.
"""

from __future__ import annotations

import hashlib
import math
import os
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from cnn_lab.engine.errors import StoreError
from cnn_lab.engine.store.repository import RunRepository
from cnn_lab.engine.store.tables import TABLES


def canonical(value: Any) -> Any:
    """One value as both backends agree on it: a flag as 0/1, NaN as None (SQLite keeps NaN
    as NULL), other numbers and text as they are."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


@dataclass(frozen=True)
class TableCopy:
    """One table's rows and checksum on each side."""

    table: str
    source_rows: int
    copied_rows: int
    source_sha256: str
    copied_sha256: str

    @property
    def same(self) -> bool:
        return (self.source_rows, self.source_sha256) == (self.copied_rows, self.copied_sha256)


@dataclass(frozen=True)
class CopyResult:
    """What ``copy_store`` copied and checked."""

    tables: tuple[TableCopy, ...]
    files: int
    file_bytes: int
    missing_files: tuple[str, ...]
    """Artifact files the source recorded but its folder no longer holds (not copied)."""

    def lines(self) -> list[str]:
        """The report ``cnn-lab db copy`` prints: one line per table, then the files."""
        out = [
            f"{t.table:<15} {t.copied_rows:>12,} rows  sha256 {t.copied_sha256[:16]}  "
            + ("same" if t.same else f"DIFFERENT (source {t.source_rows:,} {t.source_sha256[:16]})")
            for t in self.tables
        ]
        out.append(f"{'files':<15} {self.files:>12,} files, {self.file_bytes:,} bytes")
        out += [f"missing in the source: {path}" for path in self.missing_files]
        return out


def digest(rows: Iterable[tuple[Any, ...]]) -> tuple[int, str]:
    """The number of rows and a SHA-256 over their canonical values."""
    sha, count = hashlib.sha256(), 0
    for row in rows:
        sha.update(repr(tuple(canonical(v) for v in row)).encode("utf-8"))
        sha.update(b"\n")
        count += 1
    return count, sha.hexdigest()


def _refuse_unless_empty(destination: RunRepository) -> None:
    for table in ("runs", "experiments"):
        if next(iter(destination.dump_rows(table, batch=1)), None) is not None:
            raise StoreError(
                f"The destination store already holds {table}; a copy goes into an empty "
                "store only (merging would renumber runs). Nothing was written.",
                "Copy into a new file or a new, empty database.",
            )


def copy_store(
    source: RunRepository,
    destination: RunRepository,
    *,
    progress: Callable[[str], None] = lambda line: None,
) -> CopyResult:
    """Copy every row of ``source`` into the empty ``destination``, check each table's count
    and checksum on both sides, then copy the run files; raises ``StoreError`` on any
    difference (the destination then holds what was copied so far, for inspection)."""
    _refuse_unless_empty(destination)
    for table in TABLES:
        written = destination.load_rows(table, source.dump_rows(table))
        progress(f"{table}: {written:,} rows")
    checked = []
    for table in TABLES:
        count, sha = digest(source.dump_rows(table))
        copied, copied_sha = digest(destination.dump_rows(table))
        checked.append(TableCopy(table, count, copied, sha, copied_sha))
    different = [t.table for t in checked if not t.same]
    if different:
        raise StoreError(
            f"The copy differs from its source in {', '.join(different)}; the destination "
            "keeps what was written, for inspection.",
            "Report this with both stores.",
        )
    files, size, missing = copy_files(source, destination)
    return CopyResult(tuple(checked), files, size, tuple(missing))


def copy_files(source: RunRepository, destination: RunRepository) -> tuple[int, int, list[str]]:
    """Copy every artifact recorded relative to the source's root to the same relative place
    under the destination's; absolute ones (outside the root) are left where they are."""
    source_root, target_root = source.path.parent, destination.path.parent
    files = size = 0
    missing: list[str] = []
    for row in source.dump_rows("artifacts"):
        stored = str(row[TABLES["artifacts"].index("path")])
        parts = PurePosixPath(stored).parts
        if PurePosixPath(stored).is_absolute() or os.path.isabs(stored) or ".." in parts:
            continue
        origin, target = source_root.joinpath(*parts), target_root.joinpath(*parts)
        if not origin.is_file():
            missing.append(stored)
            continue
        if origin.resolve() != target.resolve():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(origin, target)
        files += 1
        size += Path(target).stat().st_size
    return files, size, missing


__all__ = ["CopyResult", "TableCopy", "canonical", "copy_store", "digest"]
