"""Near-duplicate search: cnn-lab's search against the previous one, on photos and blanks.

The baseline is ``phash.near_duplicate_groups`` as it was before issue 19 (commit 54ebe74),
copied below verbatim: pigeonhole buckets by ``max_distance + 1`` bands of the dHash, then
every pair inside each bucket. It is fast on photos, whose hashes look random, and quadratic
on low-entropy images (flat colours, faint ramps, blank pages with specks), whose hashes set
few bits and so share the all-zero band values.

Workloads (all at the import's ``NEAR_DUPLICATE_BITS`` = 6):

- ``photos_100k``: 100,000 random 64-bit hashes (what photos look like to dHash), 1% of them
  with a near copy 1 to 4 bits away;
- ``blank_images_20k`` and ``blank_images_100k``: real dHashes of near-constant 16×16 images
  (flat grey levels, faint ramps, faint sparse noise, blank pages with 1 to 8 specks);
- ``low_popcount_20k``: 20,000 hashes with 0 to 8 bits set at random places.

Each search runs in a child process that makes its workload from a fixed seed and times only
the search (the new one best of ``--repeat``, the baseline once); the baseline is stopped
after ``--limit`` seconds of searching and reported as "> N s". When
both finish, their groups are compared. Prints one JSON object.

    python benchmarks/near_duplicates.py [--limit 120] [--repeat 3] [--skip-100k-blanks]
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence

import numpy as np

HASH_BITS = 64
MAX_DISTANCE = 6  # engine/data/duplicates.NEAR_DUPLICATE_BITS
_EDGE_BATCH = 1 << 20

# ------------------------------------------------------------------------------ workloads


def photo_hashes(n: int, seed: int = 0) -> list[int]:
    rng = np.random.default_rng(seed)
    values = rng.integers(0, 2**64, n, dtype=np.uint64)
    copies = rng.choice(n, n // 100, replace=False)
    for i, source in enumerate(copies):  # overwrite the last 1% with near copies
        flips = rng.choice(64, rng.integers(1, 5), replace=False)
        values[n - 1 - i] = values[source] ^ np.uint64(sum(1 << int(b) for b in flips))
    return [int(v) for v in values]


def near_constant_images(n: int, size: int = 16, seed: int = 0) -> np.ndarray:
    """uint8 n×size×size×3 images with almost no structure, five kinds in turn: flat grey
    levels, faint horizontal ramps, faint sparse noise, and blank pages with 1 to 8 specks
    (dust, hot pixels) of either polarity. tests/engine/test_near_duplicates_scale.py uses
    them too."""
    rng = np.random.default_rng(seed)
    level = rng.integers(30, 226, (n, 1, 1, 1))
    images = np.broadcast_to(level, (n, size, size, 3)).astype(np.int16)
    kind = np.arange(n) % 5
    ramps = kind == 1
    slope = rng.uniform(0.2, 1.0, (int(ramps.sum()), 1, 1, 1))
    ramp = np.linspace(-1.5, 1.5, size)[None, None, :, None]
    images[ramps] += np.rint(slope * ramp).astype(np.int16)
    noisy = kind == 2
    shape = (int(noisy.sum()), size, size, 1)
    images[noisy] += (rng.integers(-1, 2, shape) * (rng.random(shape) < 0.1)).astype(np.int16)
    specked = np.flatnonzero(kind >= 3)
    counts = rng.integers(1, 9, specked.size)
    for speck in range(1, 9):
        chosen = specked[counts >= speck]
        y, x = rng.integers(0, size, (2, chosen.size))
        images[chosen, y, x, :] += rng.integers(-60, 61, (chosen.size, 1)).astype(np.int16)
    return np.clip(images, 0, 255).astype(np.uint8)


def blank_image_hashes(n: int) -> list[int]:
    from cnn_lab.engine.data.phash import dhash

    return [dhash(image) for image in near_constant_images(n)]


def low_popcount_hashes(n: int, most_bits: int = 8, seed: int = 0) -> list[int]:
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, most_bits + 1, n)
    bits = np.argsort(rng.random((n, 64)), axis=1).astype(np.uint64)
    values = np.where(np.arange(64)[None, :] < counts[:, None], np.uint64(1) << bits, 0)
    return [int(v) for v in np.bitwise_or.reduce(values.astype(np.uint64), axis=1)]


WORKLOADS = {
    "photos_100k": lambda: photo_hashes(100_000),
    "blank_images_20k": lambda: blank_image_hashes(20_000),
    "low_popcount_20k": lambda: low_popcount_hashes(20_000),
    "blank_images_100k": lambda: blank_image_hashes(100_000),
}

# ------------------------------------------------------------------------------ runs


def child(workload: str, which: str, repeat: int) -> None:
    """Make the workload, time the search (best of ``repeat``), print one JSON line."""
    from cnn_lab.engine.data.phash import near_duplicate_groups

    hashes = WORKLOADS[workload]()
    print("ready", flush=True)  # the parent's time limit starts now
    search = baseline_groups if which == "baseline" else near_duplicate_groups
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        groups = search(hashes, MAX_DISTANCE)
        timings.append(time.perf_counter() - started)
    digest = hashlib.sha256(json.dumps(groups).encode()).hexdigest()[:16]
    print(
        json.dumps(
            {
                "seconds": round(min(timings), 4),
                "hashes": len(hashes),
                "distinct": len(set(hashes)),
                "groups": len(groups),
                "largest_group": max((len(g) for g in groups), default=0),
                "digest": digest,
            }
        )
    )


def run_child(workload: str, which: str, repeat: int, limit: float) -> dict | None:
    """The child's JSON line, or None when its search ran past ``limit`` seconds."""
    command = [sys.executable, __file__, "--child", workload, which, "--repeat", str(repeat)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        assert process.stdout is not None
        if process.stdout.readline().strip() != "ready":
            raise RuntimeError(f"{workload} ({which}) failed before its search began")
        try:
            out, _ = process.communicate(timeout=limit)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            return None
    if process.returncode:
        raise RuntimeError(f"{workload} ({which}) failed with exit status {process.returncode}")
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=float, default=120.0, help="baseline time cap (s)")
    parser.add_argument("--repeat", type=int, default=3, help="best of this many (new search)")
    parser.add_argument("--skip-100k-blanks", action="store_true")
    parser.add_argument("--child", nargs=2, metavar=("WORKLOAD", "WHICH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child, repeat=args.repeat)
        return
    results = {}
    for workload in WORKLOADS:
        if workload == "blank_images_100k" and args.skip_100k_blanks:
            continue
        new = run_child(workload, "new", args.repeat, limit=600.0)
        assert new is not None
        # The baseline runs once; its limit counts the search only, not making the workload.
        old = run_child(workload, "baseline", 1, limit=args.limit)
        entry = {
            "hashes": new["hashes"],
            "distinct": new["distinct"],
            "groups": new["groups"],
            "largest_group": new["largest_group"],
            "new_s": new["seconds"],
        }
        if old is None:
            entry["baseline_s"] = f"> {args.limit:g} s"
            entry["speedup"] = f"> {args.limit / max(new['seconds'], 1e-6):.0f}"
        else:
            entry["baseline_s"] = old["seconds"]
            entry["speedup"] = round(old["seconds"] / max(new["seconds"], 1e-6), 1)
            entry["same_groups"] = old["digest"] == new["digest"]
        results[workload] = entry
    print(
        json.dumps(
            {
                "benchmark": "near_duplicates",
                "new": "phash.near_duplicate_groups (nested buckets + breadth-first search)",
                "baseline": "phash.near_duplicate_groups before issue 19: all pairs per bucket",
                "max_distance": MAX_DISTANCE,
                "baseline_limit_s": args.limit,
                "workloads": results,
            },
            indent=1,
        )
    )


# ------------------------------------------------------------------------------ the baseline
# Copied from engine/data/phash.py at 54ebe74; only the entry point is renamed and trimmed.


def baseline_groups(hashes: Sequence[int], max_distance: int) -> list[list[int]]:
    """The baseline: pigeonhole buckets, then every pair within each bucket (numpy)."""
    values = _as_uint64(hashes)
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


if __name__ == "__main__":
    main()
