"""What one row of the image cache is, and how a file becomes one (the decode workers' side).

This module is what a decode worker process imports, so it stays light: numpy and Pillow,
never torch. A worker reads a file, fingerprints it, decodes it at the size the cache needs,
writes the pixels straight into their slot of the cache file being built (``os.pwrite`` on
its own descriptor: no pixels cross the process boundary) and sends back only the row's
small record, so the parent's memory holds metadata, never images.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cnn_lab.engine.data.listing import Skip


@dataclass(frozen=True)
class Preprocess:
    """What a cached image is: its square side, channel count and resize policy."""

    size: int
    channels: int
    resize: str

    def key(self) -> str:
        return f"{self.size}px-{self.channels}ch-{self.resize}"

    @property
    def row_bytes(self) -> int:
        return self.size * self.size * self.channels


@dataclass
class RowInfo:
    """One cached image: where it came from, what it was, and its fingerprints."""

    shown: str
    label: str
    content: str
    dhash: int
    width: int
    height: int
    mode: str
    format: str
    file_size: int = -1
    mtime_ns: int = -1

    def stat_key(self) -> tuple[str, int, int]:
        return (self.shown, self.file_size, self.mtime_ns)


StatKey = tuple[str, int, int]
"""A file as ``stat`` sees it: (shown path, size, mtime in ns). Unchanged key, unchanged file."""


@dataclass(frozen=True)
class DecodeJob:
    """One file to decode into ``slot`` of the cache being built."""

    slot: int
    path: str
    shown: str
    label: str
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class Decoded:
    """A decoded file: its row; the pixels are already in its slot."""

    slot: int
    row: RowInfo


@dataclass(frozen=True)
class SameContent:
    """A file whose bytes the previous cache already holds (renamed or touched): copy row
    ``previous`` instead of decoding."""

    slot: int
    row: RowInfo
    previous: int


@dataclass(frozen=True)
class Refused:
    slot: int
    skip: Skip


Outcome = Decoded | SameContent | Refused


@dataclass(frozen=True)
class WorkerSetup:
    """What every worker needs, sent once when it starts rather than with every file."""

    prep: Preprocess
    target: str
    """The cache file being built: a .npy whose rows start at ``offset``."""
    offset: int
    known_content: dict[str, int]
    """Content hash -> row of the previous cache, for files that only moved."""


class SlotWriter:
    """Decodes jobs and writes their pixels into the cache file; one per worker."""

    def __init__(self, setup: WorkerSetup) -> None:
        self.setup = setup
        self.fd = os.open(setup.target, os.O_WRONLY)

    def close(self) -> None:
        os.close(self.fd)

    def run(self, jobs: list[DecodeJob]) -> list[Outcome]:
        return [self.one(job) for job in jobs]

    def one(self, job: DecodeJob) -> Outcome:
        from cnn_lab.engine.data.decode import ImageSkipped, decode_image
        from cnn_lab.engine.data.phash import dhash
        from cnn_lab.engine.data.resize import resize_image

        prep = self.setup.prep
        try:
            data = Path(job.path).read_bytes()
        except OSError as exc:
            return Refused(job.slot, Skip(job.shown, f"could not read file: {exc.strerror or exc}"))
        content = hashlib.blake2b(data, digest_size=16).hexdigest()
        stat = {"file_size": job.size, "mtime_ns": job.mtime_ns}
        previous = self.setup.known_content.get(content)
        if previous is not None:
            row = RowInfo(job.shown, job.label, content, 0, 0, 0, "", "", **stat)
            return SameContent(job.slot, row, previous)
        try:
            # The target lets a big JPEG decode reduced (DCT scaling); the row still records
            # the file's own width and height.
            decoded = decode_image(data, name=job.shown, target=(prep.size, prep.size))
            pixels = resize_image(
                decoded.image, prep.size, prep.size, prep.resize, prep.channels, decoded.extent
            )
        except ImageSkipped as exc:
            return Refused(job.slot, Skip(job.shown, exc.reason))
        del data
        write_row(self.fd, self.setup.offset, prep.row_bytes, job.slot, pixels)
        row = RowInfo(
            shown=job.shown,
            label=job.label,
            content=content,
            dhash=dhash(decoded.image),
            width=decoded.width,
            height=decoded.height,
            mode=decoded.mode,
            format=decoded.format,
            **stat,
        )
        return Decoded(job.slot, row)


def write_row(fd: int, offset: int, row_bytes: int, slot: int, pixels: np.ndarray) -> None:
    """Write one row's pixels at its place in an open .npy file (all of it, or raise)."""
    view = memoryview(np.ascontiguousarray(pixels, dtype=np.uint8)).cast("B")
    if len(view) != row_bytes:
        raise ValueError(f"a cache row is {row_bytes} bytes, got {len(view)}")
    at = offset + slot * row_bytes
    while view:
        written = os.pwrite(fd, view, at)
        view, at = view[written:], at + written


# A process worker keeps its SlotWriter here between tasks (set by ``start_worker``).
_WORKER: SlotWriter | None = None


def start_worker(setup: WorkerSetup) -> None:
    """ProcessPoolExecutor initializer: open the cache file once for this worker."""
    global _WORKER
    _WORKER = SlotWriter(setup)


def run_in_worker(jobs: list[DecodeJob]) -> list[Outcome]:
    """ProcessPoolExecutor task: decode ``jobs`` with this worker's SlotWriter."""
    assert _WORKER is not None, "start_worker did not run in this process"
    return _WORKER.run(jobs)
