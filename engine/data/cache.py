"""Decode and resize every image once into a uint8 cache on disk, memory-mapped.

A training run reads the cache, not the image files: one N×H×W×C uint8 ``.npy`` file per
(source, preprocessing) that ``np.load(mmap_mode="r")`` opens instantly whatever its size.
A manifest beside it records, per row, the file's path, size, mtime and content hash, so a
second prepare of an unchanged folder reads nothing but ``stat``, and after a change only the
new or edited files are decoded; the rest is copied from the previous cache.

Decoding runs on every core, in worker processes once there is enough to decode. Measured
(benchmarks/import_scale.py, 5,000 camera photos on 2 cores): threads were as fast, even 4 to
9 % faster (30.7 vs 33.6 s at 128 px), because Pillow and blake2b release the GIL for nearly
all of a file's work, and the window's event loop stalled no longer with either (116 vs 123 ms
at most while importing 5,000 small photos). Processes are kept for what threads cannot give:
a folder is untrusted input, and a decoder that crashes on a crafted file takes down a worker
and becomes a sentence naming the files, where in a thread it would take the window or the
training job with it; and the few milliseconds of Python per file (fingerprints, records)
do not queue on one interpreter lock on a many-core machine. CNN_LAB_DECODE chooses either.
Workers write pixels straight into the file being built (cache_build.py), so the parent holds
rows' metadata only and peak memory is a few images per worker whatever the size of the
folder (349 MB for the whole import at 128 px, 722 MB at 224). A cancelled or killed build
resumes at the files it had not finished.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import (
    FIRST_COMPLETED,
    Executor,
    Future,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
    wait,
)
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cnn_lab.engine.data.cache_build import (
    EarlierBuilds,
    PartialBuild,
    build_lock,
    remove_builds,
)
from cnn_lab.engine.data.cache_rows import (
    Decoded,
    DecodeJob,
    Outcome,
    Preprocess,
    Refused,
    RowInfo,
    SameContent,
    SlotWriter,
    StatKey,
    WorkerSetup,
    run_in_worker,
    start_worker,
)
from cnn_lab.engine.data.listing import FileEntry, FileListing, Skip
from cnn_lab.engine.data.paths import image_cache_dir
from cnn_lab.engine.errors import Cancelled, DataError

__all__ = ["CachedImages", "Preprocess", "RowInfo", "build_file_cache", "cache_dir_for"]

MANIFEST_VERSION = 1
Progress = Callable[[str, int, int], None]

PROCESS_MIN_FILES = 96
"""Fewer files than this decode on threads: a process pool's start (about 0.3 s per worker to
import numpy and Pillow) would cost more than it saves."""
FILES_PER_TASK = 8
"""Files per task sent to a worker: enough to amortise the round trip, few enough that
progress and Cancel stay prompt (a camera photo takes 10-40 ms)."""
TASKS_IN_FLIGHT_PER_WORKER = 3
DECODE_ENV = "CNN_LAB_DECODE"
"""Set to ``threads`` or ``processes`` to force how files are decoded (benchmarks compare
the two; the default decides by the number of files)."""


@dataclass
class CachedImages:
    images: np.ndarray  # uint8 N×H×W×C; a read-only memory map for file sources
    rows: list[RowInfo]
    skipped: list[Skip]
    path: Path | None = None
    decoded: int = 0
    reused: int = 0
    build_s: float = 0.0


def cache_dir_for(listing: FileListing, prep: Preprocess) -> Path:
    root_id = hashlib.blake2b(str(listing.root).encode(), digest_size=8).hexdigest()
    slug = "".join(c if c.isalnum() or c in "-_" else "_" for c in listing.root.name)[:40]
    return image_cache_dir() / f"{slug}-{root_id}" / prep.key()


@dataclass
class _Previous:
    """The last complete cache for this source and preprocessing (empty when none)."""

    rows: list[RowInfo]
    skips: dict[StatKey, str]
    images: np.ndarray | None

    def by_stat(self) -> dict[StatKey, int]:
        return {row.stat_key(): i for i, row in enumerate(self.rows)}


def build_file_cache(
    listing: FileListing,
    prep: Preprocess,
    progress: Progress = lambda *_: None,
    should_stop: Callable[[], bool] = lambda: False,
    workers: int | None = None,
    processes: bool | None = None,
) -> CachedImages:
    """Bring the cache for ``listing`` up to date and open it; decode only what changed.

    ``workers`` defaults to every core; ``processes`` (None: decide by the amount of work)
    chooses worker processes over threads.
    """
    started = time.perf_counter()
    folder = cache_dir_for(listing, prep)
    with build_lock(folder, should_stop, progress):
        cached = _up_to_date(folder, listing, prep, progress, should_stop, workers, processes)
    cached.build_s = time.perf_counter() - started
    return cached


def _up_to_date(
    folder: Path,
    listing: FileListing,
    prep: Preprocess,
    progress: Progress,
    should_stop: Callable[[], bool],
    workers: int | None,
    processes: bool | None,
) -> CachedImages:
    previous = _load_previous(folder, prep)
    old_by_stat = previous.by_stat()

    plan: list[tuple[FileEntry, StatKey]] = []
    skipped: list[Skip] = list(listing.skipped)
    for i, entry in enumerate(listing.entries):
        if i % 4096 == 0:
            if should_stop():
                raise Cancelled()
            progress("Checking files", i, len(listing.entries))
        try:
            st = entry.path.stat()
        except OSError as exc:
            skipped.append(Skip(entry.shown, f"could not read file: {exc.strerror or exc}"))
            continue
        plan.append((entry, (entry.shown, st.st_size, st.st_mtime_ns)))
    keys = [key for _, key in plan]

    unchanged = (
        previous.images is not None
        and all(key in old_by_stat or key in previous.skips for key in keys)
        and [old_by_stat[k] for k in keys if k in old_by_stat] == list(range(len(previous.rows)))
    )
    if unchanged:  # nothing new, nothing gone: labels may have been renamed, that is all
        rows = [
            _relabel(previous.rows[old_by_stat[k]], e.label) for e, k in plan if k in old_by_stat
        ]
        skips = [(k, previous.skips[k]) for k in keys if k not in old_by_stat]
        _write_manifest(folder, prep, rows, skips)
        assert previous.images is not None
        return CachedImages(
            images=previous.images,
            rows=rows,
            skipped=skipped + [Skip(k[0], reason) for k, reason in skips],
            path=folder,
            reused=len(rows),
        )

    try:
        decoded, rows, skips = _build(
            folder, prep, plan, previous, progress, should_stop, workers, processes
        )
    except OSError as exc:  # disk full, no permission: what is journaled so far is kept
        raise DataError(
            f"The image cache could not be written to {folder} ({exc.strerror or exc}).",
            hint="Free some disk space or point $CNN_LAB_CACHE at a larger disk; the import "
            "resumes where it stopped.",
        ) from None
    return CachedImages(
        images=np.load(folder / "images.npy", mmap_mode="r"),
        rows=rows,
        skipped=skipped + [Skip(k[0], reason) for k, reason in skips],
        path=folder,
        decoded=decoded,
        reused=len(rows) - decoded,
    )


def _build(
    folder: Path,
    prep: Preprocess,
    plan: list[tuple[FileEntry, StatKey]],
    previous: _Previous,
    progress: Progress,
    should_stop: Callable[[], bool],
    workers: int | None,
    processes: bool | None,
) -> tuple[int, list[RowInfo], list[tuple[StatKey, str]]]:
    """Build the cache (or finish an earlier build) and publish it; return the number of files
    decoded, the rows and the skipped files."""
    build = PartialBuild.open(folder, prep, [key for _, key in plan])
    try:
        decoded = _fill(build, plan, previous, progress, should_stop, workers, processes)
    finally:
        build.close()
    rows, skips, keep = [], [], []
    for slot, (entry, key) in enumerate(plan):
        done = build.done[slot]
        if done.row is None:
            skips.append((key, done.reason))
        else:
            rows.append(_relabel(done.row, entry.label))
            keep.append(slot)
    build.finish(keep, folder / "images.npy")
    _write_manifest(folder, prep, rows, skips)
    remove_builds(folder)
    return decoded, rows, skips


def _fill(
    build: PartialBuild,
    plan: list[tuple[FileEntry, StatKey]],
    previous: _Previous,
    progress: Progress,
    should_stop: Callable[[], bool],
    workers: int | None,
    processes: bool | None,
) -> int:
    """Fill every slot not yet done: copy what an earlier cache or build holds, decode the
    rest. Returns the number of files decoded."""
    old_by_stat = previous.by_stat()
    earlier = EarlierBuilds.find(build.folder.parent, build.prep, build.folder)
    jobs: list[DecodeJob] = []
    for slot, (entry, key) in enumerate(plan):
        if slot in build.done:
            continue
        if slot % 4096 == 0 and should_stop():
            build.flush()
            raise Cancelled()
        if key in old_by_stat:
            assert previous.images is not None
            build.write(slot, previous.images[old_by_stat[key]])
            build.record(slot, key, previous.rows[old_by_stat[key]])
        elif key in previous.skips or key in earlier.skips:
            build.record(slot, key, None, previous.skips.get(key) or earlier.skips[key])
        elif key in earlier.rows:
            images, row_index, row = earlier.rows[key]
            build.write(slot, images[row_index])
            build.record(slot, key, row)
        else:
            jobs.append(DecodeJob(slot, str(entry.path), key[0], entry.label, key[1], key[2]))
    build.flush()
    if not jobs:
        return 0

    setup = WorkerSetup(
        build.prep,
        str(build.images_path),
        build.offset,
        {row.content: i for i, row in enumerate(previous.rows)},
    )
    decoded, done, keys = 0, 0, {slot: key for slot, (_, key) in enumerate(plan)}
    progress("Decoding images", 0, len(jobs))
    with _DecodePool(setup, len(jobs), workers, processes) as pool:
        for outcomes in pool.run(jobs, should_stop):
            for outcome in outcomes:
                key = keys[outcome.slot]
                if isinstance(outcome, Decoded):
                    build.record(outcome.slot, key, outcome.row)
                    decoded += 1
                elif isinstance(outcome, SameContent):
                    assert previous.images is not None
                    old = previous.rows[outcome.previous]
                    build.write(outcome.slot, previous.images[outcome.previous])
                    fields = {**old.__dict__, "shown": outcome.row.shown}
                    fields.update(file_size=key[1], mtime_ns=key[2])
                    build.record(outcome.slot, key, RowInfo(**fields))
                elif isinstance(outcome, Refused):
                    build.record(outcome.slot, key, None, outcome.skip.reason)
            build.flush()
            done += len(outcomes)
            progress("Decoding images", done, len(jobs))
    return decoded


class _DecodePool:
    """Decode workers, processes or threads, fed tasks of FILES_PER_TASK files."""

    def __init__(
        self, setup: WorkerSetup, files: int, workers: int | None, processes: bool | None
    ) -> None:
        self.workers = max(1, workers or _cores())
        if processes is None and os.environ.get(DECODE_ENV) in ("threads", "processes"):
            processes = os.environ[DECODE_ENV] == "processes"
        if processes is None:
            processes = self.workers > 1 and files >= PROCESS_MIN_FILES
        self.processes = processes and not multiprocessing.current_process().daemon
        self.setup = setup
        self.writer: SlotWriter | None = None

    def __enter__(self) -> _DecodePool:
        self.pool: Executor
        self.task: Callable[[list[DecodeJob]], list[Outcome]]
        if self.processes:
            # forkserver: workers forked from a clean process, never a copy of a window's or a
            # training job's threads (fork would copy them mid-lock); spawn where it is missing.
            # A frozen build (packaging/entry.py) takes spawn, which freeze_support serves.
            methods = multiprocessing.get_all_start_methods()
            forkserver = "forkserver" in methods and not getattr(sys, "frozen", False)
            context = multiprocessing.get_context("forkserver" if forkserver else "spawn")
            self.pool = ProcessPoolExecutor(
                self.workers, mp_context=context, initializer=start_worker, initargs=(self.setup,)
            )
            self.task = run_in_worker
        else:
            self.writer = SlotWriter(self.setup)
            self.pool = ThreadPoolExecutor(self.workers)
            self.task = self.writer.run
        return self

    def __exit__(self, *exc: Any) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        if self.writer is not None:
            self.writer.close()

    def run(
        self, jobs: list[DecodeJob], should_stop: Callable[[], bool]
    ) -> Iterator[list[Outcome]]:
        """Yield each task's outcomes as it completes (in any order: slots say where each
        belongs), with a bounded number of tasks in flight so memory stays flat."""
        limit = TASKS_IN_FLIGHT_PER_WORKER * self.workers
        pending: dict[Future[list[Outcome]], list[DecodeJob]] = {}
        starts = iter(range(0, len(jobs), FILES_PER_TASK))
        while True:
            if should_stop():
                raise Cancelled()
            for start in starts:
                chunk = jobs[start : start + FILES_PER_TASK]
                pending[self.pool.submit(self.task, chunk)] = chunk
                if len(pending) >= limit:
                    break
            if not pending:
                return
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                chunk = pending.pop(future)
                try:
                    outcomes = future.result()
                except BrokenProcessPool:
                    names = ", ".join(job.shown for job in chunk)
                    raise DataError(
                        f"A decoding process died while reading one of: {names}.",
                        hint="One of these files may crash the image decoder: move it out of "
                        "the folder and import again (what was decoded is kept).",
                    ) from None
                yield outcomes


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _relabel(row: RowInfo, label: str) -> RowInfo:
    if row.label == label:
        return row
    return RowInfo(**{**row.__dict__, "label": label})


def _write_manifest(
    folder: Path, prep: Preprocess, rows: list[RowInfo], skips: list[tuple[StatKey, str]]
) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    payload = {
        "version": MANIFEST_VERSION,
        "preprocess": prep.__dict__,
        "rows": [row.__dict__ for row in rows],
        "skipped": [
            {"shown": shown, "size": size, "mtime_ns": mtime, "reason": reason}
            for (shown, size, mtime), reason in skips
        ],
    }
    tmp = folder / "manifest.json.partial"
    tmp.write_text(json.dumps(payload))
    os.replace(tmp, folder / "manifest.json")


def _load_previous(folder: Path, prep: Preprocess) -> _Previous:
    """The last cache for this source, or nothing when it is missing, old or damaged."""
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
        if manifest.get("version") != MANIFEST_VERSION or manifest["preprocess"] != prep.__dict__:
            return _Previous([], {}, None)
        rows = [RowInfo(**r) for r in manifest["rows"]]
        images = np.load(folder / "images.npy", mmap_mode="r")
        expected = (len(rows), prep.size, prep.size, prep.channels)
        if images.shape != expected or images.dtype != np.uint8:
            return _Previous([], {}, None)
        skips = {
            (s["shown"], s["size"], s["mtime_ns"]): s["reason"] for s in manifest.get("skipped", [])
        }
        return _Previous(rows, skips, images)
    except (OSError, ValueError, KeyError, TypeError):
        return _Previous([], {}, None)
