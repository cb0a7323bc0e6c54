"""From a DatasetSpec to images ready to train on, and a report of what was wrong on the way.

``prepare_dataset`` is the one entry point shared by the training loop, ``cnn-lab data``
and the Data panel: list the source, apply the quick-trial limit, decode into the cache (or
take arrays as they are), find duplicates, count classes, and run the checks.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cnn_lab.engine.data.auto_preprocess import (
    AUTO_MAX,
    Choice,
    WeightsInput,
    choose_for_arrays,
    choose_for_files,
)
from cnn_lab.engine.data.cache import Preprocess, RowInfo, build_file_cache
from cnn_lab.engine.data.listing import ArrayListing, FileListing, Listing, Skip
from cnn_lab.engine.data.report import (
    CacheInfo,
    Facts,
    ImportReport,
    SizeStats,
    SkippedFile,
    run_checks,
)
from cnn_lab.engine.data.sources import list_source
from cnn_lab.engine.data.splits import Splits, k_folds, limit_indices, stratified_split
from cnn_lab.engine.errors import Cancelled, DataError
from cnn_lab.engine.specs import DatasetSpec

DEFAULT_FILE_SIZE = AUTO_MAX
"""The largest side "auto" picks for image files (auto_preprocess.py chooses from the data)."""

Progress = Callable[[str, int, int], None]


@dataclass
class PreparedDataset:
    """Decoded images (uint8 N×H×W×C, possibly memory-mapped) with labels and findings."""

    images: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]
    groups: np.ndarray
    """Images with the same group id are copies; a split keeps each group together."""
    shown: list[str]
    report: ImportReport

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def split(self, spec: DatasetSpec) -> Splits:
        """The spec's train/validation/test indices (sorted), copies kept on one side.

        With ``folds``, the test share is held out first (the same images for every fold),
        and the rest is dealt into stratified folds, of which ``fold`` validates: the folds'
        validation sets are disjoint and together make up everything not held out.
        """
        if spec.folds is None:
            return stratified_split(
                self.labels, self.groups, spec.val_fraction, spec.test_fraction, spec.split_seed
            )
        rest = np.arange(len(self.labels), dtype=np.int64)
        test = np.zeros(0, dtype=np.int64)
        if spec.test_fraction > 0:
            outer = stratified_split(
                self.labels, self.groups, spec.test_fraction, 0.0, spec.split_seed
            )
            rest, test = outer.train, outer.val
        train, val = k_folds(self.labels[rest], self.groups[rest], spec.folds, spec.split_seed)[
            spec.fold
        ]
        return Splits(rest[train], rest[val], test)

    def raise_blockers(self) -> None:
        """Refuse to train on data that cannot work, with every reason in one message."""
        blockers = self.report.blockers
        if blockers:
            raise DataError(
                "The dataset cannot be trained on: " + " ".join(b.message for b in blockers),
                hint=" ".join(b.hint for b in blockers if b.hint),
            )


def prepare_dataset(
    spec: DatasetSpec,
    progress: Progress = lambda *_: None,
    should_stop: Callable[[], bool] = lambda: False,
    weights: WeightsInput | None = None,
) -> PreparedDataset:
    """``weights``: what the network's published weights expect, when it starts from some
    (engine/models/published_weights.py ``expected_preprocessing``); auto then picks their size."""
    listing = list_source(spec.source, progress, should_stop)
    if spec.limit is not None:
        listing = _limited(listing, spec.limit, spec.split_seed)
    if isinstance(listing, FileListing):
        choice = choose_for_files(listing, spec, weights)  # headers only: the cache is keyed by it
        prep = choice.prep
        cached = build_file_cache(listing, prep, progress, should_stop)
        images, rows, skipped = cached.images, cached.rows, cached.skipped
        cache = CacheInfo(
            path=str(cached.path or ""),
            decoded=cached.decoded,
            reused=cached.reused,
            build_s=round(cached.build_s, 3),
            bytes=int(images.nbytes),
        )
        classes = listing.classes
    else:
        choice = _array_preprocess(listing, spec, weights)
        prep = choice.prep
        images, rows, seconds = _prepare_arrays(listing, prep, progress, should_stop)
        skipped = listing.skipped
        cache = CacheInfo(decoded=len(rows), build_s=round(seconds, 3), bytes=int(images.nbytes))
        classes = listing.classes
    if should_stop():
        raise Cancelled()
    progress("Finding duplicates", 0, 0)
    return _assemble(
        spec, listing, prep, images, rows, skipped, classes, cache, reason=choice.reason
    )


def _limited(listing: Listing, limit: int, seed: int) -> Listing:
    """Apply the quick-trial limit before decoding, so a trial on a big folder is quick."""
    if isinstance(listing, FileListing):
        lookup = {name: i for i, name in enumerate(listing.classes)}
        labels = np.array([lookup[e.label] for e in listing.entries], dtype=np.int64)
        if limit >= len(labels):
            return listing
        keep = limit_indices(labels, limit, seed)
        listing.entries = [listing.entries[i] for i in keep]
        return listing
    if limit >= len(listing.labels):
        return listing
    keep = limit_indices(listing.labels, limit, seed)
    listing.images, listing.labels = listing.images[keep], listing.labels[keep]
    return listing


def _array_preprocess(
    listing: ArrayListing, spec: DatasetSpec, weights: WeightsInput | None = None
) -> Choice:
    """Arrays keep their own size when square; the reason says so (auto_preprocess.py)."""
    return choose_for_arrays(listing, spec, weights)


def _prepare_arrays(
    listing: ArrayListing,
    prep: Preprocess,
    progress: Progress,
    should_stop: Callable[[], bool],
) -> tuple[np.ndarray, list[RowInfo], float]:
    """Arrays are already decoded: resize only if asked, and fingerprint every image."""
    from PIL import Image

    from cnn_lab.engine.data.phash import dhash
    from cnn_lab.engine.data.resize import resize_image

    started = time.perf_counter()
    source = listing.images
    n, height, width, channels = source.shape
    same = (height, width, channels) == (prep.size, prep.size, prep.channels)

    def one(i: int) -> tuple[np.ndarray, RowInfo]:
        pixels = source[i]
        pil = Image.fromarray(pixels[..., 0] if channels == 1 else pixels)
        out = (
            pixels if same else resize_image(pil, prep.size, prep.size, prep.resize, prep.channels)
        )
        row = RowInfo(
            shown=f"{listing.name}#{i}",
            label=listing.classes[int(listing.labels[i])],
            content=hashlib.blake2b(pixels.tobytes(), digest_size=16).hexdigest(),
            dhash=dhash(pil),
            width=width,
            height=height,
            mode="L" if channels == 1 else "RGB",
            format="array",
        )
        return out, row

    results: list[tuple[np.ndarray, RowInfo]] = []
    with ThreadPoolExecutor() as pool:
        for start in range(0, n, 1024):  # in chunks, so a cancel is heard within one chunk
            if should_stop():
                raise Cancelled()
            results.extend(pool.map(one, range(start, min(start + 1024, n))))
            progress("Fingerprinting images", len(results), n)
    images = source if same else np.stack([r[0] for r in results]) if results else source
    return np.ascontiguousarray(images), [r[1] for r in results], time.perf_counter() - started


def _assemble(
    spec: DatasetSpec,
    listing: Listing,
    prep: Preprocess,
    images: np.ndarray,
    rows: list[RowInfo],
    skipped: list[Skip],
    classes: tuple[str, ...],
    cache: CacheInfo,
    reason: str = "",
) -> PreparedDataset:
    from cnn_lab.engine.data.duplicates import find_duplicates

    counts = {name: 0 for name in classes}
    for row in rows:
        counts[row.label] += 1
    present = tuple(name for name in classes if counts[name] > 0)
    index = {name: i for i, name in enumerate(present)}
    labels = np.array([index[row.label] for row in rows], dtype=np.int64)
    shown = [row.shown for row in rows]

    found = find_duplicates(
        images, [r.content for r in rows], [r.dhash for r in rows], [r.label for r in rows]
    )
    exact, near, conflicts, groups = found.exact, found.near, found.conflicts, found.groups

    facts = Facts(
        classes=counts,
        exact_duplicates=[[shown[i] for i in g] for g in exact],
        near_duplicates=[[shown[i] for i in g] for g in near],
        conflicting_labels=[[shown[i] for i in g] for g in conflicts],
        skipped=len(skipped),
    )
    report = ImportReport(
        source=spec.source,
        kind=listing.kind,
        images=len(rows),
        classes=counts,
        image_size=prep.size,
        channels=prep.channels,
        resize=prep.resize,
        preprocess_reason=reason,
        sizes=_size_stats(rows),
        modes=_count(r.mode for r in rows),
        formats=_count(r.format for r in rows),
        skipped=[SkippedFile(path=s.path, reason=s.reason) for s in skipped],
        warnings=run_checks(facts),
        exact_duplicates=facts.exact_duplicates,
        near_duplicates=facts.near_duplicates,
        cache=cache,
        dataset_key=_dataset_key(prep, rows),
    )
    if cache.path:
        (Path(cache.path) / "report.json").write_text(report.model_dump_json(indent=1))
    return PreparedDataset(images, labels, present, groups, shown, report)


def _size_stats(rows: list[RowInfo]) -> SizeStats:
    if not rows:
        return SizeStats()
    widths = np.array([r.width for r in rows])
    heights = np.array([r.height for r in rows])
    return SizeStats(
        min_width=int(widths.min()),
        max_width=int(widths.max()),
        min_height=int(heights.min()),
        max_height=int(heights.max()),
        median_width=float(np.median(widths)),
        median_height=float(np.median(heights)),
    )


def _count(values: object) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:  # type: ignore[attr-defined]
        out[v] = out.get(v, 0) + 1
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def _dataset_key(prep: Preprocess, rows: list[RowInfo]) -> str:
    """Identifies exactly these images with these labels and this preprocessing."""
    digest = hashlib.blake2b(digest_size=10)
    digest.update(json.dumps(prep.__dict__, sort_keys=True).encode())
    for row in rows:
        digest.update(f"{row.content}:{row.label}\n".encode())
    return digest.hexdigest()
