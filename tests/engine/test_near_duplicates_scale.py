"""The near-duplicate search at scale on low-entropy hashes, and the duplicate grouping.

Near-constant images (flat colours, faint ramps and noise, blank pages with a few specks)
give dHashes with few bits set, so the pigeonhole buckets hold nearly everyone. Comparing
the pairs in those buckets took seconds at 20,000 such images and minutes at 100,000; these
tests run such inputs and check the answer, never the time.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.near_duplicates import near_constant_images
from cnn_lab.engine.data import phash
from cnn_lab.engine.data.duplicates import (
    NEAR_DUPLICATE_BITS,
    NEAR_DUPLICATE_PIXELS,
    Duplicates,
    find_duplicates,
)
from cnn_lab.engine.data.phash import dhash, near_duplicate_groups

# ------------------------------------------------------------------------------ references


def popcount(values: np.ndarray) -> np.ndarray:
    """Bits set in each uint64 (numpy 1.x has no bitwise_count)."""
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(values)
    as_bytes = np.ascontiguousarray(values, dtype=np.uint64).view(np.uint8)
    return np.unpackbits(as_bytes.reshape(*np.shape(values), 8), axis=-1).sum(axis=-1)


def brute_force_groups(hashes: list[int], max_distance: int) -> list[list[int]]:
    """Connected components of "within max_distance bits" over all n² pairs."""
    values = np.array(hashes, dtype=np.uint64)
    parent = list(range(len(hashes)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(hashes)):
        distances = popcount(values[i] ^ values[i + 1 :])
        for j in np.flatnonzero(distances <= max_distance) + i + 1:
            a, b = find(i), find(int(j))
            parent[max(a, b)] = min(a, b)
    groups: dict[int, list[int]] = {}
    for i in range(len(hashes)):
        groups.setdefault(find(i), []).append(i)
    return sorted((g for g in groups.values() if len(g) >= 2), key=lambda g: g[0])


def previous_grouping(
    images: np.ndarray, contents: list[str], hashes: list[int], labels: list[str]
) -> tuple[list[list[int]], list[list[int]], list[list[int]], np.ndarray]:
    """prepare._assemble's duplicate lines as they were before duplicates.py (per-pair loops)."""
    seen: dict[str, list[int]] = {}
    for i, key in enumerate(contents):
        seen.setdefault(key, []).append(i)
    exact = [g for g in seen.values() if len(g) > 1]
    confirmed = []
    for group in near_duplicate_groups(hashes, NEAR_DUPLICATE_BITS):
        first = images[group[0]].astype(np.int16)
        kept = [group[0]] + [
            i
            for i in group[1:]
            if np.abs(images[i].astype(np.int16) - first).mean() < NEAR_DUPLICATE_PIXELS
        ]
        if len(kept) > 1:
            confirmed.append(kept)
    near = [g for g in confirmed if not any(set(g) <= set(e) for e in exact)]
    conflicts = [g for g in exact if len({labels[i] for i in g}) > 1]
    parent = np.arange(len(contents), dtype=np.int64)

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = int(parent[i])
        return i

    for group in exact + near:
        root = find(group[0])
        for member in group[1:]:
            other = find(member)
            if other != root:
                parent[max(root, other)] = min(root, other)
                root = min(root, other)
    return exact, near, conflicts, np.array([find(i) for i in range(len(contents))])


def assert_same_as_previous(found: Duplicates, *args: Any) -> None:
    exact, near, conflicts, groups = previous_grouping(*args)
    assert [list(g) for g in found.exact] == exact
    assert [list(g) for g in found.near] == near
    assert [list(g) for g in found.conflicts] == conflicts
    assert found.groups.dtype == np.int64
    np.testing.assert_array_equal(found.groups, groups)


# ------------------------------------------------------------------------------ data


@pytest.fixture(scope="module")
def blank_images() -> np.ndarray:
    return near_constant_images(20_000)


@pytest.fixture(scope="module")
def blank_hashes(blank_images: np.ndarray) -> list[int]:
    return [dhash(image) for image in blank_images]


def low_popcount_hashes(n: int, most_bits: int, seed: int) -> list[int]:
    """``n`` hashes with 0 to ``most_bits`` bits set at random places (many repeats when few)."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, most_bits + 1, n)
    bits = np.argsort(rng.random((n, 64)), axis=1)  # a random order of the 64 bits per hash
    chosen = np.arange(64)[None, :] < counts[:, None]
    values = np.where(chosen, np.uint64(1) << bits.astype(np.uint64), np.uint64(0))
    return [int(v) for v in np.bitwise_or.reduce(values, axis=1)]


# ------------------------------------------------------------------------------ the search


def check_structure(hashes: list[int], groups: list[list[int]], max_distance: int) -> None:
    """Groups are sorted, disjoint, ordered by first index, of 2 or more; and for a sample of
    hashes, every hash within reach of one lies in its group (or both lie in none)."""
    label = np.arange(len(hashes))
    for group in groups:
        assert len(group) >= 2
        assert group == sorted(group)
        assert (label[group] == np.array(group)).all(), "groups overlap"
        label[group] = group[0]
    assert [g[0] for g in groups] == sorted(g[0] for g in groups)
    values = np.array(hashes, dtype=np.uint64)
    sample = np.random.default_rng(1).choice(len(hashes), 300, replace=False)
    for i in sample:
        near = np.flatnonzero(popcount(values ^ values[i]) <= max_distance)
        assert (label[near] == label[i]).all(), "a link crosses two groups"
        if label[i] != i or (label == i).sum() > 1:  # grouped: linked to someone
            assert near.size > 1


def test_twenty_thousand_blank_images_hashes(blank_hashes: list[int]) -> None:
    distinct = len(set(blank_hashes))
    assert distinct > 5000  # the specks make many distinct low-entropy hashes
    assert np.median([h.bit_count() for h in blank_hashes]) <= 8
    groups = near_duplicate_groups(blank_hashes, NEAR_DUPLICATE_BITS)
    check_structure(blank_hashes, groups, NEAR_DUPLICATE_BITS)
    assert max(len(g) for g in groups) > 10_000  # flat and nearly flat images: one picture

    # On a random subset, exactly the components of all pairs.
    subset = np.random.default_rng(2).choice(len(blank_hashes), 1500, replace=False)
    part = [blank_hashes[i] for i in subset]
    assert near_duplicate_groups(part, NEAR_DUPLICATE_BITS) == brute_force_groups(
        part, NEAR_DUPLICATE_BITS
    )


@pytest.mark.parametrize(
    ("n", "most_bits", "max_distance"),
    [(100_000, 5, 6), (100_000, 10, 6), (100_000, 12, 4), (30_000, 16, 6)],
)
def test_many_low_popcount_hashes(n: int, most_bits: int, max_distance: int) -> None:
    # Nearly all hashes share the all-zero band values: billions of candidate pairs at
    # 100,000 for the plain pigeonhole buckets (minutes); well under a second now.
    hashes = low_popcount_hashes(n, most_bits, seed=most_bits)
    groups = near_duplicate_groups(hashes, max_distance)
    check_structure(hashes, groups, max_distance)
    if most_bits + 1 <= max_distance:  # every hash is within reach of every one-bit hash
        assert groups == [list(range(len(hashes)))]
    part = hashes[:1500]
    assert near_duplicate_groups(part, max_distance) == brute_force_groups(part, max_distance)


def test_photos_and_blank_images_together(blank_hashes: list[int]) -> None:
    rng = np.random.default_rng(3)
    photos = [int(h) for h in rng.integers(0, 2**64, 60_000, dtype=np.uint64)]
    twins = [photos[i] ^ 0b101 for i in range(0, 60_000, 600)]  # 100 copies 2 bits away
    hashes = blank_hashes + photos + twins
    groups = near_duplicate_groups(hashes, NEAR_DUPLICATE_BITS)
    check_structure(hashes, groups, NEAR_DUPLICATE_BITS)
    first_twin = len(blank_hashes) + len(photos)
    for k, i in enumerate(range(0, 60_000, 600)):
        assert [len(blank_hashes) + i, first_twin + k] in groups


# Hash sets that stress every path: repeats, low-popcount hashes, tight clusters, strangers.
def hash_sets() -> st.SearchStrategy[list[int]]:
    low = st.sets(st.integers(0, 63), max_size=7).map(lambda bits: sum(1 << b for b in bits))
    anything = st.integers(0, 2**64 - 1)
    top = st.integers(0, 2**16 - 1).map(lambda x: x << 48)  # only the top bits vary
    pools = st.lists(st.one_of(low, anything, top), min_size=1, max_size=12)
    return pools.flatmap(
        lambda pool: st.lists(
            st.tuples(st.sampled_from(pool), st.sampled_from([0, 0, 1, 3, 1 << 40, 1 << 63])),
            max_size=80,
        ).map(lambda pairs: [h ^ flip for h, flip in pairs])
    )


@given(hashes=hash_sets(), max_distance=st.integers(0, 12), tiny_limits=st.booleans())
@settings(max_examples=300, deadline=None)
def test_matches_brute_force(hashes: list[int], max_distance: int, tiny_limits: bool) -> None:
    with pytest.MonkeyPatch.context() as patch:
        if tiny_limits:  # send small inputs down the nested-bucket and search paths, in blocks
            patch.setattr(phash, "_SMALL_BUCKET", 2)
            patch.setattr(phash, "_BLOCK", 3)
            patch.setattr(phash, "_EDGE_BATCH", 5)
        found = near_duplicate_groups(hashes, max_distance)
    assert found == brute_force_groups(hashes, max_distance)


@pytest.mark.parametrize("tiny_limits", [False, True])
def test_each_path_on_a_larger_mix(tiny_limits: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if tiny_limits:
        monkeypatch.setattr(phash, "_SMALL_BUCKET", 8)
        monkeypatch.setattr(phash, "_BLOCK", 64)
    rng = np.random.default_rng(4)
    low = low_popcount_hashes(1200, 12, seed=5)
    flat_top = [int(h) & (2**40 - 1) for h in rng.integers(0, 2**64, 600, dtype=np.uint64)]
    hashes = low + flat_top + [h ^ (1 << 50) for h in flat_top[:100]]
    for max_distance in (3, 6, 10):
        assert near_duplicate_groups(hashes, max_distance) == brute_force_groups(
            hashes, max_distance
        )


# ------------------------------------------------------------------------------ grouping


def test_twenty_thousand_blank_images_through_find_duplicates(
    blank_images: np.ndarray, blank_hashes: list[int]
) -> None:
    contents = [hashlib.sha256(image.tobytes()).hexdigest() for image in blank_images]
    labels = [("page", "frame", "sky")[i % 3] for i in range(len(blank_images))]
    found = find_duplicates(blank_images, contents, blank_hashes, labels)
    assert found.exact and found.near and found.conflicts  # flat images repeat across labels
    assert_same_as_previous(found, blank_images, contents, blank_hashes, labels)
    # Everything a group id joins really is linked: ids are the smallest member's index.
    assert (found.groups <= np.arange(len(blank_images))).all()
    assert (found.groups[found.groups] == found.groups).all()


def test_find_duplicates_reads_a_memory_map_in_chunks(
    tmp_path: Path,
    blank_images: np.ndarray,
    blank_hashes: list[int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from cnn_lab.engine.data import duplicates

    monkeypatch.setattr(duplicates, "_CONFIRM_BYTES", 16 * 16 * 3 * 2 * 7)  # 7 images a chunk
    mapped = np.lib.format.open_memmap(tmp_path / "images.npy", "w+", np.uint8, (4000, 16, 16, 3))
    mapped[:] = blank_images[:4000]
    mapped.flush()
    images = np.load(tmp_path / "images.npy", mmap_mode="r")
    contents = [str(i) for i in range(4000)]  # no exact copies: near groups are all kept
    labels = ["a"] * 4000
    found = find_duplicates(images, contents, blank_hashes[:4000], labels)
    assert found.near and not found.exact
    assert_same_as_previous(found, np.asarray(images), contents, blank_hashes[:4000], labels)


@st.composite
def small_datasets(draw: st.DrawFn) -> tuple[np.ndarray, list[str], list[int], list[str]]:
    n = draw(st.integers(0, 30))
    levels = draw(st.lists(st.integers(0, 255), min_size=n, max_size=n))
    noise = draw(st.lists(st.integers(0, 40), min_size=n, max_size=n))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    images = np.clip(
        np.array(levels, dtype=np.int16)[:, None, None, None]
        + (rng.integers(0, 2, (n, 4, 4, 1)) * np.array(noise)[:, None, None, None]),
        0,
        255,
    ).astype(np.uint8)
    contents = draw(st.lists(st.sampled_from("abcdefgh"), min_size=n, max_size=n))
    hashes = draw(
        st.lists(st.sampled_from([0, 1, 3, 7, 1 << 40, 2**64 - 1]), min_size=n, max_size=n)
    )
    labels = draw(st.lists(st.sampled_from(["x", "y"]), min_size=n, max_size=n))
    return images, contents, hashes, labels


@given(data=small_datasets())
@settings(max_examples=200, deadline=None)
def test_find_duplicates_matches_the_previous_grouping(
    data: tuple[np.ndarray, list[str], list[int], list[str]],
) -> None:
    found = find_duplicates(*data)
    assert_same_as_previous(found, *data)
    with pytest.raises(AttributeError):
        found.exact = ()  # type: ignore[misc]
