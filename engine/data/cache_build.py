"""A cache being built: a slot per planned file, and a journal of the slots that are done.

Why a journal: a 100,000-photo import takes minutes, and a person cancels it, closes the
window, or the machine kills it. The next import must pick up where it stopped, decoding only
the files not yet cached. So rows are written straight into their slot of
``building-<plan>/images.npy`` (pixels first), and only then is the slot's record appended to
``journal.jsonl`` beside it. A line in the journal is a promise that the slot's pixels are in
the file; a line cut short by a kill is ignored and its file decoded again.

The folder's name is a digest of the plan (every file's stat key, in order, and the
preprocessing): the same folder listed again finds its own build and continues in place. A
build for another plan (files added between the kill and the retry) is still useful: its
journal's rows are found by stat key and copied, never decoded twice.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cnn_lab.engine.data.cache_rows import Preprocess, RowInfo, StatKey, write_row
from cnn_lab.engine.data.listing import Skip
from cnn_lab.engine.errors import Cancelled

BUILD_PREFIX = "building-"


def plan_digest(prep: Preprocess, keys: list[StatKey]) -> str:
    digest = hashlib.blake2b(digest_size=8)
    digest.update(json.dumps(prep.__dict__, sort_keys=True).encode())
    for shown, size, mtime in keys:
        digest.update(f"{shown}\0{size}\0{mtime}\n".encode())
    return digest.hexdigest()


@dataclass
class JournalEntry:
    slot: int
    key: StatKey
    row: RowInfo | None = None
    reason: str = ""


@dataclass
class PartialBuild:
    """``images.npy`` (one slot per planned file) and the journal of finished slots."""

    folder: Path
    prep: Preprocess
    slots: int
    offset: int
    done: dict[int, JournalEntry] = field(default_factory=dict)
    _journal: io.TextIOWrapper | None = None
    _fd: int = -1

    @property
    def images_path(self) -> Path:
        return self.folder / "images.npy"

    @classmethod
    def open(cls, cache_folder: Path, prep: Preprocess, keys: list[StatKey]) -> PartialBuild:
        """This plan's build: continued if an earlier one was cut short, else a new one."""
        folder = cache_folder / (BUILD_PREFIX + plan_digest(prep, keys))
        images = folder / "images.npy"
        shape = (len(keys), prep.size, prep.size, prep.channels)
        try:
            with open(images, "rb") as fp:
                if np.lib.format.read_magic(fp) != (1, 0):
                    raise ValueError("not a build file of ours")
                header = np.lib.format.read_array_header_1_0(fp)
                offset = fp.tell()
            resumable = header == (shape, False, np.dtype(np.uint8)) and (
                images.stat().st_size == offset + len(keys) * prep.row_bytes
            )
        except (OSError, ValueError):
            resumable, offset = False, 0
        if not resumable:
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            header = _npy_header(shape)
            with open(images, "wb") as fp:  # sparse: the slots take disk as they are written
                fp.write(header)
                fp.truncate(len(header) + len(keys) * prep.row_bytes)
            offset = len(header)
        build = cls(folder, prep, len(keys), offset)
        if resumable:
            build.done = {
                e.slot: e
                for e in read_journal(folder)
                if 0 <= e.slot < len(keys) and keys[e.slot] == e.key
            }
        build._fd = os.open(images, os.O_RDWR)
        build._journal = open(folder / "journal.jsonl", "a", encoding="utf-8")  # noqa: SIM115
        return build

    def record(self, slot: int, key: StatKey, row: RowInfo | None, reason: str = "") -> None:
        """Journal ``slot`` as done; its pixels (for a row) must already be written."""
        entry = JournalEntry(slot, key, row, reason)
        self.done[slot] = entry
        line = {"slot": slot, "key": list(key)}
        line.update({"row": row.__dict__} if row is not None else {"reason": reason})
        assert self._journal is not None
        self._journal.write(json.dumps(line) + "\n")

    def flush(self) -> None:
        """Hand the journal to the OS: a killed process loses nothing written before this."""
        if self._journal is not None:
            self._journal.flush()

    def write(self, slot: int, pixels: np.ndarray) -> None:
        write_row(self._fd, self.offset, self.prep.row_bytes, slot, pixels)

    def close(self) -> None:
        if self._journal is not None:
            self._journal.close()
            self._journal = None
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def finish(self, keep: list[int], destination: Path) -> None:
        """Move the rows of ``keep`` (ascending slots) to the front and publish the file.

        Skipped files leave holes; the rows after each hole move down in place, a chunk at a
        time, so finishing costs no second copy of the cache and memory stays flat.
        """
        self.close()
        n = len(keep)
        if n != self.slots:
            row = self.prep.row_bytes
            with open(self.images_path, "r+b") as fp:
                header = _npy_header((n, self.prep.size, self.prep.size, self.prep.channels))
                if len(header) != self.offset:  # another header size: rewrite the whole file
                    _rewrite(fp, self.offset, row, keep, header, self.images_path)
                else:
                    for to, slot in enumerate(keep):
                        if to != slot:
                            fp.seek(self.offset + slot * row)
                            chunk = fp.read(row)
                            fp.seek(self.offset + to * row)
                            fp.write(chunk)
                    fp.seek(0)
                    fp.write(header)
                    fp.truncate(self.offset + n * row)
        os.replace(self.images_path, destination)


def read_journal(folder: Path) -> Iterator[JournalEntry]:
    """The journal's complete lines; a line cut short by a kill (the last one) is skipped."""
    try:
        text = (folder / "journal.jsonl").read_text(encoding="utf-8")
    except OSError:
        return
    for line in text.splitlines():
        try:
            item: dict[str, Any] = json.loads(line)
            key = (str(item["key"][0]), int(item["key"][1]), int(item["key"][2]))
            row = RowInfo(**item["row"]) if "row" in item else None
            yield JournalEntry(int(item["slot"]), key, row, str(item.get("reason", "")))
        except (ValueError, KeyError, TypeError, IndexError):
            continue


@dataclass
class EarlierBuilds:
    """Rows journaled by builds for other plans: found by stat key, copied, not decoded."""

    rows: dict[StatKey, tuple[np.ndarray, int, RowInfo]] = field(default_factory=dict)
    skips: dict[StatKey, str] = field(default_factory=dict)

    @classmethod
    def find(cls, cache_folder: Path, prep: Preprocess, current: Path) -> EarlierBuilds:
        found = cls()
        for folder in sorted(cache_folder.glob(BUILD_PREFIX + "*")):
            if folder == current:
                continue
            try:
                images = np.load(folder / "images.npy", mmap_mode="r")
            except (OSError, ValueError):
                continue
            if images.shape[1:] != (prep.size, prep.size, prep.channels):
                continue
            for entry in read_journal(folder):
                if entry.row is None:
                    found.skips[entry.key] = entry.reason
                elif 0 <= entry.slot < images.shape[0]:
                    found.rows[entry.key] = (images, entry.slot, entry.row)
        return found


@contextmanager
def build_lock(
    cache_folder: Path, should_stop: Callable[[], bool], progress: Callable[[str, int, int], None]
) -> Iterator[None]:
    """Hold the cache folder while it is brought up to date: one import of a folder at a time.

    The Data panel and a training job may prepare the same folder at once (Import, then Train
    straight away). Without this they would share one build and the second to finish would
    find the first had already published it. The second waits here instead (Cancel still
    works), then finds the cache up to date. ``flock`` is released by the OS if the holder is
    killed, so a dead import never blocks the next one. Where there is no ``fcntl`` (Windows)
    imports of one folder are not serialised.
    """
    try:
        import fcntl
    except ImportError:
        yield
        return
    cache_folder.mkdir(parents=True, exist_ok=True)
    with open(cache_folder / ".lock", "a+b") as handle:
        waited = False
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if should_stop():
                    raise Cancelled() from None
                if not waited:
                    progress("Waiting for another import of this folder", 0, 0)
                    waited = True
                time.sleep(0.1)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def remove_builds(cache_folder: Path) -> None:
    """Drop every build folder once the cache they were building is published."""
    for folder in cache_folder.glob(BUILD_PREFIX + "*"):
        shutil.rmtree(folder, ignore_errors=True)


def skip_of(entry: JournalEntry) -> Skip:
    return Skip(entry.key[0], entry.reason)


def _npy_header(shape: tuple[int, ...]) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buffer, {"descr": "|u1", "fortran_order": False, "shape": shape}
    )
    return buffer.getvalue()


def _rewrite(
    fp: io.BufferedRandom, offset: int, row: int, keep: list[int], header: bytes, path: Path
) -> None:
    """Copy the kept rows into a new file with ``header`` (the rare header-size change)."""
    tmp = path.with_suffix(".compact")
    with open(tmp, "wb") as out:
        out.write(header)
        for slot in keep:
            fp.seek(offset + slot * row)
            out.write(fp.read(row))
    os.replace(tmp, path)
