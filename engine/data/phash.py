"""Perceptual hashing to find near-duplicate images (resized, recompressed, re-brightened).

Exact duplicates are found elsewhere by content hash; this module finds the copies a content
hash misses, because near-duplicates split across training and validation make validation
scores look better than they are.

We do not depend on the ``imagehash`` package: it pulls SciPy and PyWavelets into the
install for what is, for the difference hash, ten lines of numpy.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
from PIL import Image

HASH_BITS = 64  # dhash(size=8); near_duplicate_groups works on hashes of at most this width

# Edges are merged into the components in batches of about this many, which bounds memory
# when thousands of images are all near each other.
_EDGE_BATCH = 1 << 20

# A bucket of up to this many hashes is compared pair by pair, together with all other small
# buckets at once. Random (photo-like) hashes split at 6 bits into 7 bands of 9 or 10 bits
# fill about n / 2**9 per bucket, some 200 at 100,000 images, so photos stay on this path.
_SMALL_BUCKET = 512

# The breadth-first search in a big bucket compares blocks of about this many pairs at once
# (2 MiB of uint64 XORs, which stay in cache).
_BLOCK = 1 << 18


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

    Comparing all pairs is O(n²) — over a billion for 50,000 images. Instead:

    - Equal hashes are one vertex: the search runs on the distinct values only.
    - Pigeonhole: split the bits into ``max_distance + 1`` bands; two hashes within
      ``max_distance`` bits agree exactly on at least one band. So hashes are bucketed by each
      band and only hashes sharing a bucket can be linked. Small buckets (the rule for photos,
      whose hashes look random) are compared pair by pair, all at once with numpy.
    - A big bucket would cost its size squared. Low-entropy images (flat colours, faint
      gradients, blank pages, dark frames) set few bits, so one band value (all zeros) can
      hold nearly everyone: 20,000 such hashes made hundreds of millions of pairs. A big
      bucket's members agree on its band, so the same pigeonhole split is applied again to
      the bits that still vary among them, when that at least halves the candidate pairs;
      this keeps partly-flat but otherwise varied images fast.
    - When it does not (the bucket's hashes are alike), its members mostly lie within reach
      of each other, and a breadth-first search finds its components instead of its pairs:
      each reached hash is compared only with the members not reached yet, in blocks, so a
      bucket that is one big cluster costs about its size, not its size squared. No pair is
      compared twice, so even a bucket without links costs no more than its pairs would.
    - A bucket whose members differ in at most ``max_distance`` bits in all is one group
      without any comparison.

    What still grows faster than n: a bucket holding one big cluster and many hashes near
    none of it (say uniformly random hashes of 0 to 16 bits set) costs cluster × loners
    comparisons, about a billion, a few seconds, at 100,000 such hashes.

    Links are merged with a vectorised union-find, in batches that bound memory.
    """
    if not 0 <= max_distance < HASH_BITS:
        raise ValueError(f"max_distance must lie in [0, {HASH_BITS - 1}], got {max_distance}")
    if len(hashes) < 2:
        return []
    values = _as_uint64(hashes)
    # Equal hashes are linked by construction: work on the distinct values only.
    unique, inverse = np.unique(values, return_inverse=True)
    linker = _Linker(unique, max_distance)
    linker.bucket(np.arange(unique.size))
    labels = linker.labels()[inverse.ravel()]
    return _groups(labels)


def component_labels(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """For ``n`` items linked in pairs ``(a[i], b[i])``: each item's component label, the
    smallest index in its component (an unlinked item keeps its own index)."""
    components = _Components(n)
    components.link(np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64))
    return components.labels()


def _as_uint64(hashes: Sequence[int]) -> np.ndarray:
    try:
        return np.array(hashes, dtype=np.uint64).ravel()
    except (OverflowError, TypeError, ValueError):
        raise ValueError(
            f"hashes must be non-negative integers of at most {HASH_BITS} bits"
        ) from None


class _Linker:
    """Links every pair of ``values`` within ``max_distance`` bits into ``components``.

    Pairs in small buckets are not compared bucket by bucket: the buckets are queued, from
    every band and every nesting level, and compared together in large numpy batches.
    """

    def __init__(self, values: np.ndarray, max_distance: int) -> None:
        self.values = values
        self.max_distance = max_distance
        self.components = _Components(values.size)
        self._queued: list[np.ndarray] = []  # member indices, bucket after bucket
        self._queued_sizes: list[np.ndarray] = []
        self._queued_count = 0

    def bucket(self, members: np.ndarray) -> None:
        """Link the pairs among ``members`` (indices into ``values``).

        Only the bits that vary among the members are split into bands: the others cannot
        tell two members apart, and a nested bucket has fewer varying bits than its parent.
        """
        if members.size < 2:
            return
        own = self.values[members]
        varying = int(np.bitwise_or.reduce(own ^ own[0]))
        if varying.bit_count() <= self.max_distance:  # nobody can be further apart than that
            self.components.link(np.full(members.size - 1, members[0]), members[1:])
            return
        bands = [_runs(own & np.uint64(m)) for m in _split_bits(varying, self.max_distance + 1)]
        candidates = sum(int((sizes * (sizes - 1) // 2).sum()) for _, _, sizes in bands)
        if 4 * candidates > members.size * (members.size - 1):  # over half of all pairs
            self._search(members)  # the members are alike: the bands barely tell them apart
            return
        for order, starts, sizes in bands:
            small = (sizes >= 2) & (sizes <= _SMALL_BUCKET)
            self._queue(members[order[_run_positions(starts[small], sizes[small])]], sizes[small])
            big = sizes > _SMALL_BUCKET
            for start, size in zip(starts[big], sizes[big], strict=True):
                self.bucket(members[order[start : start + size]])

    def labels(self) -> np.ndarray:
        self._compare_queued()
        return self.components.labels()

    def _queue(self, members: np.ndarray, sizes: np.ndarray) -> None:
        if members.size == 0:
            return
        self._queued.append(members)
        self._queued_sizes.append(sizes)
        self._queued_count += members.size
        if self._queued_count >= _EDGE_BATCH:
            self._compare_queued()

    def _compare_queued(self) -> None:
        if not self._queued:
            return
        members = np.concatenate(self._queued)
        sizes = np.concatenate(self._queued_sizes)
        self._queued.clear()
        self._queued_sizes.clear()
        self._queued_count = 0
        own = self.values[members]
        for a, b in _pairs_in_runs(sizes):
            close = _popcount(own[a] ^ own[b]) <= self.max_distance
            self.components.link(members[a[close]], members[b[close]])

    def _search(self, members: np.ndarray) -> None:
        """Breadth-first search for the components among ``members``.

        Each reached hash is compared only with those not reached yet (``remaining``), a block
        of about ``_BLOCK`` pairs at a time, and a finished component is never looked at again,
        so no pair is compared twice and a dense cluster costs about its size. A member with no
        neighbour among the remaining ones is alone: finished components have none either.
        """
        own, reach = self.values[members], self.max_distance
        remaining = np.arange(members.size)
        while remaining.size > 1:
            block = remaining[: max(1, _BLOCK // remaining.size)]
            near = _close(own[block], own[remaining], reach)
            linked = near.sum(axis=1) > 1  # every member is near itself
            keep = np.ones(remaining.size, dtype=bool)
            keep[: block.size] = linked
            if not linked.any():
                remaining = remaining[keep]
                continue
            first = int(np.argmax(linked))
            seed = int(block[first])
            reached = near[first] & keep  # the seed and its neighbours
            tree = [remaining[reached]]
            frontier = tree[0][tree[0] != seed]
            remaining = remaining[keep & ~reached]
            while frontier.size and remaining.size:
                rows = max(1, _BLOCK // remaining.size)
                chunk, frontier = frontier[:rows], frontier[rows:]
                hit = _close(own[chunk], own[remaining], reach).any(axis=0)
                if hit.any():
                    tree.append(remaining[hit])
                    frontier = np.concatenate([frontier, tree[-1]])
                    remaining = remaining[~hit]
            found = members[np.concatenate(tree)]
            self.components.link(np.full(found.size, members[seed]), found)


def _split_bits(mask: int, count: int) -> list[int]:
    """The set bits of ``mask`` in ``count`` bands of neighbouring bits, as equal as possible."""
    positions = [bit for bit in range(HASH_BITS) if mask >> bit & 1]
    return [sum(1 << int(bit) for bit in band) for band in np.array_split(positions, count)]


def _runs(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``order`` sorting ``keys``, and the start and size of each run of equal keys in it."""
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
    sizes = np.diff(np.r_[starts, keys.size])
    return order, starts, sizes


def _run_positions(starts: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """The positions covered by the runs (``starts[i]`` up to ``starts[i] + sizes[i]``)."""
    offsets = np.arange(int(sizes.sum())) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    return np.repeat(starts, sizes) + offsets


def _pairs_in_runs(sizes: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """All pairs of positions within the same run, for runs of ``sizes`` laid end to end.

    Chunk ``s`` pairs every position with the one ``s`` places later in the same run;
    positions whose run has no member ``s`` later drop out, so the total work equals the
    number of pairs, not runs × longest run.
    """
    ends = np.cumsum(sizes)
    positions = np.arange(int(ends[-1])) if sizes.size else np.arange(0)
    left = np.repeat(ends, sizes) - positions - 1  # members after each position in its run
    step = 1
    while True:
        keep = left >= step
        positions, left = positions[keep], left[keep]
        if not positions.size:
            return
        yield positions, positions + step
        step += 1


def _close(a: np.ndarray, b: np.ndarray, max_distance: int) -> np.ndarray:
    """``close[i, j]``: hashes ``a[i]`` and ``b[j]`` are within ``max_distance`` bits."""
    return _popcount(a[:, None] ^ b[None, :]) <= max_distance


def _popcount(x: np.ndarray) -> np.ndarray:
    if hasattr(np, "bitwise_count"):  # numpy >= 2.0
        return np.bitwise_count(x)
    as_bytes = x.astype(np.uint64).view(np.uint8)
    return _BYTE_POPCOUNT[as_bytes.reshape(*x.shape, 8)].sum(axis=-1)


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
