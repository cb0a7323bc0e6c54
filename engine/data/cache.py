"""Decode and resize every image once into a uint8 cache on disk, memory-mapped.

A training run reads the cache, not the image files: one N×H×W×C uint8 ``.npy`` file per
(source, preprocessing) that ``np.load(mmap_mode="r")`` opens instantly whatever its size.
A manifest beside it records, per row, the file's path, size, mtime and content hash, so a
second prepare of an unchanged folder reads nothing but ``stat``, and after a change only the
new or edited files are decoded; the rest is copied from the previous cache.

Decoding runs on a thread pool: Pillow releases the GIL while it decodes and resizes, so
threads use every core without the start-up and pickling cost of processes.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cnn_lab.engine.data.listing import FileEntry, FileListing, Skip
from cnn_lab.engine.data.paths import image_cache_dir
from cnn_lab.engine.errors import Cancelled, DataError

MANIFEST_VERSION = 1
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Preprocess:
    """What a cached image is: its square side, channel count and resize policy."""

    size: int
    channels: int
    resize: str

    def key(self) -> str:
        return f"{self.size}px-{self.channels}ch-{self.resize}"


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


def build_file_cache(
    listing: FileListing,
    prep: Preprocess,
    progress: Progress = lambda *_: None,
    should_stop: Callable[[], bool] = lambda: False,
    workers: int | None = None,
) -> CachedImages:
    """Bring the cache for ``listing`` up to date and open it; decode only what changed."""
    started = time.perf_counter()
    folder = cache_dir_for(listing, prep)
    old_rows, old_skips, old_images = _load_previous(folder, prep)
    by_stat = {row.stat_key(): i for i, row in enumerate(old_rows)}
    skip_by_stat = {(s["shown"], s["size"], s["mtime_ns"]): s["reason"] for s in old_skips}

    plan: list[tuple[FileEntry, int, int]] = []  # entry, size, mtime_ns
    skipped: list[Skip] = list(listing.skipped)
    for entry in listing.entries:
        try:
            st = entry.path.stat()
        except OSError as exc:
            skipped.append(Skip(entry.shown, f"could not read file: {exc.strerror or exc}"))
            continue
        plan.append((entry, st.st_size, st.st_mtime_ns))

    results: list[RowInfo | Skip | tuple[RowInfo, int] | tuple[RowInfo, np.ndarray]] = []
    to_decode: list[int] = []
    for entry, size, mtime in plan:
        key = (entry.shown, size, mtime)
        if key in by_stat:
            old = old_rows[by_stat[key]]
            results.append((_relabel(old, entry.label), by_stat[key]))
        elif key in skip_by_stat:
            results.append(Skip(entry.shown, skip_by_stat[key]))
        else:
            to_decode.append(len(results))
            results.append(Skip(entry.shown, "not decoded"))  # placeholder

    old_by_content = {row.content: i for i, row in enumerate(old_rows)}
    decoded = 0
    if to_decode:
        work = [(plan[i][0], plan[i][1], plan[i][2]) for i in to_decode]
        done = 0
        with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
            for index, outcome in zip(
                to_decode, _decode_all(pool, work, prep, old_rows, old_by_content), strict=True
            ):
                if should_stop():
                    pool.shutdown(cancel_futures=True)
                    raise Cancelled()
                results[index] = outcome
                if isinstance(outcome, tuple) and isinstance(outcome[1], np.ndarray):
                    decoded += 1
                done += 1
                if done % 64 == 0 or done == len(work):
                    progress("Decoding images", done, len(work))

    rows: list[RowInfo] = []
    sources: list[int | np.ndarray] = []
    for outcome in results:
        if isinstance(outcome, Skip):
            skipped.append(outcome)
        else:
            rows.append(outcome[0])
            sources.append(outcome[1])
    kept_skips = [
        {"shown": s.path, "size": size, "mtime_ns": mtime, "reason": s.reason}
        for s, (entry, size, mtime) in _skips_with_stat(results, plan)
    ]

    unchanged = (
        old_images is not None
        and decoded == 0
        and len(sources) == len(old_rows)
        and all(isinstance(s, int) and s == i for i, s in enumerate(sources))
    )
    if unchanged:
        images = old_images
        _write_manifest(folder, prep, rows, kept_skips)  # labels may have been renamed
    else:
        _write_images(folder, prep, sources, old_images, should_stop)
        _write_manifest(folder, prep, rows, kept_skips)
        images = np.load(folder / "images.npy", mmap_mode="r")
    return CachedImages(
        images=images,
        rows=rows,
        skipped=skipped,
        path=folder,
        decoded=decoded,
        reused=len(rows) - decoded,
        build_s=time.perf_counter() - started,
    )


def _skips_with_stat(
    results: list[Any], plan: list[tuple[FileEntry, int, int]]
) -> Iterable[tuple[Skip, tuple[FileEntry, int, int]]]:
    for outcome, planned in zip(results, plan, strict=True):
        if isinstance(outcome, Skip):
            yield outcome, planned


def _relabel(row: RowInfo, label: str) -> RowInfo:
    if row.label == label:
        return row
    return RowInfo(**{**row.__dict__, "label": label})


def _decode_all(
    pool: ThreadPoolExecutor,
    work: list[tuple[FileEntry, int, int]],
    prep: Preprocess,
    old_rows: list[RowInfo],
    old_by_content: dict[str, int],
) -> Iterable[Any]:
    """Decode in parallel, yielding results in order; bounded so memory stays flat."""
    window = 256
    futures = []
    for item in work:
        futures.append(pool.submit(_decode_one, item, prep, old_rows, old_by_content))
        if len(futures) >= window:
            yield futures.pop(0).result()
    for future in futures:
        yield future.result()


def _decode_one(
    item: tuple[FileEntry, int, int],
    prep: Preprocess,
    old_rows: list[RowInfo],
    old_by_content: dict[str, int],
) -> Skip | tuple[RowInfo, int] | tuple[RowInfo, np.ndarray]:
    from cnn_lab.engine.data.decode import ImageSkipped, decode_image
    from cnn_lab.engine.data.phash import dhash
    from cnn_lab.engine.data.resize import resize_image

    entry, size, mtime = item
    try:
        data = entry.path.read_bytes()
    except OSError as exc:
        return Skip(entry.shown, f"could not read file: {exc.strerror or exc}")
    content = hashlib.blake2b(data, digest_size=16).hexdigest()
    if content in old_by_content:  # the same bytes renamed or touched: nothing to decode
        old = old_by_content[content]
        fields = {**old_rows[old].__dict__, "shown": entry.shown, "label": entry.label}
        return RowInfo(**{**fields, "file_size": size, "mtime_ns": mtime}), old
    try:
        # The target size lets a big JPEG decode reduced (DCT scaling); the row still records
        # the file's own width and height.
        decoded = decode_image(data, name=entry.shown, target=(prep.size, prep.size))
    except ImageSkipped as exc:
        return Skip(entry.shown, exc.reason)
    row = RowInfo(
        shown=entry.shown,
        label=entry.label,
        content=content,
        dhash=dhash(decoded.image),
        width=decoded.width,
        height=decoded.height,
        mode=decoded.mode,
        format=decoded.format,
        file_size=size,
        mtime_ns=mtime,
    )
    pixels = resize_image(decoded.image, prep.size, prep.size, prep.resize, prep.channels)
    return row, pixels


def _write_images(
    folder: Path,
    prep: Preprocess,
    sources: list[int | np.ndarray],
    old_images: np.ndarray | None,
    should_stop: Callable[[], bool],
) -> None:
    """Write rows (old row numbers or new pixels) to a new images.npy, atomically."""
    folder.mkdir(parents=True, exist_ok=True)
    shape = (len(sources), prep.size, prep.size, prep.channels)
    tmp = folder / "images.npy.partial"
    try:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=shape)
        for i, src in enumerate(sources):
            if i % 4096 == 0 and should_stop():
                raise Cancelled()
            if isinstance(src, np.ndarray):
                out[i] = src
            else:
                assert old_images is not None
                out[i] = old_images[src]
        out.flush()
        del out
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise DataError(
            f"The image cache could not be written to {folder} ({exc.strerror or exc}).",
            hint="Free some disk space or point $CNN_LAB_CACHE at a larger disk.",
        ) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, folder / "images.npy")


def _write_manifest(
    folder: Path, prep: Preprocess, rows: list[RowInfo], skips: list[dict[str, Any]]
) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    payload = {
        "version": MANIFEST_VERSION,
        "preprocess": prep.__dict__,
        "rows": [row.__dict__ for row in rows],
        "skipped": skips,
    }
    tmp = folder / "manifest.json.partial"
    tmp.write_text(json.dumps(payload))
    os.replace(tmp, folder / "manifest.json")


def _load_previous(
    folder: Path, prep: Preprocess
) -> tuple[list[RowInfo], list[dict[str, Any]], np.ndarray | None]:
    """The last cache for this source, or nothing when it is missing, old or damaged."""
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
        if manifest.get("version") != MANIFEST_VERSION or manifest["preprocess"] != prep.__dict__:
            return [], [], None
        rows = [RowInfo(**r) for r in manifest["rows"]]
        images = np.load(folder / "images.npy", mmap_mode="r")
        expected = (len(rows), prep.size, prep.size, prep.channels)
        if images.shape != expected or images.dtype != np.uint8:
            return [], [], None
        return rows, list(manifest.get("skipped", [])), images
    except (OSError, ValueError, KeyError, TypeError):
        return [], [], None
