"""The run store: round trips, migrations, refusals, concurrency, the stale sweep, the writer."""

from __future__ import annotations

import json
import math
import os
import re
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from cnn_lab.engine.errors import RunNotFound, StoreError
from cnn_lab.engine.store import (
    ACTIVE,
    ALL,
    COMPLETED,
    CRASHED,
    ENV_VAR,
    FAILED,
    FINAL,
    MIGRATIONS,
    QUEUED,
    RUNNING,
    SCHEMA_VERSION,
    STOPPED,
    BatchedWriter,
    MetricPoint,
    RunStore,
    SystemSample,
    artifact_kinds,
    resolve_db_path,
)
from tests.waiting import wait_until


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "nested" / "runs.sqlite"


@pytest.fixture
def store(db_path: Path):
    with RunStore.open(db_path) as opened:
        yield opened


def new_running_run(store: RunStore, **mark: object) -> int:
    run_id = store.create_run(spec_json="{}", spec_hash="h")
    store.mark_running(run_id, pid=mark.pop("pid", os.getpid()), device="cpu", **mark)
    return run_id


# ------------------------------------------------------------------------ statuses, paths


def test_statuses_split_into_active_and_final() -> None:
    assert {QUEUED, RUNNING} == ACTIVE
    assert {COMPLETED, STOPPED, FAILED, CRASHED} == FINAL
    assert not ACTIVE & FINAL
    assert ALL == ACTIVE | FINAL


def test_db_path_prefers_explicit_then_env_then_default(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "env.sqlite"))
    assert resolve_db_path(tmp_path / "explicit.sqlite") == tmp_path / "explicit.sqlite"
    assert resolve_db_path() == tmp_path / "env.sqlite"
    monkeypatch.delenv(ENV_VAR)
    default = resolve_db_path()
    assert default.is_absolute() and default.parts[-2:] == ("cnn-lab", "runs.sqlite")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert resolve_db_path("~/x.sqlite") == tmp_path / "x.sqlite"


def test_a_db_url_is_a_sqlite_file_or_a_sentence_never_a_folder_named_after_it(
    tmp_path, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert resolve_db_path(f"sqlite:///{tmp_path}/lab.sqlite") == tmp_path / "lab.sqlite"
    assert resolve_db_path("sqlite:///lab.sqlite") == tmp_path / "lab.sqlite"
    for url in ("postgresql://lab@host/db", "postgres://h/db", "mysql+pymysql://u@h/db"):
        with pytest.raises(StoreError) as refused:
            resolve_db_path(url)
        assert str(refused.value).startswith(f"cnn-lab cannot use {url!r} here")
        monkeypatch.setenv(ENV_VAR, url)
        with pytest.raises(StoreError):
            resolve_db_path()
        monkeypatch.delenv(ENV_VAR)
    assert list(tmp_path.iterdir()) == []


def test_importing_the_store_loads_neither_torch_nor_qt() -> None:
    code = (
        "import sys, cnn_lab.engine.store; print(sorted({'torch', 'PySide6'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ------------------------------------------------------------------------------ round trips


def test_run_round_trip(store: RunStore) -> None:
    experiment = store.find_or_create_experiment("lr sweep", kind="sweep", spec_json='{"n": 3}')
    run_id = store.create_run(
        spec_json='{"lr": 0.1}',
        spec_hash="abc",
        name="first",
        dataset="cifar10",
        model="resnet8",
        device="cpu",
        experiment_id=experiment,
    )
    queued = store.get_run(run_id)
    assert (queued.status, queued.started_at, queued.duration_s) == (QUEUED, None, None)

    store.mark_running(run_id, pid=4321, device="cuda:0", host="box")
    store.update_summary(run_id, {"best_acc": 0.5, "epochs": 1})
    store.finish_run(
        run_id, COMPLETED, reason="Done.", hint="None needed.", summary={"best_acc": 0.9}
    )

    run = store.get_run(run_id)
    assert (run.id, run.name, run.status, run.reason, run.hint) == (
        run_id,
        "first",
        COMPLETED,
        "Done.",
        "None needed.",
    )
    assert (run.spec_json, run.spec_hash, run.dataset, run.model) == (
        '{"lr": 0.1}',
        "abc",
        "cifar10",
        "resnet8",
    )
    assert (run.device, run.host, run.pid, run.experiment_id) == ("cuda:0", "box", 4321, experiment)
    assert run.summary == {"best_acc": 0.9, "epochs": 1}  # merged, not replaced
    assert run.created_at <= run.started_at <= run.heartbeat_at <= run.ended_at
    assert run.duration_s == pytest.approx(run.ended_at - run.started_at)
    as_dict = json.loads(json.dumps(run.to_dict()))
    assert as_dict["summary"] == run.summary and as_dict["duration_s"] == run.duration_s


def test_list_runs_is_newest_first_and_filters(store: RunStore) -> None:
    ids = [store.create_run(spec_json="{}", spec_hash=str(i)) for i in range(3)]
    store.finish_run(ids[1], FAILED, reason="Out of memory.")
    assert [r.id for r in store.list_runs()] == ids[::-1]
    assert [r.id for r in store.list_runs(status=FAILED)] == [ids[1]]
    assert [r.id for r in store.list_runs(limit=1, offset=1)] == [ids[1]]


def test_missing_run_is_a_sentence(store: RunStore) -> None:
    with pytest.raises(RunNotFound, match=re.escape(f"There is no run 999 in {store.path}.")):
        store.get_run(999)
    with pytest.raises(RunNotFound):
        store.mark_running(999, pid=1, device="cpu")


def test_metrics_samples_and_artifacts_round_trip(store: RunStore) -> None:
    run_id = store.create_run(spec_json="{}", spec_hash="h")
    store.add_metrics(
        [
            MetricPoint(run_id, 2, 0, "loss", 0.5, 10.0),
            MetricPoint(run_id, 1, 0, "loss", 1.0, 9.0),
            MetricPoint(run_id, 3, 1, "loss", math.nan, 11.0),
            MetricPoint(run_id, 1, 0, "acc", math.inf, 9.0),
        ]
    )
    loss = store.metrics(run_id, "loss")
    assert [(p.step, p.epoch, p.value, p.time) for p in loss[:2]] == [
        (1, 0, 1.0, 9.0),
        (2, 0, 0.5, 10.0),
    ]
    assert loss[2].step == 3 and math.isnan(loss[2].value)  # NaN is stored as NULL, read as NaN
    assert store.metrics(run_id, "acc")[0].value == math.inf
    assert store.metric_keys(run_id) == {"acc": 1, "loss": 3}

    store.write_batch(
        run_id,
        [],
        [SystemSample(run_id, 2.0, "gpu_util", 80.0), SystemSample(run_id, 1.0, "gpu_util", 70.0)],
    )
    assert store.system_samples(run_id, "gpu_util") == [
        SystemSample(run_id, 1.0, "gpu_util", 70.0),
        SystemSample(run_id, 2.0, "gpu_util", 80.0),
    ]

    artifact = store.add_artifact(
        run_id, path=Path("/ckpt/last.pt"), kind="checkpoint", sha256="ff", bytes=12
    )
    [row] = store.artifacts(run_id)
    assert row["id"] == artifact
    assert (row["path"], row["kind"], row["sha256"], row["bytes"]) == (
        "/ckpt/last.pt",
        "checkpoint",
        "ff",
        12,
    )


def test_has_artifact_looks_up_one_kind_of_one_run(store: RunStore) -> None:
    run_id = store.create_run(spec_json="{}", spec_hash="h")
    other = store.create_run(spec_json="{}", spec_hash="h")
    last = artifact_kinds.checkpoint_kind("last")
    store.set_artifact(run_id, path=Path("/r/last.ckpt"), kind=last, sha256="aa", bytes=1)
    store.add_artifact(
        other, path=Path("/o/w.safetensors"), kind=artifact_kinds.WEIGHTS, sha256="bb", bytes=2
    )
    assert last == artifact_kinds.LAST_CHECKPOINT
    assert store.has_artifact(run_id, artifact_kinds.LAST_CHECKPOINT)
    assert not store.has_artifact(run_id, artifact_kinds.WEIGHTS)  # the other run's only
    assert store.has_artifact(other, artifact_kinds.WEIGHTS)
    assert not store.has_artifact(other, artifact_kinds.checkpoint_kind("best"))


def test_finish_run_rejects_statuses_that_are_not_final(store: RunStore) -> None:
    run_id = new_running_run(store)
    for status in (QUEUED, RUNNING, "done"):
        with pytest.raises(ValueError, match="can only finish as"):
            store.finish_run(run_id, status)
    assert store.get_run(run_id).status == RUNNING


def test_mark_crashed_only_touches_active_runs(store: RunStore) -> None:
    queued = store.create_run(spec_json="{}", spec_hash="h")
    finished = store.create_run(spec_json="{}", spec_hash="h")
    store.finish_run(finished, STOPPED, reason="Stopped by you.")
    assert store.mark_crashed_if_active(queued, "The job process died.") is True
    assert store.mark_crashed_if_active(finished, "The job process died.") is False
    assert (store.get_run(queued).status, store.get_run(queued).reason) == (
        CRASHED,
        "The job process died.",
    )
    assert (store.get_run(finished).status, store.get_run(finished).reason) == (
        STOPPED,
        "Stopped by you.",
    )


# ------------------------------------------------------------------- opening and migrations


def test_open_migrates_once_and_uses_wal(db_path: Path) -> None:
    with RunStore.open(db_path) as store:
        assert store.integrity_ok()
    first = (
        sqlite3.connect(db_path)
        .execute("SELECT version, name, applied_at FROM migrations")
        .fetchall()
    )
    assert [(v, n) for v, n, _ in first] == [(m.version, m.name) for m in MIGRATIONS]
    assert first[-1][0] == SCHEMA_VERSION

    with RunStore.open(db_path):
        pass
    again = (
        sqlite3.connect(db_path)
        .execute("SELECT version, name, applied_at FROM migrations")
        .fetchall()
    )
    assert again == first  # reopening applied nothing
    assert sqlite3.connect(db_path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


# -------------------------------------------------------------------------- stale sweep


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    assert not psutil.pid_exists(process.pid)
    return process.pid


def test_open_crashes_runs_with_a_stale_heartbeat(db_path: Path) -> None:
    with RunStore.open(db_path, stale_after_s=30) as store:
        old = new_running_run(store)
        store.heartbeat(old, now=time.time() - 3600)
        fresh = new_running_run(store)
        remote = new_running_run(store, pid=dead_pid(), host="another-machine")

    with RunStore.open(db_path, stale_after_s=30) as store:
        crashed = store.get_run(old)
        assert crashed.status == CRASHED
        assert re.fullmatch(
            r"The job stopped reporting at \d\d:\d\d:\d\d; its process is gone\.", crashed.reason
        )
        assert crashed.ended_at == crashed.heartbeat_at  # its duration ends when it went quiet
        assert store.get_run(fresh).status == RUNNING
        assert (
            store.get_run(remote).status == RUNNING
        )  # a pid on another machine means nothing here


def test_sweep_crashes_a_run_whose_process_is_gone(store: RunStore) -> None:
    gone = new_running_run(store, pid=dead_pid())
    alive = new_running_run(store)
    no_pid = new_running_run(store)
    store.sqlite_db.execute("UPDATE runs SET pid = NULL WHERE id = ?", [no_pid])

    assert store.sweep_stale() == [gone]
    assert store.get_run(gone).status == CRASHED
    assert store.get_run(alive).status == RUNNING
    assert store.get_run(no_pid).status == RUNNING
    assert store.sweep_stale() == []


# ------------------------------------------------------------------------------- writer


def test_writer_heartbeats_with_nothing_queued(store: RunStore) -> None:
    run_id = new_running_run(store)
    start = store.get_run(run_id).heartbeat_at
    with BatchedWriter(store.path, run_id, interval_s=0.05):
        wait_until(lambda: store.get_run(run_id).heartbeat_at > start)
        first = store.get_run(run_id).heartbeat_at
        wait_until(lambda: store.get_run(run_id).heartbeat_at > first)
    assert store.metric_keys(run_id) == {}


def test_writer_close_flushes_everything(store: RunStore) -> None:
    run_id = new_running_run(store)
    writer = BatchedWriter(store.path, run_id, interval_s=3600)  # it would never tick on its own
    for step in range(250):
        writer.metrics(step, step // 50, {"loss": 1.0 / (step + 1), "acc": step / 250})
        writer.sample(time.time(), "cpu_percent", 12.5)
    assert store.metric_keys(run_id) == {}
    assert writer.close() is True
    assert writer.close() is True  # idempotent
    assert store.metric_keys(run_id) == {"acc": 250, "loss": 250}
    assert len(store.system_samples(run_id, "cpu_percent")) == 250
    with pytest.raises(RuntimeError, match="closed"):
        writer.metric(1, 0, "loss", 1.0)


READER = textwrap.dedent(
    """
    import json, sys, time
    from cnn_lab.engine.store import RunStore

    path, run_id, expected = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    result = {"errors": [], "polls": 0, "torn": 0, "shrank": 0, "keys": {}}
    store = RunStore.open(path)
    print("ready", flush=True)
    deadline, last = time.monotonic() + 30, 0
    while time.monotonic() < deadline:
        try:
            if result["polls"] % 25 == 24:  # opening while the writer writes must work too
                store.close()
                store = RunStore.open(path)
            store.list_runs()
            keys = store.metric_keys(run_id)
            loss = store.metrics(run_id, "loss")
        except Exception as exc:
            result["errors"].append(repr(exc))
            continue
        result["polls"] += 1
        result["torn"] += keys.get("loss", 0) != keys.get("acc", 0)  # one batch, one commit
        result["shrank"] += len(loss) < last
        last = len(loss)
        result["keys"] = keys
        if keys.get("loss") == expected and keys.get("acc") == expected:
            break
    print(json.dumps(result), flush=True)
    """
)


def test_a_reader_process_never_sees_a_locked_store_while_the_writer_writes(
    store: RunStore,
) -> None:
    steps = 3000
    run_id = new_running_run(store)
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(store.path), str(run_id), str(steps)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert reader.stdout.readline().strip() == "ready", reader.stderr.read()
        with BatchedWriter(store.path, run_id, interval_s=0.05) as writer:
            for chunk in range(30):
                for step in range(chunk * 100, (chunk + 1) * 100):
                    writer.metrics(step, chunk, {"loss": 1.0 / (step + 1), "acc": step / steps})
                    writer.sample(float(step), "gpu_util", 90.0)
                store.update_summary(run_id, {f"chunk_{chunk}": chunk})  # a second writer
                if chunk % 3 == 0:
                    assert writer.flush(timeout=10)
            assert writer.close() is True
            assert writer.error is None
        out, err = reader.communicate(timeout=30)
    finally:
        if reader.poll() is None:
            reader.kill()
    result = json.loads(out.strip().splitlines()[-1]) if out.strip() else pytest.fail(err)
    assert result["errors"] == [] and result["polls"] > 1
    assert result["torn"] == 0 and result["shrank"] == 0
    assert result["keys"] == {"acc": steps, "loss": steps}
    assert store.metric_keys(run_id) == {"acc": steps, "loss": steps}
    assert len(store.system_samples(run_id, "gpu_util")) == steps
    assert len(store.get_run(run_id).summary) == 30
