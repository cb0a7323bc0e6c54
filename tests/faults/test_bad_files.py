"""Bad files: full disks, hostile or broken weights and checkpoints, hostile archives and images.

Each case is what the fault issue says a person must see: the previous file intact and no
temporary file left after a full disk; a pickle that never runs and a truncated file that is
"corrupt", never a traceback; a hostile archive or image refused or skipped with the same
sentence on the command line and in the Data panel, and nothing written outside cnn-lab's
import folder.

One tiny real run (module fixture, about two seconds) gives the checkpoints and weights the
loaders are tried on; every other file is built in the test.
"""

from __future__ import annotations

import builtins
import errno
import hashlib
import io
import json
import os
import pickle
import sqlite3
import tarfile
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from cnn_lab.engine.data import archives
from cnn_lab.engine.data.archives import ArchiveLimits
from cnn_lab.engine.errors import UserError
from cnn_lab.engine.jobs.job import run_job
from cnn_lab.engine.models import InputShape, build_model
from cnn_lab.engine.models.weights import load_pretrained
from cnn_lab.engine.specs import RunSpec
from cnn_lab.engine.store import RunStore, run_files_dir
from cnn_lab.engine.store import status as st
from cnn_lab.engine.store import writer as writer_module
from cnn_lab.engine.store.store import MetricPoint
from cnn_lab.engine.train import checkpoint as ck
from cnn_lab.engine.train.events import CheckpointSaved
from tests.engine.image_folders import write_class_folder
from tests.engine.test_cli import Result, assert_refused_in_one_line, invoke
from tests.engine.test_decode import png_header_only

ENOSPC = OSError(errno.ENOSPC, "No space left on device")
SPEC = {
    "dataset": {"source": "sample:shapes", "limit": 200, "image_size": 16, "test_fraction": 0.2},
    "architecture": {"preset": "small_cnn", "width": 0.25},
    "train": {"epochs": 1, "batch_size": 32, "device": "cpu"},
}
STEPS_PER_EPOCH = 4  # 200 images, 20% test, 20% of the rest validation: 128 train, batch 32


def tiny_spec(epochs: int = 1) -> RunSpec:
    return RunSpec.from_dict({**SPEC, "train": {**SPEC["train"], "epochs": epochs}})


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("CNN_LAB_CACHE", str(cache))
    return cache


@dataclass(frozen=True)
class Trained:
    """A finished one-epoch run: its database, id, checkpoints and weights."""

    db: Path
    run_id: int
    files: Path
    spec: RunSpec

    @property
    def shape(self) -> InputShape:
        return InputShape(3, 16, 16, 10)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    root = tmp_path_factory.mktemp("trained")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CNN_LAB_CACHE", str(root / "cache"))
        record = run_job(tiny_spec(), root / "runs.sqlite", sample_system=False)
    assert record is not None and record.status == st.COMPLETED, record
    files = run_files_dir(root / "runs.sqlite", record.id)
    assert {"last.ckpt", "best.ckpt", "model.safetensors"} <= {p.name for p in files.iterdir()}
    return Trained(root / "runs.sqlite", record.id, files, tiny_spec())


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def metric_steps(db: Path, run_id: int, key: str) -> list[int]:
    with RunStore.open(db) as store:
        return [p.step for p in store.metrics(run_id, key)]


# ================================================================ 1. full disk: checkpoints


class _FillsUp:
    """A file whose write puts half the bytes on disk and then finds the disk full."""

    def __init__(self, path: Any, mode: str) -> None:
        self._handle = builtins.open(path, mode)  # noqa: SIM115 - closed by __exit__

    def write(self, data: bytes) -> int:
        self._handle.write(data[: len(data) // 2])
        raise ENOSPC

    def __getattr__(self, name: str) -> Any:
        return getattr(self._handle, name)

    def __enter__(self) -> _FillsUp:
        return self

    def __exit__(self, *exc: object) -> None:
        self._handle.close()


def _full_at_write(monkeypatch: pytest.MonkeyPatch) -> None:
    from cnn_lab.engine.util import safe_files

    monkeypatch.setattr(safe_files, "open", _FillsUp, raising=False)


def _full_at_fsync(monkeypatch: pytest.MonkeyPatch) -> None:
    def disk_full(fd: int) -> None:
        raise ENOSPC

    monkeypatch.setattr(os, "fsync", disk_full)


@pytest.mark.parametrize("where", [_full_at_write, _full_at_fsync], ids=["write", "fsync"])
def test_a_failed_save_leaves_the_previous_checkpoint_and_no_temporary_file(
    trained: Trained,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    where: Callable[[pytest.MonkeyPatch], None],
) -> None:
    folder = tmp_path / "run"
    folder.mkdir()
    path = ck.checkpoint_path(folder, ck.LAST)
    before = (trained.files / "last.ckpt").read_bytes()
    path.write_bytes(before)
    saved = ck.load_checkpoint(path)
    saved.progress.step += 1  # a newer checkpoint than the one on disk

    where(monkeypatch)
    with pytest.raises(OSError, match="No space left"):
        ck.save_checkpoint(path, saved)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert ck.load_checkpoint(path).progress.step == saved.progress.step - 1
    assert [p.name for p in folder.iterdir()] == ["last.ckpt"]  # no .last.ckpt.partial


def test_a_full_disk_during_a_checkpoint_fails_the_run_with_the_reason(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The disk fills after epoch 1's checkpoints: epoch 2's save fails, epoch 1's stays."""
    real_fsync = os.fsync
    calls = {"n": 0}

    def fills_after_two(fd: int) -> None:
        calls["n"] += 1
        if calls["n"] > 2:  # epoch 1 wrote best and last
            raise ENOSPC
        real_fsync(fd)

    saved: dict[str, str] = {}

    def note(event: Any) -> None:
        if isinstance(event, CheckpointSaved):
            saved[event.which] = event.sha256

    monkeypatch.setattr(os, "fsync", fills_after_two)
    record = run_job(tiny_spec(epochs=2), db_path, sample_system=False, emit=note)
    monkeypatch.undo()

    assert record is not None and record.status == st.FAILED
    assert record.reason in {
        "The best checkpoint could not be written: No space left on device.",
        "The last checkpoint could not be written: No space left on device.",
    }
    assert "previous checkpoint is intact" in (record.hint or "")
    folder = run_files_dir(db_path, record.id)
    assert not [p for p in folder.iterdir() if p.name.endswith(".partial")]
    last = ck.checkpoint_path(folder, ck.LAST)
    assert sha256(last) == saved["last"]  # epoch 1's file, byte for byte
    assert ck.load_checkpoint(last).progress.epochs_done == 1
    with RunStore.open(db_path) as store:
        recorded = {a["kind"]: a["sha256"] for a in store.artifacts(record.id)}
    assert recorded["checkpoint.last"] == saved["last"]
    # The metrics trained before the failure are all kept.
    assert metric_steps(db_path, record.id, "train.loss") == list(range(1, 2 * STEPS_PER_EPOCH + 1))


# ============================================================== 1. full disk: metric flush


class _FullDisk:
    """Makes the run store's metric inserts fail as SQLite does on a full disk.

    ``fails(n)`` says whether the n-th insert that carries points (1-based) finds the disk
    full; points of the inserts that went through are kept in ``committed``. Wraps the store's
    one insert path, so the transaction (heartbeat included) rolls back as on a real disk.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch, fails: Callable[[int], bool]) -> None:
        from cnn_lab.engine.store.store import RunStore as Store

        self.fails = fails
        self.calls = 0
        self.failures = 0
        self.committed: list[tuple[int, str]] = []
        self._lock = threading.Lock()
        real = Store._insert_metrics

        def insert(conn: sqlite3.Connection, rows: Any) -> None:
            rows = list(rows)
            if rows:
                with self._lock:
                    self.calls += 1
                    full = self.fails(self.calls)
                    self.failures += full
                if full:
                    raise sqlite3.OperationalError("database or disk is full")
            real(conn, rows)
            with self._lock:
                self.committed.extend((p.step, p.key) for p in rows if isinstance(p, MetricPoint))

        monkeypatch.setattr(Store, "_insert_metrics", staticmethod(insert))


def test_a_full_disk_for_a_while_during_metric_flushes_loses_nothing(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer keeps a failed batch and retries it: every point lands once, in order."""
    disk = _FullDisk(monkeypatch, fails=lambda n: 2 <= n <= 6)
    record = run_job(tiny_spec(epochs=2), db_path, sample_system=False, flush_interval_s=0.02)
    monkeypatch.undo()
    assert disk.failures == 5
    assert record is not None and record.status == st.COMPLETED, record.reason
    steps = list(range(1, 2 * STEPS_PER_EPOCH + 1))
    assert metric_steps(db_path, record.id, "train.loss") == steps
    assert metric_steps(db_path, record.id, "val.accuracy") == [
        STEPS_PER_EPOCH,
        2 * STEPS_PER_EPOCH,
    ]
    assert ck.load_checkpoint(run_files_dir(db_path, record.id) / "last.ckpt").progress.step == 8


DISK_FULL_GIVE_UP_S = 1.0
"""How long the test's writer keeps retrying a full disk before the run fails (see below)."""


def test_a_disk_that_stays_full_fails_the_run_and_keeps_what_was_flushed(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Expected of engine/store/writer.py and engine/jobs/job.py (owned by the store helper).

    The writer keeps the batch and retries; when the disk is still full after the writer's
    ``DISK_FULL_GIVE_UP_S`` (a module constant; 1 s here), the run fails with a reason that
    starts "The disk is full:" and everything flushed before stays in the store. The disk
    here frees itself after 8 s, so a writer that retries forever lets the run complete and
    this test fails in about 10 s instead of hanging.
    """
    monkeypatch.setattr(writer_module, "DISK_FULL_GIVE_UP_S", DISK_FULL_GIVE_UP_S, raising=False)
    full_since: list[float] = []

    def fails(n: int) -> bool:
        if n == 1:
            return False  # the first batch lands
        if not full_since:
            full_since.append(time.monotonic())
        return time.monotonic() - full_since[0] < 8.0

    disk = _FullDisk(monkeypatch, fails)
    record = run_job(tiny_spec(epochs=2), db_path, sample_system=False, flush_interval_s=0.02)
    monkeypatch.undo()
    assert record is not None
    assert record.status == st.FAILED, f"{record.status}: {record.reason}"
    assert (record.reason or "").startswith("The disk is full:"), record.reason
    with RunStore.open(db_path) as store:
        keys = store.metric_keys(record.id)
        kept = sorted((p.step, key) for key in keys for p in store.metrics(record.id, key))
    assert kept == sorted(disk.committed) and kept  # the first batch, nothing half-written


# ===================================================== 2. malicious pickles, truncated files


class _Payload:
    """Unpickling this creates ``marker``: the proof that a loader ran code from a file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.marker), "w"))


def _pickled(marker: Path) -> bytes:
    return pickle.dumps({"model": _Payload(marker), "fc.weight": torch.zeros(1)}, protocol=2)


def _torch_saved(marker: Path) -> bytes:
    buffer = io.BytesIO()
    torch.save({"model": _Payload(marker), "fc.weight": torch.zeros(1)}, buffer)
    return buffer.getvalue()


def _in_process(load: Callable[[Path], object]) -> Callable[[Trained, Path], str]:
    def refuse(trained: Trained, path: Path) -> str:
        with pytest.raises(UserError) as caught:
            load(path)
        return str(caught.value)

    return refuse


def _pretrained(trained: Trained) -> Callable[[Path], object]:
    def load(path: Path) -> object:
        model = build_model(trained.spec.architecture, trained.shape)
        return load_pretrained(model, path)

    return load


def _run_using(trained: Trained, kind: str, path: Path) -> int:
    """A finished run like ``trained`` whose weights (or last checkpoint) are ``path``."""
    with RunStore.open(trained.db) as store:
        like = store.get_run(trained.run_id)
        run_id = store.create_run(spec_json=like.spec_json, spec_hash=like.spec_hash)
        store.finish_run(run_id, st.STOPPED, summary=like.summary)
        if kind == "weights":
            store.add_artifact(run_id, path=path, kind="weights", sha256="-", bytes=0)
    if kind == "checkpoint":
        folder = run_files_dir(trained.db, run_id)
        folder.mkdir(parents=True)
        (folder / "last.ckpt").write_bytes(path.read_bytes())
    return run_id


def _cli(*argv: str, kind: str = "weights") -> Callable[[Trained, Path], str]:
    """Refused through ``cnn-lab ARGV RUN_ID`` on a run whose file is the bad one."""

    def refuse(trained: Trained, path: Path) -> str:
        run_id = _run_using(trained, kind, path)
        image = path.parent / "one.png"
        Image.new("RGB", (16, 16), (200, 30, 30)).save(image)
        words = [w.format(run=run_id, image=image, out=path.parent / "out.pt") for w in argv]
        result = invoke([*words, "--db", str(trained.db)])
        assert_refused_in_one_line(result)
        if kind == "weights":
            assert result.out == ""
        else:  # a resume is a run: it ends failed, with the sentence
            with RunStore.open(trained.db) as store:
                record = store.get_run(run_id)
            assert record.status == st.FAILED and record.reason in result.err
        return result.err

    return refuse


@dataclass(frozen=True)
class Loader:
    """One way cnn-lab reads tensors from a file a person may hand it."""

    filename: str
    good: Callable[[Trained], bytes]
    refuse: Callable[[Trained], Callable[[Trained, Path], str]]


def _checkpoint_bytes(trained: Trained) -> bytes:
    return (trained.files / "last.ckpt").read_bytes()


def _weights_bytes(trained: Trained) -> bytes:
    return (trained.files / "model.safetensors").read_bytes()


def _state_dict_bytes(trained: Trained) -> bytes:
    buffer = io.BytesIO()
    torch.save(build_model(trained.spec.architecture, trained.shape).state_dict(), buffer)
    return buffer.getvalue()


LOADERS: dict[str, Loader] = {
    "checkpoint": Loader("last.ckpt", _checkpoint_bytes, lambda t: _in_process(ck.load_checkpoint)),
    "resume": Loader(
        "last.ckpt",
        _checkpoint_bytes,
        lambda t: _cli("resume", "{run}", kind="checkpoint"),
    ),
    "pretrained.pt": Loader("weights.pt", _state_dict_bytes, lambda t: _in_process(_pretrained(t))),
    "pretrained.safetensors": Loader(
        "weights.safetensors", _weights_bytes, lambda t: _in_process(_pretrained(t))
    ),
    "evaluate": Loader("model.safetensors", _weights_bytes, lambda t: _cli("evaluate", "{run}")),
    "predict": Loader(
        "model.safetensors", _weights_bytes, lambda t: _cli("predict", "{run}", "{image}")
    ),
    "export": Loader(
        "model.safetensors",
        _weights_bytes,
        lambda t: _cli("model", "export", "{run}", "--out", "{out}"),
    ),
}


def _bad_file(tmp_path: Path, name: str, data: bytes) -> Path:
    folder = tmp_path / "given"
    folder.mkdir()
    path = folder / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("payload", [_pickled, _torch_saved], ids=["pickle", "torch.save"])
@pytest.mark.parametrize("loader", list(LOADERS))
def test_a_malicious_pickle_is_refused_and_never_runs(
    trained: Trained, tmp_path: Path, loader: str, payload: Callable[[Path], bytes]
) -> None:
    control = tmp_path / "control"
    pickle.loads(_pickled(control))
    assert control.exists()  # the payload does run when unpickled the unsafe way
    marker = tmp_path / "pwned"
    how = LOADERS[loader]
    path = _bad_file(tmp_path, how.filename, payload(marker))
    sentence = how.refuse(trained)(trained, path)
    assert not marker.exists()
    assert sentence.rstrip().endswith(".") and "Traceback" not in sentence


@pytest.mark.parametrize("loader", list(LOADERS))
def test_a_truncated_file_is_corrupt_not_a_traceback(
    trained: Trained, tmp_path: Path, loader: str
) -> None:
    how = LOADERS[loader]
    data = how.good(trained)
    path = _bad_file(tmp_path, how.filename, data[: len(data) // 2])
    sentence = how.refuse(trained)(trained, path)
    assert "corrupt" in sentence.lower(), sentence
    assert "Traceback" not in sentence


# ============================================== 3. hostile archives and images, CLI and GUI


@dataclass(frozen=True)
class Expect:
    """What both ways in must do: refuse with ``text``, skip ``shown`` for ``text``, or accept
    the file as ``text`` (the Pillow mode the report counts)."""

    outcome: str  # "refused", "skipped" or "accepted"
    text: str
    shown: str = ""


def _good_files() -> dict[str, bytes]:
    """Six small distinct PNGs in two class folders, as archive members."""
    rng = np.random.default_rng(1)
    members = {}
    for label in ("red", "blue"):
        for i in range(3):
            buffer = io.BytesIO()
            pixels = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(buffer, "PNG")
            members[f"ds/{label}/{label}_{i}.png"] = buffer.getvalue()
    return members


def _zip(path: Path, extra: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", method) as zf:
        for name, data in {**_good_files(), **extra}.items():
            zf.writestr(zipfile.ZipInfo(name), data, compress_type=method)
    return path


def _tar_with_symlink(path: Path) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for name, data in _good_files().items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("ds/red/link.png")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        tf.addfile(link)
    return path


def _folder_with(root: Path, name: str, data: bytes) -> Path:
    write_class_folder(root, {"red": 3, "blue": 3}, size=(16, 16))
    (root / "red" / name).write_bytes(data)
    return root


def _encoded(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


def _png() -> bytes:
    pixels = np.random.default_rng(3).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    return _encoded(Image.fromarray(pixels), "PNG")


def _jpeg() -> bytes:
    pixels = np.random.default_rng(2).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    return _encoded(Image.fromarray(pixels), "JPEG")


BAD_INPUTS: dict[str, tuple[Callable[[Path], Path], Expect]] = {
    "zip-dotdot": (
        # From cnn-lab's import folder (cache/imports/NAME-KEY/) three levels up is tmp_path.
        lambda tmp: _zip(tmp / "dotdot.zip", {"../../../escaped.txt": b"gotcha"}),
        Expect("skipped", "path contains '..'", "../../../escaped.txt"),
    ),
    "zip-absolute": (
        lambda tmp: _zip(tmp / "absolute.zip", {str(tmp / "escaped.txt"): b"gotcha"}),
        Expect("skipped", "absolute path", "<tmp>/escaped.txt"),
    ),
    "tar-symlink": (
        lambda tmp: _tar_with_symlink(tmp / "link.tar.gz"),
        Expect("skipped", "symbolic link; only files and folders are unpacked", "ds/red/link.png"),
    ),
    "zip-bomb": (
        lambda tmp: _zip(tmp / "bomb.zip", {"ds/red/zeros.png": bytes(8 * 1024**2)}),
        Expect("refused", "the archive looks like a zip bomb"),
    ),
    "too-many-files": (
        lambda tmp: _zip(tmp / "many.zip", {f"ds/red/{i}.txt": b"x" for i in range(60)}),
        Expect("refused", "holds more than 50 files, which exceeds the limit of 50"),
    ),
    "png-bomb": (
        lambda tmp: _folder_with(tmp / "folder", "bomb.png", png_header_only(100_000, 100_000)),
        Expect("skipped", "decompression bomb: 10,000,000,000 pixels", "red/bomb.png"),
    ),
    "truncated-jpeg": (
        lambda tmp: _folder_with(tmp / "folder", "cut.jpg", _jpeg()[: len(_jpeg()) // 2]),
        Expect("skipped", "truncated or corrupt image data", "red/cut.jpg"),
    ),
    "empty-file": (
        lambda tmp: _folder_with(tmp / "folder", "empty.jpg", b""),
        Expect("skipped", "empty file (0 bytes)", "red/empty.jpg"),
    ),
    "not-an-image": (
        lambda tmp: _folder_with(tmp / "folder", "notes.jpg", b"these are my notes\n" * 20),
        Expect("skipped", "not an image (no known image format)", "red/notes.jpg"),
    ),
    "truncated-png": (
        lambda tmp: _folder_with(tmp / "folder", "cut.png", _png()[: len(_png()) // 2]),
        Expect("skipped", "truncated or corrupt image data", "red/cut.png"),
    ),
    "icon-named-png": (
        lambda tmp: _folder_with(
            tmp / "folder", "icon.png", _encoded(Image.new("RGBA", (16, 16), "red"), "ICO")
        ),
        Expect("skipped", "unsupported image format ICO", "red/icon.png"),
    ),
    "cmyk-jpeg": (
        lambda tmp: _folder_with(
            tmp / "folder",
            "cmyk.jpg",
            _encoded(Image.new("CMYK", (16, 16), (0, 255, 255, 0)), "JPEG"),
        ),
        Expect("accepted", "CMYK"),
    ),
    "16-bit-png": (
        lambda tmp: _folder_with(
            tmp / "folder",
            "deep.png",
            _encoded(Image.fromarray(np.arange(256, dtype=np.uint16).reshape(16, 16) * 257), "PNG"),
        ),
        Expect("accepted", "I;16"),
    ),
    "transparent-png": (
        lambda tmp: _folder_with(
            tmp / "folder",
            "clear.png",
            _encoded(Image.new("RGBA", (16, 16), (255, 0, 0, 0)), "PNG"),
        ),
        Expect("accepted", "RGBA"),
    ),
    "palette-png": (
        lambda tmp: _folder_with(
            tmp / "folder",
            "palette.png",
            _encoded(Image.new("RGB", (16, 16), (10, 200, 90)).convert("P"), "PNG"),
        ),
        Expect("accepted", "P"),
    ),
}


def _snapshot(root: Path, leave_out: tuple[Path, ...]) -> dict[str, tuple[int, int]]:
    """Every file under ``root`` (outside ``leave_out``) with its size and modification time."""
    found = {}
    for path in root.rglob("*"):
        if any(path == skip or skip in path.parents for skip in leave_out):
            continue
        info = path.lstat()
        found[str(path.relative_to(root))] = (info.st_size, info.st_mtime_ns)
    return found


@dataclass
class Outcome:
    refused: str | None  # the sentence, without the "cnn-lab: " of the command line
    skipped: dict[str, str]
    images: int
    modes: dict[str, int]


def _through_the_cli(path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch) -> Outcome:
    monkeypatch.setenv("CNN_LAB_CACHE", str(cache))
    result: Result = invoke(["data", "inspect", str(path), "--size", "16", "--json"])
    assert "Traceback" not in result.err
    if result.code != 0:
        assert_refused_in_one_line(result)
        assert result.code == 2 and result.out == ""
        return Outcome(result.err.removeprefix("cnn-lab: ").rstrip("\n"), {}, 0, {})
    report = json.loads(result.out)
    skipped = {s["path"]: s["reason"] for s in report["skipped"]}
    return Outcome(None, skipped, report["images"], report["modes"])


IMPORT_MS = 60_000


@pytest.fixture
def panel(qtbot, tmp_path: Path) -> Iterator[Any]:  # type: ignore[no-untyped-def]
    """A Data panel that has imported a tiny good folder (its start-up import)."""
    from PySide6.QtCore import QThreadPool

    from cnn_lab.app.panels.data_panel import DataPanel
    from cnn_lab.app.state import AppState
    from cnn_lab.engine.specs import DatasetSpec

    start = write_class_folder(tmp_path / "start", {"red": 3, "blue": 3}, size=(16, 16))
    state = AppState(tmp_path / "gui-runs.sqlite")
    state.update(dataset=DatasetSpec(source=str(start), image_size=16))
    panel = DataPanel(state)
    qtbot.addWidget(panel)
    with qtbot.waitSignal(panel.import_finished, timeout=IMPORT_MS):
        panel.show()
    yield panel
    panel.cancel()
    assert QThreadPool.globalInstance().waitForDone(30_000)


def _through_the_panel(
    qtbot: Any, panel: Any, path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> Outcome:
    """What a drop or an Open button does: ``open_source``, then the import Task's signal."""
    monkeypatch.setenv("CNN_LAB_CACHE", str(cache))
    ended: list[tuple[str, Any]] = []
    panel.import_finished.connect(lambda report: ended.append(("finished", report)))
    panel.import_failed.connect(lambda message: ended.append(("failed", message)))
    panel.open_source(str(path))
    qtbot.waitUntil(lambda: bool(ended), timeout=IMPORT_MS)
    kind, value = ended[0]
    if kind == "failed":
        assert panel.source.currentData() != str(path)  # the previous import stays shown
        return Outcome(value, {}, 0, {})
    skipped = {s.path: s.reason for s in value.skipped}
    return Outcome(None, skipped, value.images, dict(value.modes))


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_a_hostile_or_broken_input_gets_the_same_answer_from_the_cli_and_the_data_panel(
    qtbot: Any, panel: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    build, expect = BAD_INPUTS[case]
    monkeypatch.setattr(archives, "IMPORT_LIMITS", ArchiveLimits(max_files=50))
    given = tmp_path / "given"
    given.mkdir()
    path = build(given)
    caches = (tmp_path / "cache-cli", tmp_path / "cache-gui", tmp_path / "cache")
    leave_out = (*caches, tmp_path / "gui-runs.sqlite")
    before = _snapshot(tmp_path, leave_out)

    cli = _through_the_cli(path, caches[0], monkeypatch)
    gui = _through_the_panel(qtbot, panel, path, caches[1], monkeypatch)

    assert cli == gui
    shown = expect.shown.replace("<tmp>", str(given))
    if expect.outcome == "refused":
        assert cli.refused is not None and expect.text in cli.refused, cli.refused
        assert "Traceback" not in cli.refused and "\n" not in cli.refused
    elif expect.outcome == "skipped":
        assert cli.refused is None
        assert expect.text in cli.skipped.get(shown, ""), cli.skipped
        assert cli.images == 6
    else:
        assert cli.refused is None and cli.skipped == {}
        assert cli.images == 7 and cli.modes.get(expect.text) == 1, cli.modes
    # Nothing was written anywhere but cnn-lab's import folder and image cache.
    assert _snapshot(tmp_path, leave_out) == before
    for cache in caches[:2]:
        written = {p.relative_to(cache).parts[0] for p in cache.rglob("*") if p.is_file()}
        assert written <= {"imports", "images"}, written
        imports = cache / "imports"
        if expect.outcome == "refused":  # and a refused archive leaves nothing there
            assert not imports.exists() or not any(imports.iterdir())
