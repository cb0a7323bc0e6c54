"""A run's files on disk (checkpoints, weights, exports) and deleting them with the run.

A run owns the folder ``run_files_dir(db, id)`` beside the database; everything in it goes with
the run. An artifact row can also point outside that folder (a model the person exported to a
path they chose): such a file is theirs, so deleting the run lists it as kept and leaves it.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from cnn_lab.engine.store.paths import run_files_dir
from cnn_lab.engine.store.repository import RunRepository


@dataclass(frozen=True)
class RunFiles:
    """What deleting a run would remove (its folder) and keep (files outside it)."""

    run_id: int
    folder: Path
    bytes: int
    kept: tuple[Path, ...]


@dataclass
class Deleted:
    """The outcome of deleting runs: the ids gone, bytes freed, files kept, folders that failed."""

    run_ids: list[int] = field(default_factory=list)
    bytes: int = 0
    kept: list[Path] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def sentence(self) -> str:
        text = f"Deleted {len(self.run_ids)} run{'s' * (len(self.run_ids) != 1)}"
        text += f" and {self.bytes / 1e6:,.1f} MB of their files."
        if self.kept:
            text += f" Kept {len(self.kept)} exported file(s) outside the runs' folders."
        if self.failed:
            text += " Could not remove: " + "; ".join(self.failed) + "."
        return text


def _folder_bytes(folder: Path) -> int:
    if not folder.is_dir():
        return 0
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def run_files(store: RunRepository, run_id: int) -> RunFiles:
    """The run's folder, its size, and the recorded files outside it (which stay)."""
    folder = run_files_dir(store.path, run_id)
    kept = []
    for artifact in store.artifacts(run_id):
        path = Path(artifact["path"])
        if not path.resolve().is_relative_to(folder.resolve()) and path.exists():
            kept.append(path)
    return RunFiles(run_id, folder, _folder_bytes(folder), tuple(kept))


def delete_runs(store: RunRepository, run_ids: list[int]) -> Deleted:
    """Delete the runs' rows (one transaction), then their folders.

    Rows first: if the store is locked or a run is still active nothing changes at all, and a
    folder that fails to go afterwards is named in the result rather than leaving a run whose
    weights have vanished.
    """
    files = [run_files(store, run_id) for run_id in run_ids]
    result = Deleted(run_ids=store.delete_run_rows(run_ids))
    for item in files:
        result.kept.extend(item.kept)
        if not item.folder.exists():
            continue
        try:
            shutil.rmtree(item.folder)
        except OSError as exc:
            result.failed.append(f"{item.folder} ({exc.strerror or exc})")
        else:
            result.bytes += item.bytes
    return result
