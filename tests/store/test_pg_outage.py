"""A lab's PostgreSQL that goes away mid-run (issue 21): a job keeps its points in memory and
writes them once the server is back, or fails with a sentence after a bounded wait, and
nothing committed before is lost; a store whose server restarted answers again.

Against a real throwaway cluster (pg_cluster.py) of this module's own, stopped with
``pg_ctl stop -m fast`` and started again on the same data, so the session's shared cluster
the other tests use is never taken away.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from cnn_lab.engine.errors import StoreError, StoreUnreachable
from cnn_lab.engine.store import CRASHED, RUNNING, BatchedWriter, SystemSample
from cnn_lab.engine.store.liveness import STORE_WAIT_ENV
from cnn_lab.engine.store.patient import patient
from cnn_lab.engine.store.postgres import PgRunStore
from tests.store.pg_cluster import Cluster, throwaway_cluster
from tests.waiting import wait_until

SPEC = '{"train": {"lr": 0.01}, "dataset": {"source": "sample:shapes"}}'


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """This module's own cluster: its tests stop the server, which must not be the shared one."""
    with throwaway_cluster() as started:
        yield started


@pytest.fixture
def server(cluster: Cluster) -> Iterator[Cluster]:
    """The module's cluster, running at the start and at the end of each test."""
    if not cluster.running:
        cluster.start_server()
    try:
        yield cluster
    finally:
        if not cluster.running:
            cluster.start_server()


@pytest.fixture
def url(server: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A new database; the writer's store finds its artifact root in tmp_path too."""
    monkeypatch.setenv("CNN_LAB_ARTIFACTS", str(tmp_path))
    return server.new_database()


def _running_run(url: str, tmp_path: Path) -> int:
    """A run marked running by this process, as a job marks its own."""
    with PgRunStore.open(url, artifact_root=tmp_path) as store:
        run_id = store.create_run(spec_json=SPEC, spec_hash="h")
        store.mark_running(run_id, pid=os.getpid(), device="cpu")
    return run_id


def test_points_logged_while_the_server_restarts_are_all_written_once(
    server: Cluster, url: str, tmp_path: Path
) -> None:
    run_id = _running_run(url, tmp_path)
    writer = BatchedWriter(url, run_id, interval_s=0.02)
    stop = threading.Event()
    logged: list[int] = []

    def train() -> None:  # the training thread: it never waits on the store
        step = 0
        while not stop.is_set():
            writer.metrics(step, 1, {"loss": 1.0 / (step + 1), "accuracy": step / 1e6})
            writer.sample(float(step), "cpu.percent", float(step % 100))
            logged.append(step)
            step += 1
            time.sleep(0.001)

    trainer = threading.Thread(target=train)
    trainer.start()
    try:
        wait_until(lambda: len(logged) > 50)
        assert writer.flush()  # some points are in before the server goes
        server.stop_server("fast")  # mid-run: batches are being written as it goes
        wait_until(lambda: writer.error is not None, timeout=10)
        assert "Waiting for the server" in str(writer.error)
        during = len(logged)
        wait_until(lambda: len(logged) > during + 50)  # points keep coming meanwhile
        server.start_server()
        wait_until(lambda: writer.error is None, timeout=20)
        after = len(logged)
        wait_until(lambda: len(logged) > after + 50)
    finally:
        stop.set()
        trainer.join()
    assert writer.close(), writer.error
    assert writer.failure is None and writer.pending == 0
    steps = list(range(len(logged)))
    with PgRunStore.open(url, artifact_root=tmp_path) as store:
        for key in ("loss", "accuracy"):
            assert [p.step for p in store.metrics(run_id, key)] == steps, key
        assert [s.time for s in store.system_samples(run_id, "cpu.percent")] == steps
        assert store.get_run(run_id).status == RUNNING  # the lease held: nobody swept it


def test_a_server_that_stays_away_fails_the_writer_and_keeps_what_was_committed(
    server: Cluster, url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(STORE_WAIT_ENV, "0.5")
    run_id = _running_run(url, tmp_path)
    writer = BatchedWriter(url, run_id, interval_s=0.02)
    for step in range(10):
        writer.metrics(step, 1, {"loss": float(step)})
    assert writer.flush()
    server.stop_server("fast")
    for step in range(10, 15):
        writer.metrics(step, 1, {"loss": float(step)})
    wait_until(lambda: writer.failure is not None, timeout=15)
    failure = str(writer.failure)
    assert re.search(r"could not be reached for \d+ s", failure), failure
    assert "everything written before is kept" in failure and STORE_WAIT_ENV in failure
    assert "cnnlab@" in failure  # which store, by its address
    unwritten = re.search(r"with (\d+) points not written", failure)
    assert unwritten is not None, failure
    assert not writer.close(timeout=0.1)
    server.start_server()
    with PgRunStore.open(url, artifact_root=tmp_path) as store:
        kept = [p.step for p in store.metrics(run_id, "loss")]
    assert kept == list(range(len(kept))) and len(kept) >= 10  # the flushed ten, in order
    assert len(kept) + int(unwritten.group(1)) == 15  # the sentence counts what is missing


def test_a_store_whose_server_restarted_answers_again(
    server: Cluster, url: str, tmp_path: Path
) -> None:
    with PgRunStore.open(url, artifact_root=tmp_path) as store:
        run_id = store.create_run(spec_json=SPEC, spec_hash="h")
        server.stop_server("fast")
        with pytest.raises(StoreError, match="could not reach the PostgreSQL server") as caught:
            store.get_run(run_id)
        assert isinstance(caught.value, StoreUnreachable)
        server.start_server()
        assert store.get_run(run_id).id == run_id  # connected again, schema left alone
        # A restart between two calls costs no call: the closed connection is seen first.
        server.stop_server("fast")
        server.start_server()
        store.rename_run(run_id, "after the restart")
        assert store.get_run(run_id).name == "after the restart"


def test_a_connection_dropped_mid_call_fails_that_call_and_the_next_connects_again(
    server: Cluster, url: str, tmp_path: Path
) -> None:
    """What the server did with a call whose connection dropped is unknown, so that call
    fails (a StoreError, never a raw psycopg error) instead of being repeated."""
    with PgRunStore.open(url, artifact_root=tmp_path) as store, psycopg.connect(url) as holder:
        run_id = store.create_run(spec_json=SPEC, spec_hash="h")
        holder.execute("SELECT 1 FROM runs WHERE id = %s FOR UPDATE", [run_id])  # held

        def terminate_the_waiting_call() -> None:
            with server.admin() as admin:
                wait_until(lambda: admin.execute(_WAITING).fetchall(), timeout=10)
                admin.execute(f"SELECT pg_terminate_backend(pid) FROM ({_WAITING}) AS waiting")

        terminator = threading.Thread(target=terminate_the_waiting_call)
        terminator.start()
        try:
            with pytest.raises(StoreError, match=r"connection to the run store .* was lost"):
                store.set_tags(run_id, ["waits for the row"])
        finally:
            terminator.join()
        holder.rollback()
        store.set_tags(run_id, ["written"])
        assert store.get_run(run_id).tags == ("written",)


_WAITING = (
    "SELECT pid FROM pg_stat_activity WHERE application_name = 'cnn-lab' "
    "AND wait_event_type = 'Lock'"
)
"""The store's backend while it waits for the row the test holds."""


def test_a_run_swept_as_crashed_while_the_job_was_away_stops_the_writer(
    server: Cluster, url: str, tmp_path: Path
) -> None:
    """The lease lapsed while the job could not write: whoever swept saw a crashed run, which
    may be resumed elsewhere, so the job stops with a sentence instead of writing on. Ticks
    are driven by flush (an hour's interval), so the sweep lands between two of them."""
    run_id = _running_run(url, tmp_path)
    writer = BatchedWriter(url, run_id, interval_s=3600)
    writer.metrics(0, 1, {"loss": 1.0})
    assert writer.flush()
    server.stop_server("fast")
    writer.metrics(1, 1, {"loss": 0.5})
    assert not writer.flush(timeout=0.5)  # the server is away: kept
    server.start_server()
    with PgRunStore.open(url, artifact_root=tmp_path, sweep=False) as other:
        assert other.sweep_stale(now=time.time() + 3600) == [run_id]  # its heartbeat is old
    assert writer.flush()  # written, then the lease is read back
    wait_until(lambda: writer.failure is not None)
    assert f"Run {run_id} was marked crashed while this job" in str(writer.failure)
    assert "Resume the run" in str(writer.failure)
    writer.metrics(2, 1, {"loss": 0.25})  # what comes after is not written into the run
    assert not writer.close(timeout=0.5)
    with PgRunStore.open(url, artifact_root=tmp_path, sweep=False) as store:
        assert [p.step for p in store.metrics(run_id, "loss")] == [0, 1]
        assert store.get_run(run_id).status == CRASHED


def test_a_batch_that_landed_before_its_connection_dropped_is_not_written_twice(
    server: Cluster, url: str, tmp_path: Path
) -> None:
    """A write whose COMMIT reached the server but whose answer was lost leaves its batch in
    doubt. The test lands the batch itself while the server is back (samples carry the time
    the caller gives, so they are the very same rows), as the lost COMMIT would have; the
    writer reads that back and does not write them again."""
    run_id = _running_run(url, tmp_path)
    writer = BatchedWriter(url, run_id, interval_s=3600)  # ticks only on flush
    batch = [SystemSample(run_id, 1000.0 + i, "gpu.util", float(i)) for i in range(5)]
    server.stop_server("fast")
    for sample in batch:
        writer.sample(sample.time, sample.key, sample.value)
    assert not writer.flush(timeout=0.5)  # failed with the server away: in doubt
    server.start_server()
    with PgRunStore.open(url, artifact_root=tmp_path, sweep=False) as other:
        other.write_batch(run_id, [], batch)  # what the lost COMMIT had done
    writer.sample(2000.0, "gpu.util", 99.0)
    assert writer.close()
    assert writer.failure is None
    with PgRunStore.open(url, artifact_root=tmp_path, sweep=False) as store:
        times = [s.time for s in store.system_samples(run_id, "gpu.util")]
    assert times == [1000.0, 1001.0, 1002.0, 1003.0, 1004.0, 2000.0]


def test_a_jobs_own_calls_wait_for_the_server_then_give_up_with_a_sentence(
    server: Cluster, url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The summary, checkpoint records and the run's end (engine/store/patient.py): made once
    the server is back, within the writer's bound; past it, a sentence that says how long."""
    run_id = _running_run(url, tmp_path)
    store = patient(PgRunStore.open(url, artifact_root=tmp_path))
    try:
        server.stop_server()
        restart = threading.Timer(1.0, server.start_server)
        restart.start()
        store.update_summary(run_id, {"epochs": 3})  # waits for the restart, then is made
        restart.join()
        assert store.get_run(run_id).summary["epochs"] == 3

        server.stop_server()
        with pytest.raises(StoreUnreachable):  # adding a row is never made twice: at once
            store.add_metrics([])
        monkeypatch.setenv(STORE_WAIT_ENV, "0.5")  # bounded: past it, the sentence
        with pytest.raises(StoreUnreachable, match=r"stayed unreachable for \d+ s"):
            store.finish_run(run_id, "completed")
    finally:
        if not server.running:
            server.start_server()
        store.close()
    with PgRunStore.open(url, artifact_root=tmp_path) as check:
        assert check.get_run(run_id).summary["epochs"] == 3  # what was made is kept
