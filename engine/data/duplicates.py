"""Which images are copies of each other, and which copies disagree about their label.

Exact copies share a content hash. Near copies (resized, recompressed, re-brightened) share
a dHash within ``NEAR_DUPLICATE_BITS`` bits and are confirmed with pixels. A split must keep
every copy of a picture on one side, or validation scores look better than they are, so each
image gets a group id shared by everything it is a copy of.

Every step is linear in the number of images (dicts and vectorised passes), apart from the
near-duplicate search itself, whose cost ``phash.near_duplicate_groups`` explains.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from cnn_lab.engine.data.phash import component_labels, near_duplicate_groups

NEAR_DUPLICATE_BITS = 6
"""dHash bits two images may differ in and still count as the same picture. A resize plus a
JPEG re-encode moves about 5 bits; distinct photos differ in 10 or more."""
NEAR_DUPLICATE_PIXELS = 12.0
"""A hash match is confirmed only if the prepared images also differ by less than this mean
absolute pixel value (0..255): dHash sees only brightness structure, so the same shape in
another colour would otherwise count as a copy."""

# Pixels are confirmed a chunk of images at a time, about this many bytes of int16 each, so a
# group of 20,000 near-blank images never loads the whole (memory-mapped) cache at once.
_CONFIRM_BYTES = 1 << 25


@dataclass(frozen=True)
class Duplicates:
    """Copies among N images, by index. Groups are ascending and ordered by first index."""

    exact: tuple[tuple[int, ...], ...]
    """Images with the same content (2 or more each)."""
    near: tuple[tuple[int, ...], ...]
    """Near copies confirmed by pixels, except groups lying inside one exact group."""
    conflicts: tuple[tuple[int, ...], ...]
    """The exact groups whose images carry more than one label."""
    groups: np.ndarray
    """One id per image (int64): the smallest index among the images it is linked to by
    exact or near groups, taken transitively; an image with no copy keeps its own index."""


def find_duplicates(
    images: np.ndarray,
    contents: Sequence[Hashable],
    dhashes: Sequence[int],
    labels: Sequence[Hashable],
) -> Duplicates:
    """Exact, near and conflicting copies among ``images`` (uint8 N×H×W×C, may be mapped).

    ``contents`` are content hashes, ``dhashes`` difference hashes and ``labels`` the class
    names, one per image.
    """
    n = len(contents)
    exact = _groups_by(contents)
    # Exact groups are disjoint, so a near group lies inside one exactly when all its members
    # belong to the same exact group: one lookup per member instead of a subset test per pair.
    exact_of = np.full(n, -1, dtype=np.int64)
    for number, group in enumerate(exact):
        exact_of[list(group)] = number
    near = tuple(
        group
        for group in _confirmed(images, near_duplicate_groups(dhashes, NEAR_DUPLICATE_BITS))
        if not _inside_one(exact_of[list(group)])
    )
    conflicts = tuple(g for g in exact if len({labels[i] for i in g}) > 1)
    return Duplicates(exact, near, conflicts, _union_groups(n, exact + near))


def _inside_one(exact_ids: np.ndarray) -> bool:
    return bool(exact_ids[0] >= 0 and (exact_ids == exact_ids[0]).all())


def _groups_by(keys: Iterable[Hashable]) -> tuple[tuple[int, ...], ...]:
    """Indices sharing a key, in order of each key's first index; only groups of 2 or more."""
    seen: dict[Hashable, list[int]] = {}
    for i, key in enumerate(keys):
        seen.setdefault(key, []).append(i)
    return tuple(tuple(g) for g in seen.values() if len(g) > 1)


def _confirmed(images: np.ndarray, groups: list[list[int]]) -> list[tuple[int, ...]]:
    """Keep the members of each hash group that really look like its first member.

    Each member is compared with the first one by mean absolute pixel difference, a chunk of
    members at a time, so a group of thousands costs vectorised passes, not a Python loop.
    """
    out = []
    for group in groups:
        first = np.asarray(images[group[0]]).astype(np.int16)
        rest = np.asarray(group[1:], dtype=np.int64)
        if rest.size == 0:
            continue
        rows = max(1, _CONFIRM_BYTES // (2 * max(1, first.size)))
        close = [
            _mean_difference(images[rest[i : i + rows]], first) < NEAR_DUPLICATE_PIXELS
            for i in range(0, rest.size, rows)
        ]
        kept = rest[np.concatenate(close)].tolist()
        if kept:
            out.append((group[0], *kept))
    return out


def _mean_difference(chunk: np.ndarray, first: np.ndarray) -> np.ndarray:
    """Per image of ``chunk``: the mean absolute difference from ``first`` (float64; the
    integer sums are exact, so this equals each image's own ``mean()``)."""
    difference = np.abs(np.asarray(chunk).astype(np.int16) - first)
    return difference.reshape(len(difference), -1).mean(axis=1)


def _union_groups(n: int, groups: tuple[tuple[int, ...], ...]) -> np.ndarray:
    """One id per image; images in overlapping groups share the smallest index among them."""
    sizes = np.array([len(g) for g in groups], dtype=np.int64)
    members = np.fromiter((i for g in groups for i in g), dtype=np.int64, count=int(sizes.sum()))
    firsts = np.repeat(members[np.cumsum(sizes) - sizes], sizes)  # link each to its first
    return component_labels(n, firsts, members).astype(np.int64)
