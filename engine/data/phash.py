"""Perceptual hashing to find near-duplicate images (resized, recompressed, re-brightened).

Exact duplicates are found elsewhere by content hash; this module finds the copies a content
hash misses, because near-duplicates split across training and validation make validation
scores look better than they are.

We do not depend on the ``imagehash`` package: it pulls SciPy and PyWavelets into the
install for what is, for the difference hash, ten lines of numpy.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence

import numpy as np
from PIL import Image

HASH_BITS = 64  # dhash(size=8); near_duplicate_groups works on hashes of at most this width

# Edges are merged into the components in batches of about this many, which bounds memory
# when thousands of images are all near each other (the pairs grow quadratically).
_EDGE_BATCH = 1 << 20


def dhash(image: np.ndarray | Image.Image, size: int = 8) -> int:
    """The difference hash of ``image``: ``size * size`` bits (64 for the default).

    The image is shrunk to a greyscale (size + 1)×size thumbnail (width × height) and each bit
    says whether a pixel is brighter than its left neighbour, row by row, first bit most
    significant. Gradients survive resizing, JPEG recompression and brightness or contrast
    changes, so copies land a few bits apart, while different pictures differ in about half.
    The shrink uses a box filter (a plain average) because it is the most robust to noise.
    A flat image (all one colour) hashes to 0 whatever its colour: dhash sees no structure.

    ``image`` is a PIL image or a uint8 array shaped H×W or H×W×C (C = 1, 3 or 4).
    """
    if size < 2:
        raise ValueError(f"hash size must be at least 2, got {size}")
    grey = _as_grey(image)
    thumb = grey.resize((size + 1, size), Image.Resampling.BOX)
    pixels = np.asarray(thumb, dtype=np.int16)
    bits = (pixels[:, 1:] > pixels[:, :-1]).ravel()
    packed = np.packbits(bits)  # pads the last byte with zeros when size*size % 8 != 0
    return int.from_bytes(packed.tobytes(), "big") >> (packed.size * 8 - bits.size)


def _as_grey(image: np.ndarray | Image.Image) -> Image.Image:
    if isinstance(image, Image.Image):
        return image if image.mode == "L" else image.convert("L")
    array = np.asarray(image)
    if array.dtype != np.uint8:
        raise ValueError(f"image arrays must be uint8, got {array.dtype}")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim == 2:
        return Image.fromarray(array)
    if array.ndim == 3 and array.shape[2] in (3, 4):
        return Image.fromarray(np.ascontiguousarray(array[:, :, :3])).convert("L")
    raise ValueError(f"image array must be H×W or H×W×C with C in 1, 3, 4; got {array.shape}")


def hamming(a: int, b: int) -> int:
    """The number of bits in which hashes ``a`` and ``b`` differ."""
    return (a ^ b).bit_count()


def near_duplicate_groups(hashes: Sequence[int], max_distance: int = 4) -> list[list[int]]:
    """Indices of hashes that are near-duplicates, grouped transitively.

    Two hashes are linked when they differ in at most ``max_distance`` bits, and a group is a
    connected set of links (A~B and B~C put A, B, C together even if A and C are further
    apart). Each group is sorted, groups are ordered by their first index, and only groups with
    at least two members are returned. Equal hashes are always grouped.

    Comparing all pairs is O(n²) — over a billion for 50,000 images. Instead this uses the
    pigeonhole principle: split the 64 bits into ``max_distance + 1`` bands; two hashes within
    ``max_distance`` bits must agree exactly on at least one band. So hashes are bucketed by
    each band and only hashes sharing a bucket are compared, with numpy, and the links are
    merged with a vectorised union-find. For typical photos this is a fraction of a second at
    50,000 hashes; the cost grows with the number of hashes sharing a band value, i.e. with
    larger ``max_distance`` or many near-identical (e.g. blank) images.
    """
    if not 0 <= max_distance < HASH_BITS:
        raise ValueError(f"max_distance must lie in [0, {HASH_BITS - 1}], got {max_distance}")
    if len(hashes) < 2:
        return []
    values = _as_uint64(hashes)
    # Equal hashes are linked by construction: work on the distinct values only.
    unique, inverse = np.unique(values, return_inverse=True)
    components = _Components(len(unique))
    for lo, hi in _bands(max_distance + 1):
        keys = _band_keys(unique, lo, hi)
        for a, b in _same_key_pairs(keys):
            close = _popcount(unique[a] ^ unique[b]) <= max_distance
            components.link(a[close], b[close])
    labels = components.labels()[inverse.ravel()]
    return _groups(labels)


def _as_uint64(hashes: Sequence[int]) -> np.ndarray:
    try:
        return np.array(hashes, dtype=np.uint64).ravel()
    except (OverflowError, TypeError, ValueError):
        raise ValueError(
            f"hashes must be non-negative integers of at most {HASH_BITS} bits"
        ) from None


def _bands(count: int) -> list[tuple[int, int]]:
    """``count`` bit ranges [lo, hi) covering all 64 bits, as equal in width as possible."""
    edges = np.linspace(0, HASH_BITS, count + 1).round().astype(int)
    return [(int(lo), int(hi)) for lo, hi in itertools.pairwise(edges)]


def _band_keys(values: np.ndarray, lo: int, hi: int) -> np.ndarray:
    width = hi - lo
    mask = np.uint64((1 << width) - 1)  # width <= 64, so this fits in uint64
    return (values >> np.uint64(lo)) & mask


def _same_key_pairs(keys: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """All index pairs (i, j), i != j, with ``keys[i] == keys[j]``, in vectorised chunks.

    After sorting, each bucket is a run of equal keys. Chunk ``s`` pairs every position with
    the one ``s`` places later in the same run; positions whose run has no member ``s`` later
    drop out, so the total work equals the number of pairs, not runs × longest run.
    """
    n = keys.size
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
    ends = np.r_[starts[1:], n]
    run_end = np.repeat(ends, ends - starts)  # for each sorted position, the end of its run
    positions = np.arange(n)
    step = 1
    active = positions[run_end - positions > step]
    while active.size:
        yield order[active], order[active + step]
        step += 1
        active = active[run_end[active] - active > step]


def _popcount(x: np.ndarray) -> np.ndarray:
    if hasattr(np, "bitwise_count"):  # numpy >= 2.0
        return np.bitwise_count(x)
    as_bytes = x.astype(np.uint64).view(np.uint8).reshape(-1, 8)
    return _BYTE_POPCOUNT[as_bytes].sum(axis=1)


_BYTE_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


class _Components:
    """Union-find over ``n`` items, fed with arrays of links and merged without Python loops.

    ``parent`` always points to a smaller-or-equal index, and after every merge it is
    compressed so each item points straight at its component's root (the smallest index).
    Merging hooks the larger of two roots under the smaller until no link crosses two
    components; because parents only ever decrease this cannot form cycles.
    """

    def __init__(self, n: int) -> None:
        self._parent = np.arange(n)
        self._pending_a: list[np.ndarray] = []
        self._pending_b: list[np.ndarray] = []
        self._pending = 0

    def link(self, a: np.ndarray, b: np.ndarray) -> None:
        if a.size == 0:
            return
        self._pending_a.append(a)
        self._pending_b.append(b)
        self._pending += a.size
        if self._pending >= _EDGE_BATCH:
            self._merge()

    def labels(self) -> np.ndarray:
        """Each item's component label (the smallest index in its component)."""
        self._merge()
        return self._parent

    def _merge(self) -> None:
        if not self._pending:
            return
        a = np.concatenate(self._pending_a)
        b = np.concatenate(self._pending_b)
        self._pending_a.clear()
        self._pending_b.clear()
        self._pending = 0
        parent = self._parent
        while True:
            root_a, root_b = parent[a], parent[b]
            crossing = root_a != root_b
            if not crossing.any():
                break
            a, b = a[crossing], b[crossing]  # links already inside a component are done
            low = np.minimum(root_a[crossing], root_b[crossing])
            high = np.maximum(root_a[crossing], root_b[crossing])
            np.minimum.at(parent, high, low)
            while True:  # pointer jumping until every item points at a root
                grand = parent[parent]
                if np.array_equal(grand, parent):
                    break
                parent = grand
        self._parent = parent


def _groups(labels: np.ndarray) -> list[list[int]]:
    order = np.argsort(labels, kind="stable")  # stable: members stay in index order
    sorted_labels = labels[order]
    starts = np.flatnonzero(np.r_[True, sorted_labels[1:] != sorted_labels[:-1]])
    ends = np.r_[starts[1:], labels.size]
    groups = [order[s:e].tolist() for s, e in zip(starts, ends, strict=True) if e - s >= 2]
    groups.sort(key=lambda group: group[0])
    return groups
