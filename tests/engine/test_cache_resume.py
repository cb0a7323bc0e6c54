"""The image cache is built on every core, streamed to disk, and resumed after a kill.

A big import is cut short in real life (Cancel, a closed window, a killed process); the next
one must decode only the files that were not yet cached, and end with exactly the cache a
clean build gives.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnn_lab.engine.data.cache import build_file_cache, cache_dir_for
from cnn_lab.engine.data.cache_build import BUILD_PREFIX, read_journal
from cnn_lab.engine.data.cache_rows import Preprocess
from cnn_lab.engine.data.sources import list_source
from cnn_lab.engine.errors import Cancelled, DataError
from tests.waiting import wait_until

PREP = Preprocess(24, 3, "squash")


def write_folder(root: Path, count: int, start: int = 0, bad_every: int = 0) -> None:
    """``count`` small JPEGs in three classes; every ``bad_every``-th file is corrupt."""
    rng = np.random.default_rng(start)
    for i in range(start, start + count):
        folder = root / f"class_{i % 3}"
        folder.mkdir(parents=True, exist_ok=True)
        if bad_every and i % bad_every == bad_every - 1:
            (folder / f"img_{i:05d}.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
            continue
        pixels = rng.integers(0, 256, (36, 48, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"img_{i:05d}.jpg", quality=85)


def build(root: Path, **kwargs: object):  # type: ignore[no-untyped-def]
    return build_file_cache(list_source(str(root)), PREP, **kwargs)  # type: ignore[arg-type]


def clean_build(root: Path, cache: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("CNN_LAB_CACHE", str(cache))
    return build(root, processes=False)


def stop_after(checks: int):  # type: ignore[no-untyped-def]
    """A should_stop that says stop from its ``checks``+1-th call on."""
    calls = []

    def should_stop() -> bool:
        calls.append(1)
        return len(calls) > checks

    return should_stop


def same_cache(a, b) -> None:  # type: ignore[no-untyped-def]
    assert [r.__dict__ for r in a.rows] == [r.__dict__ for r in b.rows]
    assert [(s.path, s.reason) for s in a.skipped] == [(s.path, s.reason) for s in b.skipped]
    assert np.array_equal(np.asarray(a.images), np.asarray(b.images))


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("CNN_LAB_CACHE", str(cache))
    return cache


def test_processes_and_threads_build_the_same_cache_with_skips_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "photos"
    write_folder(root, 150, bad_every=7)
    threads = build(root, processes=False, workers=2)
    assert threads.decoded == len(threads.rows) == 150 - 150 // 7
    assert len(threads.skipped) == 150 // 7 and "not an image" in threads.skipped[0].reason
    # Every row holds its own file's pixels, in listing order, after the holes were closed.
    for row, pixels in zip(threads.rows[::17], threads.images[::17], strict=True):
        from cnn_lab.engine.data.decode import decode_file
        from cnn_lab.engine.data.resize import resize_image

        path = root / row.shown
        assert np.array_equal(resize_image(decode_file(path).image, 24, 24), pixels)
    monkeypatch.setenv("CNN_LAB_CACHE", str(tmp_path / "third-cache"))
    processes = build(root, processes=True, workers=2)
    same_cache(threads, processes)
    assert not list(cache_dir_for(list_source(str(root)), PREP).glob(BUILD_PREFIX + "*"))


def test_a_cancelled_build_resumes_with_only_the_files_not_yet_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "photos"
    write_folder(root, 120, bad_every=11)
    with pytest.raises(Cancelled):
        build(root, processes=False, workers=1, should_stop=stop_after(6))
    folder = cache_dir_for(list_source(str(root)), PREP)
    (partial,) = folder.glob(BUILD_PREFIX + "*")
    journaled = list(read_journal(partial))
    assert 0 < len(journaled) < 120
    resumed = build(root, processes=False, workers=2)
    decoded_or_skipped = 120 - len(journaled)
    skipped_now = 120 // 11 - sum(1 for e in journaled if e.row is None)
    assert resumed.decoded == decoded_or_skipped - skipped_now
    same_cache(resumed, clean_build(root, tmp_path / "clean", monkeypatch))


def test_files_added_after_a_cancel_reuse_what_the_cut_build_decoded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "photos"
    write_folder(root, 90)
    with pytest.raises(Cancelled):
        build(root, processes=False, workers=1, should_stop=stop_after(5))
    folder = cache_dir_for(list_source(str(root)), PREP)
    (partial,) = folder.glob(BUILD_PREFIX + "*")
    journaled = len(list(read_journal(partial)))
    write_folder(root, 10, start=90)  # another plan: a new build, fed by the cut one
    resumed = build(root, processes=False)
    assert resumed.decoded == 100 - journaled
    same_cache(resumed, clean_build(root, tmp_path / "clean", monkeypatch))
    assert not list(folder.glob(BUILD_PREFIX + "*"))


KILLED_IMPORT = textwrap.dedent(
    """
    import sys
    from cnn_lab.engine.data.cache import build_file_cache
    from cnn_lab.engine.data.cache_rows import Preprocess
    from cnn_lab.engine.data.sources import list_source

    build_file_cache(list_source(sys.argv[1]), Preprocess(24, 3, "squash"), processes=True,
                     workers=2)
    """
)


@pytest.mark.slow
def test_an_import_killed_in_the_middle_resumes_and_caches_each_file_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "photos"
    write_folder(root, 600)
    folder = cache_dir_for(list_source(str(root)), PREP)
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_IMPORT, str(root)], env=os.environ, start_new_session=True
    )

    def journaled_100_or_ended() -> bool:
        builds = list(folder.glob(BUILD_PREFIX + "*"))
        return child.poll() is not None or (
            bool(builds) and len(list(read_journal(builds[0]))) >= 100
        )

    wait_until(journaled_100_or_ended, timeout=120, poll=0.02)
    os.killpg(child.pid, signal.SIGKILL)  # the import and its decode workers, mid-flight
    child.wait()
    journaled = list(read_journal(next(folder.glob(BUILD_PREFIX + "*"))))
    assert 100 <= len(journaled) < 600, "the child finished before it could be killed"
    assert not (folder / "images.npy").exists()

    resumed = build(root, processes=True, workers=2)
    assert resumed.decoded == 600 - len(journaled)  # nothing journaled is decoded again
    assert len({r.shown for r in resumed.rows}) == len(resumed.rows) == 600
    same_cache(resumed, clean_build(root, tmp_path / "clean", monkeypatch))


def test_a_full_disk_is_a_sentence_and_the_build_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import cnn_lab.engine.data.cache_build as cache_build

    root = tmp_path / "photos"
    write_folder(root, 40)
    real_write = cache_build.write_row
    writes = []

    def fails_after_ten(*args: object) -> None:
        writes.append(1)
        if len(writes) > 10:
            raise OSError(28, "No space left on device")
        real_write(*args)  # type: ignore[arg-type]

    first = build(root, processes=False, workers=1)
    monkeypatch.setattr(cache_build, "write_row", fails_after_ten)
    write_folder(root, 20, start=40)  # new files: old rows are copied first, then it fails
    with pytest.raises(DataError, match="could not be written") as caught:
        build(root, processes=False, workers=1)
    assert "resumes" in (caught.value.hint or "")
    monkeypatch.setattr(cache_build, "write_row", real_write)
    resumed = build(root, processes=False, workers=1)
    assert resumed.decoded == 20 and len(first.rows) == 40
    same_cache(resumed, clean_build(root, tmp_path / "clean", monkeypatch))


def test_two_imports_of_one_folder_at_once_decode_each_file_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Data panel and a training job may prepare the same folder together: the second
    waits for the first and then finds the cache up to date."""
    import threading

    root = tmp_path / "photos"
    write_folder(root, 200, bad_every=9)
    stages: list[list[str]] = [[], []]
    results: list = [None, None]

    def run(i: int) -> None:
        def progress(stage: str, done: int, total: int) -> None:
            stages[i].append(stage)

        results[i] = build(root, processes=False, workers=1, progress=progress)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    first, second = results
    assert first is not None and second is not None
    assert first.decoded + second.decoded == 200 - 200 // 9
    assert any("Waiting for another import" in s for s in stages[0] + stages[1])
    same_cache(first, second)
    same_cache(first, clean_build(root, tmp_path / "clean", monkeypatch))
