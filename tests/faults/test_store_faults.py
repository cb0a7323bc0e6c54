"""Faults of the run store: another program's lock, old and new schemas, files it cannot read.

1. Another process holds the write lock: the job's writes wait and retry, the window says
   the store is busy, nothing is dropped, nothing raises. One test holds a real lock from a
   real process for 10 s; the others lock in-process with short timeouts.
2. An older store is backed up, then migrated in one transaction; a migration that fails
   leaves it as it was. A newer one is refused with a sentence.
3. A file that is not a store, or a damaged one, is refused at open with a sentence; the
   window offers to start a new one or restore the backup, and the CLI only refuses.
"""

from __future__ import annotations

import contextlib
import io
import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils
from PySide6.QtCore import QObject, QThreadPool, Signal
from PySide6.QtWidgets import QMessageBox

from cnn_lab.app import gui
from cnn_lab.app.bridge.job_controller import JobController
from cnn_lab.app.main_window import MainWindow
from cnn_lab.app.state import AppState
from cnn_lab.engine.cli.common import run_command
from cnn_lab.engine.cli.main import build_parser
from cnn_lab.engine.errors import StoreError
from cnn_lab.engine.store import (
    COMPLETED,
    CRASHED,
    RUNNING,
    SCHEMA_VERSION,
    BatchedWriter,
    MetricPoint,
    RunStore,
    schema,
)
from cnn_lab.engine.store import store as store_module
from cnn_lab.engine.store.backup import backup_path, backups
from cnn_lab.engine.store.busy import BusyWatch, StoreBusy
from cnn_lab.engine.store.store import UnreadableStore
from tests.app.settle import settle
from tests.waiting import wait_until

LOCK_HELD_S = 10.0
BUSY_LINE = "The run store is busy (another program is writing to it); {} to save…"


def raw_lock(path: Path) -> sqlite3.Connection:
    """Another program's view: a plain connection holding the write lock."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    return conn


def new_running_run(store: RunStore) -> int:
    run_id = store.create_run(spec_json="{}", spec_hash="h")
    store.mark_running(run_id, pid=os.getpid(), device="cpu")
    return run_id


def table_rows(path: Path, table: str) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return conn.execute(f"SELECT * FROM {table} ORDER BY rowid").fetchall()


def moved_aside(folder: Path) -> Path:
    """The one database file moved aside in ``folder`` (its WAL files go with it)."""
    (aside,) = [p for p in folder.glob("runs.sqlite.damaged-*") if not p.name.endswith("-shm")]
    return aside


def old_store(path: Path, version: int) -> None:
    """A store as a cnn-lab at schema ``version`` left it: two runs, metrics, a tagged spec."""
    db = sqlite_utils.Database(path)
    db.enable_wal()
    with db.conn:
        for migration in schema.MIGRATIONS[:version]:
            schema.apply_migration(db, migration)
        for run_id in (1, 2):
            db.execute(
                "INSERT INTO runs (id, name, status, spec_json, spec_hash, created_at) "
                "VALUES (?, ?, 'completed', ?, 'h', ?)",
                [run_id, f"run {run_id}", '{"tags": ["baseline"]}', float(run_id)],
            )
            db.conn.executemany(
                "INSERT INTO metrics (run_id, step, epoch, key, value, time) "
                "VALUES (?, ?, 0, 'loss', ?, 0)",
                [(run_id, step, 1.0 / (step + 1)) for step in range(200)],
            )
    db.close()


# ------------------------------------------------------------------ windows without children


class StubWorker(QObject):
    """Stands in for JobWorker: starts no process; the test speaks for the job's pipe."""

    child_started = Signal(int, int)
    events = Signal(int, object)
    job_finished = Signal(int, str, str)

    def __init__(self, run_id: int, spec_json: str, db_path: str, **kwargs: Any) -> None:
        super().__init__(kwargs.get("parent"))
        self.run_id, self.db_path, self.device = run_id, db_path, kwargs.get("device") or "cpu"
        self.pid: int | None = None

    def start(self) -> None:
        with RunStore.open(self.db_path) as store:
            store.mark_running(self.run_id, pid=os.getpid(), device=self.device)

    def request_stop(self, why: str | None = None) -> None:
        self.job_finished.emit(self.run_id, "stopped", "")

    def wait(self, timeout_ms: int = 0) -> bool:
        return True


@pytest.fixture
def stub_window(qtbot, db_path: Path) -> Iterator[tuple[MainWindow, dict[int, StubWorker]]]:  # type: ignore[no-untyped-def]
    workers: dict[int, StubWorker] = {}

    def factory(run_id: int, spec_json: str, db: str, **kwargs: Any) -> StubWorker:
        workers[run_id] = StubWorker(run_id, spec_json, db, **kwargs)
        return workers[run_id]

    controller = JobController(db_path, slots=["cuda:0", "cpu"], worker_factory=factory)
    window = MainWindow(AppState(db_path), controller=controller)
    window.confirm_close = lambda question: True  # type: ignore[method-assign]
    qtbot.addWidget(window)
    yield window, workers
    window.controller.shutdown()
    QThreadPool.globalInstance().waitForDone(10_000)


def start_run(window: MainWindow, device: str = "cpu") -> int:
    spec = window.state.run_spec()
    spec = spec.model_copy(update={"train": spec.train.model_copy(update={"device": device})})
    return window.controller.start(spec)


# ----------------------------------------------------------------- 1. another program's lock

LOCK_HOLDER = textwrap.dedent(
    """
    import sqlite3, sys, time
    conn = sqlite3.connect(sys.argv[1], isolation_level=None)
    conn.execute("BEGIN EXCLUSIVE")
    conn.execute(
        "INSERT INTO experiments (name, kind, created_at) VALUES ('other program', 'group', 0)"
    )
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))  # the other program's long transaction
    conn.execute("COMMIT")
    """
)


def job_writes(db_path: Path, run_id: int, failures: list[BaseException]) -> None:
    """What a job does to the store while training: batched points, heartbeat, summary, end."""
    try:
        with RunStore.open(db_path) as store:
            writer = BatchedWriter(db_path, run_id, interval_s=0.2)
            for step in range(300):
                writer.metrics(step, 0, {"loss": 1.0 / (step + 1), "acc": step / 600})
            store.heartbeat(run_id)  # waits for the lock inside SQLite's busy handler
            store.update_summary(run_id, {"best_val_accuracy": 0.5})
            for step in range(300, 600):
                writer.metrics(step, 1, {"loss": 1.0 / (step + 1), "acc": step / 600})
            if not writer.close():
                raise AssertionError(f"the writer kept points back: {writer.error}")
            store.finish_run(run_id, COMPLETED, summary={"epochs": 2})
    except BaseException as exc:
        failures.append(exc)


def test_a_process_locking_the_store_for_10_s_delays_writes_and_loses_nothing(
    qtbot,  # type: ignore[no-untyped-def]
    stub_window: tuple[MainWindow, dict[int, StubWorker]],
    db_path: Path,
) -> None:
    window, workers = stub_window
    run_id = start_run(window)
    worker = workers[run_id]
    seen: list[StoreBusy] = []

    def relay(event: StoreBusy) -> None:  # what the job's pipe and JobWorker would carry
        seen.append(event)
        worker.events.emit(run_id, [event])

    watch = BusyWatch(relay)
    holder = subprocess.Popen(
        [sys.executable, "-c", LOCK_HOLDER, str(db_path), str(LOCK_HELD_S)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    failures: list[BaseException] = []
    job = threading.Thread(target=job_writes, args=(db_path, run_id, failures))
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        watch.start(run_id)
        job.start()
        qtbot.waitUntil(lambda: not window.store_busy_label.isHidden(), timeout=10_000)
        assert window.store_busy_label.text() == BUSY_LINE.format(f"run {run_id} waits")
        assert holder.poll() is None, "the lock ended before the window's reads"
        # The window reads on while the lock is held (WAL): without waiting at all...
        with RunStore.open(db_path, busy_timeout_ms=0) as reader:
            assert reader.get_run(run_id).status == RUNNING
        window.runs_panel.refresh()
        settle(qtbot, window)  # the store's thread answers the listing
        assert holder.poll() is None, "the lock ended before the window's reads"
        assert window.runs_panel.query_error.isHidden()
        assert run_id in {record.id for record in window.runs_panel.model.records}
        # ...and its own writes wait for the lock instead of failing, on the store's thread:
        # the window goes on answering meanwhile and says what it waits for.
        window.runs_panel.rename_run(run_id, "renamed while locked")
        qtbot.waitUntil(lambda: not window.store_label.isHidden(), timeout=10_000)
        assert window.store_label.text().startswith(
            "Waiting for the run store (a change to the runs)"
        )
        assert holder.poll() is None, "the lock ended before the window's rename waited"
        assert not window.state.store.idle()  # the rename is still waiting for the lock
        qtbot.waitUntil(window.store_busy_label.isHidden, timeout=20_000)
        settle(qtbot, window, timeout=30_000)  # the rename is made, then listed
        assert window.store_label.isHidden()  # the waiting line is gone with the wait
        assert "busy" not in window.runs_panel.detail.text()
        assert {r.id: r.name for r in window.runs_panel.model.records}[run_id] == (
            "renamed while locked"
        )
        job.join(60)
        assert holder.wait(30) == 0, holder.stderr.read() if holder.stderr else ""
    finally:
        watch.stop()
        if holder.poll() is None:
            holder.kill()
            holder.wait()
    assert not job.is_alive() and failures == []
    assert [event.waiting for event in seen] == [True, False] and seen[0].waited_s >= 2.0
    with RunStore.open(db_path) as store:
        record = store.get_run(run_id)
        assert (record.status, record.name) == (COMPLETED, "renamed while locked")
        assert record.summary == {"best_val_accuracy": 0.5, "epochs": 2}
        assert store.metric_keys(run_id) == {"acc": 600, "loss": 600}
        written = store.sqlite_db.execute(
            "SELECT step FROM metrics WHERE run_id = ? AND key = 'loss' ORDER BY rowid", [run_id]
        ).fetchall()
        assert [row[0] for row in written] == list(range(600))  # in order, none twice
        assert [e["name"] for e in store.experiments("group")] == ["other program"]


def test_a_lock_that_outlasts_the_busy_timeout_keeps_the_batch_and_retries(
    db_path: Path,
) -> None:
    with RunStore.open(db_path) as store:
        run_id = new_running_run(store)
        with BatchedWriter(db_path, run_id, interval_s=0.05, busy_timeout_ms=20) as writer:
            lock = raw_lock(db_path)
            try:
                for step in range(100):
                    writer.metric(step, 0, "loss", float(step))
                wait_until(lambda: writer.error is not None)
                assert "is busy" in str(writer.error)
                assert writer.pending == 100 and store.metric_keys(run_id) == {}
                with (
                    RunStore.open(db_path, busy_timeout_ms=20) as impatient,
                    pytest.raises(StoreError, match="is busy"),  # a plain call says so
                ):
                    impatient.create_run(spec_json="{}", spec_hash="h")
            finally:
                lock.execute("ROLLBACK")
            assert writer.flush(timeout=10) is True
            assert writer.error is None
        points = store.metrics(run_id, "loss")
        assert [p.step for p in points] == list(range(100))  # all there, none twice
        assert store.create_run(spec_json="{}", spec_hash="h") == run_id + 1  # usable again


def test_opening_a_locked_store_leaves_the_stale_sweep_for_later(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "SWEEP_WAIT_MS", 20)
    with RunStore.open(db_path, stale_after_s=30) as store:
        stale = new_running_run(store)
        store.heartbeat(stale, now=time.time() - 3600)
    lock = raw_lock(db_path)
    try:
        with RunStore.open(db_path, stale_after_s=30) as store:  # opens, sweeps nothing
            assert store.get_run(stale).status == RUNNING
    finally:
        lock.execute("ROLLBACK")
    with RunStore.open(db_path, stale_after_s=30) as store:
        assert store.get_run(stale).status == CRASHED


def test_the_window_says_a_store_that_stays_locked_in_a_sentence(
    qtbot,  # type: ignore[no-untyped-def]
    stub_window: tuple[MainWindow, dict[int, StubWorker]],
    db_path: Path,
) -> None:
    window, _ = stub_window
    with RunStore.open(db_path) as store:
        run_id = store.create_run(spec_json="{}", spec_hash="h", status=COMPLETED)
        newest = store.create_run(spec_json="{}", spec_hash="n", status=COMPLETED)
    window.runs_panel.refresh()
    settle(qtbot, window)
    assert run_id in {record.id for record in window.runs_panel.model.records}
    assert window.monitor_panel.run_id == newest  # the newest run, selected in Runs
    # As if 15 s had passed: the window's store (on the store link's thread, where it was
    # opened) gives up on the lock at once.
    window.state.store.call(lambda store: store.sqlite_db.execute("PRAGMA busy_timeout = 20"))
    settle(qtbot, window)
    lock = raw_lock(db_path)
    try:
        window.runs_panel.rename_run(run_id, "never")  # returns at once: the window waits not
        settle(qtbot, window)
        assert "is busy" in window.runs_panel.detail.text()  # a sentence the person reads
        assert "Traceback" not in window.runs_panel.detail.text()
        window._show_run_in_monitor(run_id)  # reads still work under the lock
        settle(qtbot, window)
        assert window.monitor_panel.run_id == run_id
        assert "busy" not in window.status_label.text()
    finally:
        lock.execute("ROLLBACK")
    with RunStore.open(db_path) as store:
        assert store.get_run(run_id).name != "never"  # refused, not half made
    window.runs_panel.rename_run(run_id, "afterwards")
    settle(qtbot, window)
    assert {r.id: r.name for r in window.runs_panel.model.records}[run_id] == "afterwards"
    with RunStore.open(db_path) as store:
        assert store.get_run(run_id).name == "afterwards"


def test_the_busy_line_names_each_waiting_run_until_it_clears_or_ends(
    stub_window: tuple[MainWindow, dict[int, StubWorker]],
) -> None:
    window, workers = stub_window
    first, second = start_run(window, "cpu"), start_run(window, "cuda:0")
    label = window.store_busy_label
    assert label.isHidden()
    workers[first].events.emit(first, [StoreBusy(first, True, 2.1)])
    assert not label.isHidden() and label.text() == BUSY_LINE.format(f"run {first} waits")
    workers[second].events.emit(second, [StoreBusy(second, True, 2.4)])
    assert label.text() == BUSY_LINE.format(f"runs {first} and {second} wait")
    workers[first].events.emit(first, [StoreBusy(first, False, 3.0)])
    assert label.text() == BUSY_LINE.format(f"run {second} waits")
    workers[second].job_finished.emit(second, "stopped", "")  # a job that ends waits no more
    assert label.isHidden()


# ------------------------------------------------------------------- 2. old and new schemas


@pytest.mark.parametrize("version", [1, 2])
def test_an_old_store_is_backed_up_then_migrated(
    tmp_path: Path, version: int, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "runs.sqlite"
    old_store(path, version)
    before = {table: table_rows(path, table) for table in ("runs", "metrics", "migrations")}
    with RunStore.open(path) as store:
        assert schema.current_version(store.sqlite_db) == SCHEMA_VERSION
        assert [r.tags for r in store.list_runs()] == [("baseline",), ("baseline",)]
        assert len(store.metrics(2, "loss")) == 200
    copy = backup_path(path, version)
    assert copy.name == f"runs.sqlite.v{version}-backup" and backups(path) == [copy]
    assert {table: table_rows(copy, table) for table in before} == before
    assert f"to {copy} before migrating it" in caplog.text
    written = copy.stat().st_mtime_ns
    RunStore.open(path).close()  # up to date now: no second copy
    assert copy.stat().st_mtime_ns == written and backups(path) == [copy]


def test_a_migration_that_fails_halfway_leaves_the_old_store_usable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "runs.sqlite"
    old_store(path, 2)
    before = table_rows(path, "runs")

    def half_of_v3(db: sqlite_utils.Database) -> None:
        db.execute("ALTER TABLE runs ADD COLUMN note TEXT NOT NULL DEFAULT ''")
        raise RuntimeError("the disk went away")

    broken = schema.Migration(3, "run notes, tags and archiving", half_of_v3)
    monkeypatch.setattr(schema, "MIGRATIONS", (*schema.MIGRATIONS[:2], broken))
    with pytest.raises(StoreError) as caught:
        RunStore.open(path)
    copy = backup_path(path, 2)
    assert str(caught.value).startswith(
        f"The run store at {path} could not be upgraded from schema version 2 to 3 "
        "(RuntimeError: the disk went away). It was left unchanged at version 2; a copy from "
        f"before was saved as {copy}."
    )
    assert table_rows(path, "runs") == before  # no half-added column, every row
    with contextlib.closing(sqlite3.connect(path)) as conn:
        assert conn.execute("SELECT MAX(version) FROM migrations").fetchone() == (2,)
    assert table_rows(copy, "runs") == before

    monkeypatch.undo()  # this cnn-lab's real migrations
    with RunStore.open(path) as store:
        assert schema.current_version(store.sqlite_db) == SCHEMA_VERSION
        assert [r.name for r in store.list_runs()] == ["run 2", "run 1"]


def test_a_store_from_a_newer_cnn_lab_is_refused_with_a_sentence(
    db_path: Path, qtbot, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    RunStore.open(db_path).close()
    with sqlite3.connect(db_path) as conn:
        conn.execute(
            "INSERT INTO migrations VALUES (?, 'from the future', 0)", [SCHEMA_VERSION + 1]
        )
    rows = table_rows(db_path, "migrations")
    with pytest.raises(StoreError, match="written by a newer cnn-lab") as caught:
        RunStore.open(db_path)
    assert str(db_path) in str(caught.value) and "Update cnn-lab" in str(caught.value)
    assert table_rows(db_path, "migrations") == rows and backups(db_path) == []
    # The window says the same in a message box, and opens nothing.
    said: list[str] = []
    monkeypatch.setattr(QMessageBox, "critical", lambda parent, title, text: said.append(text))
    assert gui.create_window(str(db_path)) is None
    assert said == [str(caught.value)]


# ------------------------------------------------------------- 3. files it cannot read


def a_real_store(path: Path) -> None:
    with RunStore.open(path) as store:
        run_id = store.create_run(spec_json="{}", spec_hash="h", status=COMPLETED)
        store.add_metrics(MetricPoint(run_id, s, 0, "loss", 1.0, 0.0) for s in range(20_000))
    # Closing the last connection folds the WAL into the file: the bytes below are all of it.


def overwrite(path: Path, offset: int, size: int) -> None:
    with path.open("r+b") as file:
        file.seek(offset)
        file.write(b"\xa5" * size)


def random_bytes(path: Path) -> None:
    path.write_bytes(b"this is certainly not a SQLite database\n" * 200)


def truncated(path: Path) -> None:
    a_real_store(path)
    os.truncate(path, path.stat().st_size // 2)


def schema_pages_overwritten(path: Path) -> None:
    a_real_store(path)
    overwrite(path, 200, 4 * 4096)  # page 1 after its header, and the next pages


def another_programs_database(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE contacts (name TEXT, phone TEXT)")
        conn.execute("INSERT INTO contacts VALUES ('Ada', '123')")


@pytest.mark.parametrize(
    ("make", "what"),
    [
        (random_bytes, "is not a SQLite database (file is not a database)"),
        (truncated, "is damaged (database disk image is malformed)"),
        (schema_pages_overwritten, "is damaged (database disk image is malformed)"),
    ],
    ids=["random bytes", "truncated", "pages overwritten"],
)
def test_a_file_that_is_no_store_is_refused_at_open_with_a_sentence(
    tmp_path: Path, make: Callable[[Path], None], what: str
) -> None:
    path = tmp_path / "runs.sqlite"
    make(path)
    content = path.read_bytes()
    with pytest.raises(UnreadableStore) as caught:
        RunStore.open(path)
    assert caught.value.message == (
        f"The file at {path} {what}, so cnn-lab cannot use it as its run store. "
        "Nothing in it was changed."
    )
    assert caught.value.path == path
    assert path.read_bytes() == content  # nothing written, nothing moved
    assert backups(path) == []


def test_another_programs_database_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "runs.sqlite"
    another_programs_database(path)
    content = path.read_bytes()
    with pytest.raises(StoreError) as caught:
        RunStore.open(path)
    assert not isinstance(caught.value, UnreadableStore)  # its owner uses it: never moved
    assert caught.value.message == (
        f"The file at {path} is a SQLite database of another program (tables contacts), "
        "not a cnn-lab run store. Nothing in it was changed."
    )
    assert path.read_bytes() == content  # not even switched to WAL mode
    assert table_rows(path, "contacts") == [("Ada", "123")]


def test_damage_deep_in_the_file_is_found_by_the_check_or_where_it_is_read(
    tmp_path: Path,
) -> None:
    path = tmp_path / "runs.sqlite"
    a_real_store(path)
    overwrite(path, path.stat().st_size // 2, 4 * 4096)  # metric pages opening never reads
    with pytest.raises(UnreadableStore, match=r"is damaged \(SQLite's check found: "):
        RunStore.open(path, check=True)
    with (
        RunStore.open(path) as store,  # without the check it opens...
        pytest.raises(UnreadableStore, match=r"is damaged \(database disk image is malformed"),
    ):
        store.metrics(1, "loss")  # ...and says so as a sentence where it reads


def test_the_cli_refuses_an_unreadable_store_in_one_line_and_moves_nothing(
    tmp_path: Path,
) -> None:
    path = tmp_path / "runs.sqlite"
    random_bytes(path)
    out, err = io.StringIO(), io.StringIO()
    code = run_command(build_parser().parse_args(["runs", "list", "--db", str(path)]), out, err)
    assert code == 2 and out.getvalue() == ""
    assert err.getvalue().startswith(f"cnn-lab: The file at {path} is not a SQLite database")
    assert err.getvalue().count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs.sqlite"]


def choose(monkeypatch: pytest.MonkeyPatch, button: str) -> list[list[str]]:
    """Answer the recovery dialog with ``button``; returns the buttons each dialog offered."""
    offered: list[list[str]] = []

    def exec_(box: QMessageBox) -> int:
        offered.append([b.text() for b in box.buttons()])
        next(b for b in box.buttons() if b.text() == button).click()
        return 0

    monkeypatch.setattr(QMessageBox, "exec", exec_)
    return offered


def opened(qtbot, path: Path) -> MainWindow:  # type: ignore[no-untyped-def]
    window = gui.create_window(str(path))
    assert window is not None
    qtbot.addWidget(window)
    window.controller.shutdown()
    QThreadPool.globalInstance().waitForDone(10_000)
    return window


def test_the_window_starts_a_new_store_and_keeps_the_bad_file(
    qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "runs.sqlite"
    random_bytes(path)
    content = path.read_bytes()
    offered = choose(monkeypatch, gui.NEW_DATABASE)
    window = opened(qtbot, path)
    assert offered == [[gui.NEW_DATABASE, gui.QUIT]]  # no backup, so no offer to restore one
    aside = moved_aside(tmp_path)
    assert aside.read_bytes() == content
    assert window.status_label.text() == (
        f"Started a new run store; the unreadable file is now {aside}."
    )
    with RunStore.open(path) as store:
        assert store.list_runs() == [] and store.integrity_ok()


def test_the_window_restores_the_backup_in_place_of_a_damaged_store(
    qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "runs.sqlite"
    old_store(path, 2)
    with RunStore.open(path) as store:  # migrating keeps runs.sqlite.v2-backup
        store.create_run(spec_json="{}", spec_hash="h", name="after the backup")
    overwrite(path, 200, 3000)
    damaged = path.read_bytes()
    offered = choose(monkeypatch, gui.RESTORE_BACKUP)
    window = opened(qtbot, path)
    assert offered == [[gui.NEW_DATABASE, gui.RESTORE_BACKUP, gui.QUIT]]
    aside = moved_aside(tmp_path)
    assert aside.read_bytes() == damaged
    assert backup_path(path, 2).exists()  # still there to restore again
    assert window.status_label.text().startswith("Restored the run store from runs.sqlite.v2-")
    with RunStore.open(path) as store:
        assert [r.name for r in store.list_runs()] == ["run 2", "run 1"]  # the backup's runs
        assert schema.current_version(store.sqlite_db) == SCHEMA_VERSION


def test_quitting_the_dialog_changes_nothing(
    qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "runs.sqlite"
    truncated(path)
    content = path.read_bytes()
    offered = choose(monkeypatch, gui.QUIT)
    assert gui.create_window(str(path)) is None
    assert offered == [[gui.NEW_DATABASE, gui.QUIT]]
    assert path.read_bytes() == content
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs.sqlite"]
