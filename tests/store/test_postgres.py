"""What only the PostgreSQL run store does: addresses and logins, other applications'
databases, concurrent writers on several connections, the lease on the server's clock, and
answers that match the SQLite store's for the same runs.

The behaviour both backends share is in test_contract.py; these run against the throwaway
cluster of conftest.py, one fresh database per test.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from cnn_lab.engine.errors import StoreError
from cnn_lab.engine.store import CRASHED, RUNNING, MetricPoint, RunStore, SystemSample
from cnn_lab.engine.store.postgres import PgRunStore
from cnn_lab.engine.store.postgres.schema import MIGRATIONS, SCHEMA_VERSION
from cnn_lab.engine.store.repository import RunRepository
from cnn_lab.engine.store.rollups import ROLLUP_STEPS
from cnn_lab.engine.store.run_query import RunQuery
from tests.store.pg_cluster import BIN_ENV, Cluster, MissingServer, find_bin
from tests.waiting import wait_until

SPEC = '{"train": {"lr": 0.01, "batch_size": 64}, "dataset": {"source": "sample:shapes"}}'


@pytest.fixture
def store(pg_url: str, tmp_path: Path) -> Iterator[PgRunStore]:
    with PgRunStore.open(pg_url, artifact_root=tmp_path) as opened:
        yield opened


def _tables(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'public' ORDER BY table_name"
        ).fetchall()
    return [row[0] for row in rows]


def _server_now(url: str) -> float:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT extract(epoch FROM clock_timestamp())::float8").fetchone()
    assert row is not None
    return float(row[0])


def test_the_schema_records_sqlites_migration_versions(pg_url: str, tmp_path: Path) -> None:
    with PgRunStore.open(pg_url, artifact_root=tmp_path) as opened:
        assert opened.integrity_ok()
        assert opened.path.parent == tmp_path and opened.path.is_file()
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute("SELECT version, name FROM migrations ORDER BY version").fetchall()
    from cnn_lab.engine.store.schema import MIGRATIONS as SQLITE_MIGRATIONS

    assert rows == [(m.version, m.name) for m in SQLITE_MIGRATIONS]
    assert [m.version for m in MIGRATIONS] == [version for version, _ in rows]


# ------------------------------------------------------------- refusing and reaching


def test_another_applications_database_is_refused_and_left_untouched(
    pg_url: str, tmp_path: Path
) -> None:
    with psycopg.connect(pg_url) as conn:
        conn.execute("CREATE TABLE orders (id SERIAL PRIMARY KEY, total NUMERIC)")
        conn.execute("INSERT INTO orders (total) VALUES (12.5)")
    with pytest.raises(StoreError, match="another application's tables \\(orders\\)") as caught:
        PgRunStore.open(pg_url, artifact_root=tmp_path)
    assert "Nothing in it was changed" in str(caught.value)
    assert _tables(pg_url) == ["orders"]
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT total FROM orders").fetchall() == [(12.5,)]


def test_a_store_of_a_newer_cnn_lab_is_refused(pg_url: str, tmp_path: Path) -> None:
    PgRunStore.open(pg_url, artifact_root=tmp_path).close()
    with psycopg.connect(pg_url) as conn:
        conn.execute(
            "INSERT INTO migrations VALUES (%s, 'from the future', 0)", [SCHEMA_VERSION + 1]
        )
    with pytest.raises(StoreError, match="newer cnn-lab"):
        PgRunStore.open(pg_url, artifact_root=tmp_path)


def test_a_wrong_password_is_refused_with_a_sentence_that_hides_it(
    pg_cluster: Cluster, tmp_path: Path
) -> None:
    role = pg_cluster.ensure_password_role("right-horse")
    pg_cluster.new_database(owner=role)
    dbname = f"t_{_last_number(pg_cluster)}"
    wrong = pg_cluster.url(dbname, user=role, password="wrong-battery")
    with pytest.raises(StoreError) as caught:
        PgRunStore.open(wrong, artifact_root=tmp_path)
    message = str(caught.value)
    assert "refused the password" in message and role in message and dbname in message
    assert "wrong-battery" not in message and "right-horse" not in message
    right = pg_cluster.url(dbname, user=role, password="right-horse")
    with PgRunStore.open(right, artifact_root=tmp_path) as opened:
        assert opened.integrity_ok()


def _last_number(cluster: Cluster) -> int:
    with cluster.admin() as conn:
        rows = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 't\\_%'")
        return max(int(name.removeprefix("t_")) for (name,) in rows)


def test_an_unreachable_server_a_missing_database_and_a_bad_address_are_told_apart(
    pg_cluster: Cluster, tmp_path: Path
) -> None:
    nowhere = tmp_path / "no-server-here"
    nowhere.mkdir()
    with pytest.raises(StoreError, match="could not reach the PostgreSQL server") as caught:
        PgRunStore.open(f"postgresql://cnnlab@/x?host={nowhere}", artifact_root=tmp_path)
    assert str(nowhere) in str(caught.value)
    with pytest.raises(StoreError, match="There is no database 'absent'"):
        PgRunStore.open(pg_cluster.url("absent"), artifact_root=tmp_path)
    with pytest.raises(StoreError, match="not a PostgreSQL address") as caught:
        PgRunStore.open("postgresql://lab:s3cret@host:notaport/db", artifact_root=tmp_path)
    assert "s3cret" not in str(caught.value)


def test_a_connection_the_server_ended_between_calls_is_replaced(
    store: PgRunStore, pg_cluster: Cluster
) -> None:
    """An administrator's pg_terminate_backend, a restart, an idle timeout: the next call
    opens a new connection instead of failing (a loss during a call fails that call with
    a sentence: tests/store/test_pg_outage.py)."""
    run_id = store.create_run(spec_json=SPEC, spec_hash="h")
    with pg_cluster.admin() as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = 'cnn-lab' AND pid <> pg_backend_pid()"
        )
        wait_until(
            lambda: (
                not conn.execute(
                    "SELECT 1 FROM pg_stat_activity WHERE application_name = 'cnn-lab'"
                ).fetchone()
            )
        )
    assert store.get_run(run_id).id == run_id


# ------------------------------------------------------------------------ concurrency


def _in_threads(count: int, work: Callable[[int], None]) -> None:
    errors: list[BaseException] = []

    def guarded(index: int) -> None:
        try:
            work(index)
        except BaseException as exc:  # reported below, on the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []


def test_several_processes_creating_the_schema_at_once_agree(pg_url: str, tmp_path: Path) -> None:
    def open_once(_index: int) -> None:
        PgRunStore.open(pg_url, artifact_root=tmp_path).close()

    _in_threads(6, open_once)
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT COUNT(*) FROM migrations").fetchone() == (SCHEMA_VERSION,)


def test_two_stores_write_one_runs_metrics_at_once(store: PgRunStore, pg_url: str) -> None:
    """Two connections (a job's writer and, say, a resumed worker) write interleaved steps
    of one run into the same roll-up buckets: nothing is lost, nothing deadlocks."""
    run_id = store.create_run(spec_json=SPEC, spec_hash="h")
    store.mark_running(run_id, pid=1, device="cpu", host="another-host")
    batches, per_batch = 40, 100

    def write(index: int) -> None:
        with PgRunStore.open(pg_url, artifact_root=store.path.parent, sweep=False) as mine:
            for batch in range(batches):
                steps = range(batch * per_batch * 2 + index, (batch + 1) * per_batch * 2, 2)
                points = [MetricPoint(run_id, s, 0, "loss", float(s), 1.0 * s) for s in steps]
                samples = [SystemSample(run_id, float(batch), f"gpu{index}", 1.0)]
                mine.write_batch(run_id, points, samples)

    _in_threads(2, write)
    total = 2 * batches * per_batch
    assert store.metric_keys(run_id) == {"loss": total}
    assert [p.step for p in store.metrics(run_id, "loss")] == list(range(total))
    curve = store.curve(run_id, "loss", buckets=20)
    assert curve[0].step == 0 and curve[-1].step == total - 1
    assert {g.key: g.count for g in store.gauge_stats(run_id)} == {"gpu0": 40, "gpu1": 40}
    with psycopg.connect(pg_url) as conn:
        row = conn.execute(
            "SELECT SUM(points), COUNT(*) FROM metric_rollups WHERE run_id = %s", [run_id]
        ).fetchone()
    assert row == (total, math.ceil(total / ROLLUP_STEPS))


def test_workers_on_several_connections_find_one_experiment(store: PgRunStore, pg_url: str) -> None:
    found: list[int] = []

    def find(_index: int) -> None:
        with PgRunStore.open(pg_url, artifact_root=store.path.parent, sweep=False) as mine:
            found.append(mine.find_or_create_experiment("shared", kind="sweep", spec_json="{}"))

    _in_threads(5, find)
    assert len(set(found)) == 1 and [e["id"] for e in store.experiments("sweep")] == found[:1]


# ---------------------------------------------------------------------------- the lease


@pytest.mark.parametrize("skew_s", [-86_400.0, 86_400.0])
def test_the_lease_runs_on_the_servers_clock_not_the_clients(
    store: PgRunStore, pg_url: str, monkeypatch: pytest.MonkeyPatch, skew_s: float
) -> None:
    """A machine whose clock is a day off neither crashes a live run nor keeps a dead one
    alive: heartbeats without an explicit time and the sweep both read the server's clock."""
    live, dead = (store.create_run(spec_json=SPEC, spec_hash="h") for _ in range(2))
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + skew_s)
    for run_id in (live, dead):
        store.mark_running(run_id, pid=1, device="cpu", host="another-host")
    store.heartbeat(live)
    server = _server_now(pg_url)
    beat = store.get_run(live).heartbeat_at
    assert beat is not None and abs(beat - server) < 60  # the server's time, not time.time()
    store.heartbeat(dead, now=server - 3600)  # its job last reported an hour ago
    store.write_batch(live, [], [])
    assert abs((store.get_run(live).heartbeat_at or 0) - server) < 60
    assert store.sweep_stale() == [dead]
    assert store.get_run(dead).status == CRASHED and store.get_run(live).status == RUNNING


def test_two_sweepers_crash_a_stale_run_once(store: PgRunStore, pg_url: str) -> None:
    run_ids = [store.create_run(spec_json=SPEC, spec_hash="h") for _ in range(20)]
    for run_id in run_ids:
        store.mark_running(run_id, pid=1, device="cpu", host="another-host")
        store.heartbeat(run_id, now=_server_now(pg_url) - 3600)
    swept: list[list[int]] = [[], [], []]

    def sweep(index: int) -> None:
        with PgRunStore.open(pg_url, artifact_root=store.path.parent, sweep=False) as mine:
            swept[index] = mine.sweep_stale()

    _in_threads(3, sweep)
    assert sorted(swept[0] + swept[1] + swept[2]) == run_ids
    assert all(store.get_run(run_id).status == CRASHED for run_id in run_ids)


# ---------------------------------------------------------- the same answers as SQLite


def _fill(repo: RunRepository) -> None:
    specs = [
        ("alpha cats", "cats", "small_cnn", 0.1, 32, ("baseline",), 0.91),
        ("Beta cats", "cats", "resnet18", 0.01, 64, ("Baseline", "wide"), 0.95),
        ("gamma dogs", "dogs", "small_cnn", 0.001, 128, (), None),
        ("delta dogs", "dogs", "resnet18", 0.05, 64, ("wide",), 0.80),
    ]
    for name, dataset, model, lr, batch, tags, best in specs:
        spec = (
            f'{{"tags": {list(tags)!r}, "architecture": {{"preset": "{model}"}}, '
            f'"train": {{"lr": {lr}, "batch_size": {batch}, "channels_last": '
            f"{'true' if batch > 32 else 'false'}}}}}"
        ).replace("'", '"')
        run_id = repo.create_run(spec_json=spec, spec_hash=name, name=name, dataset=dataset,
                                 model=model)  # fmt: skip
        if best is not None:
            repo.update_summary(run_id, {"best_val_accuracy": best, "epochs": batch // 32})
    sweep = repo.find_or_create_experiment("lr", kind="sweep")
    repo.create_run(spec_json=SPEC, spec_hash="e", name="in a sweep", experiment_id=sweep)
    repo.finish_run(2, "completed", summary={"note": "done"})
    repo.finish_run(3, "failed", reason="diverged")
    hidden = repo.create_run(spec_json=SPEC, spec_hash="a", name="archived wide", dataset="dogs")
    repo.set_tags(hidden, ["wide"])
    repo.set_archived([hidden], True)


QUERIES = [
    "", "cats", "#3", "tag:baseline", "tag:WIDE dataset:dogs", "model:resnet", "name:A",
    "lr<0.05", "lr>=0.05", "lr!=0.1", "train.batch_size=64", "channels_last=true",
    "channels_last=false", "architecture.preset=RESNET18", "architecture.preset!=resnet18",
    "summary.best_val_accuracy>0.9", "summary.best_val_accuracy=null",
    "summary.best_val_accuracy!=none", "sort:best_val_accuracy", "sort:-train.lr",
    "sort:name", "sort:-epochs", "sort:duration", "status:completed", "is:archived",
    "is:archived wide", "experiment:1", "sweep", "summary.note=DONE", "dogs sort:-dataset",
]  # fmt: skip


def test_queries_find_the_same_runs_in_the_same_order_as_sqlite(
    store: PgRunStore, tmp_path: Path
) -> None:
    with RunStore.open(tmp_path / "runs.sqlite") as sqlite:
        _fill(sqlite)
        _fill(store)
        for text in QUERIES:
            for descending, sort in ((True, "created"), (False, "name"), (True, "status")):
                query = RunQuery(text=text, descending=descending, sort=sort)
                expected = [r.id for r in sqlite.query_runs(query)]
                assert expected, text  # each query finds something, or it tests little
                assert [r.id for r in store.query_runs(query)] == expected, text
        query = RunQuery(status="failed", include_archived=True)
        assert [r.id for r in store.query_runs(query)] == [r.id for r in sqlite.query_runs(query)]
        keys = ["best_val_accuracy", "absent"]
        expected_summaries = [r.summary for r in sqlite.query_runs(RunQuery(), summary_keys=keys)]
        found = [r.summary for r in store.query_runs(RunQuery(), summary_keys=keys)]
        assert found == expected_summaries
        assert store.tags_in_use() == sqlite.tags_in_use()


def test_exported_rows_page_through_equal_steps_as_sqlite_does(
    store: PgRunStore, tmp_path: Path
) -> None:
    """Rows of one step written twice at one time keep the order they were written in,
    however the export pages them."""
    with RunStore.open(tmp_path / "runs.sqlite") as sqlite:
        for repo in (sqlite, store):
            run_id = repo.create_run(spec_json=SPEC, spec_hash="h")
            for value in (3.0, 1.0, 2.0):
                repo.add_metrics([MetricPoint(run_id, s, 0, k, value + s, 5.0)
                                  for s in range(4) for k in ("b", "a")])  # fmt: skip
                repo.write_batch(run_id, [], [SystemSample(run_id, 1.0, "gpu", value)])
        for batch in (1, 2, 5, 100):
            assert list(store.metric_rows(run_id, batch)) == list(sqlite.metric_rows(run_id))
            assert list(store.sample_rows(run_id, batch)) == list(sqlite.sample_rows(run_id))


def test_missing_server_binaries_are_named_in_the_message(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(BIN_ENV, str(tmp_path))
    with pytest.raises(MissingServer, match="apt-get install -y postgresql"):
        find_bin()


def _curve_values(repo: RunRepository, run_id: int, buckets: int) -> list[tuple[Any, ...]]:
    return [(p.step, p.epoch, p.value, p.time) for p in repo.curve(run_id, "loss", buckets)]


@pytest.mark.parametrize("count", [150, 3_000, 40_000])
def test_curves_are_the_same_as_sqlites(store: PgRunStore, tmp_path: Path, count: int) -> None:
    """Short (whole), medium (grouped by the server) and long (from the roll-ups) curves."""

    def value(step: int) -> float:
        return math.nan if step % 97 == 5 else math.sin(step * 0.37) * (1 + step % 13)

    with RunStore.open(tmp_path / "runs.sqlite") as sqlite:
        for repo in (sqlite, store):
            run_id = repo.create_run(spec_json=SPEC, spec_hash="h")
            points = [MetricPoint(run_id, s, s // 100, "loss", value(s), 10.0 + s)
                      for s in range(count)]  # fmt: skip
            repo.add_metrics(points[: count // 2])
            repo.add_metrics(points[count // 2 :])
        for buckets in (100, 1000):
            expected = _curve_values(sqlite, run_id, buckets)
            found = _curve_values(store, run_id, buckets)
            assert len(found) == len(expected)
            for mine, theirs in zip(found, expected, strict=True):
                assert mine[:2] == theirs[:2] and mine[3] == theirs[3]
                assert (math.isnan(mine[2]) and math.isnan(theirs[2])) or mine[2] == theirs[2]
        assert store.truncate_metrics(run_id, count // 3) == sqlite.truncate_metrics(
            run_id, count // 3
        )
        assert _curve_values(store, run_id, 100) == _curve_values(sqlite, run_id, 100)
