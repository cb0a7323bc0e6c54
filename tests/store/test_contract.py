"""The run store's contract, written once against ``RunRepository`` and run on every backend.

Each backend in ``BACKENDS`` opens a fresh, empty store; every test here holds for all of
them, the way Optuna runs one storage test suite over each of its storages. Only behaviour
the engine and the app rely on is asserted, through the protocol's methods alone: no SQL, no
file layout. Backend-specific behaviour (SQLite's WAL and busy handling, its migrations and
backups) is tested in tests/engine/test_store.py and tests/faults/.
"""

from __future__ import annotations

import inspect
import math
import re
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cnn_lab.engine.errors import RunNotFound, StoreError
from cnn_lab.engine.store import (
    COMPLETED,
    CRASHED,
    FAILED,
    QUEUED,
    RUNNING,
    STOPPED,
    MetricPoint,
    RunStore,
    SystemSample,
)
from cnn_lab.engine.store.repository import RunRepository
from cnn_lab.engine.store.run_query import RunQuery

ROOT = Path(__file__).resolve().parents[2]


def _sqlite(tmp_path: Path, request: pytest.FixtureRequest) -> RunRepository:
    return RunStore.open(tmp_path / "runs.sqlite")


def _postgresql(tmp_path: Path, request: pytest.FixtureRequest) -> RunRepository:
    """A fresh database in the session's throwaway cluster (tests/store/conftest.py), with
    tmp_path as the artifact root; the cluster starts only when a test asks for it."""
    from cnn_lab.engine.store.postgres import PgRunStore

    return PgRunStore.open(request.getfixturevalue("pg_url"), artifact_root=tmp_path)


BACKENDS: dict[str, Callable[[Path, pytest.FixtureRequest], RunRepository]] = {
    "sqlite": _sqlite,
    "postgresql": _postgresql,
}


@pytest.fixture(params=sorted(BACKENDS))
def repo(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunRepository]:
    store = BACKENDS[request.param](tmp_path, request)
    assert isinstance(store, RunRepository)
    with store:
        yield store


def _run(repo: RunRepository, name: str = "r", **kwargs: object) -> int:
    spec = '{"train": {"lr": 0.01, "batch_size": 64}, "dataset": {"source": "sample:shapes"}}'
    return repo.create_run(spec_json=spec, spec_hash="h", name=name, **kwargs)  # type: ignore[arg-type]


def _points(run_id: int, key: str, steps: range, value: Callable[[int], float]) -> list:
    return [MetricPoint(run_id, s, s // 10, key, value(s), 1000.0 + s) for s in steps]


# ------------------------------------------------------------------------ the interface


def test_the_protocol_names_every_public_method_of_the_store_and_no_more() -> None:
    """A method added to a backend but not to the protocol would let callers depend on one
    backend; one in the protocol that a backend lacks would fail at run time."""
    from cnn_lab.engine.store.postgres import PgRunStore

    declared = {
        name
        for name, _ in inspect.getmembers(RunRepository)
        if not name.startswith("_") and name not in {"register"}
    }
    sqlite = {n for n in dir(RunStore) if not n.startswith("_")} - {"open", "sqlite_db"}
    postgres = {n for n in dir(PgRunStore) if not n.startswith("_")} - {"open"}
    assert declared == sqlite == postgres


def test_nothing_outside_the_store_package_reads_its_sqlite_handle() -> None:
    pattern = re.compile(r"\.(sqlite_db|_db)\b")
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for folder in ("engine", "app")
        for path in (ROOT / folder).rglob("*.py")
        if "store" not in path.relative_to(ROOT).parts[1:2]
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]
    assert offenders == []


# --------------------------------------------------------------------------------- runs


def test_a_created_run_reads_back_as_queued_with_what_it_was_given(repo: RunRepository) -> None:
    run_id = _run(repo, "first", dataset="shapes", model="small_cnn", device="cpu")
    record = repo.get_run(run_id)
    assert (record.id, record.name, record.status) == (run_id, "first", QUEUED)
    assert (record.dataset, record.model, record.device) == ("shapes", "small_cnn", "cpu")
    assert record.summary == {} and record.tags == () and not record.archived
    assert record.started_at is None and record.ended_at is None and record.created_at > 0
    assert _run(repo, "second") > run_id


def test_an_unknown_run_is_refused_with_run_not_found(repo: RunRepository) -> None:
    with pytest.raises(RunNotFound):
        repo.get_run(999)
    with pytest.raises(RunNotFound):
        repo.rename_run(999, "x")


def test_a_run_lives_through_running_heartbeats_and_its_end(repo: RunRepository) -> None:
    run_id = _run(repo)
    repo.mark_running(run_id, pid=4321, device="cuda:0", host="box-2")
    running = repo.get_run(run_id)
    assert running.status == RUNNING and running.pid == 4321 and running.host == "box-2"
    assert running.started_at is not None and running.heartbeat_at is not None
    repo.heartbeat(run_id, now=running.heartbeat_at + 5)
    assert repo.get_run(run_id).heartbeat_at == pytest.approx(running.heartbeat_at + 5)
    repo.update_summary(run_id, {"epochs": 1})
    repo.finish_run(run_id, COMPLETED, reason="done", summary={"best_val_accuracy": 0.9})
    ended = repo.get_run(run_id)
    assert ended.status == COMPLETED and ended.reason == "done" and ended.ended_at is not None
    assert ended.summary == {"epochs": 1, "best_val_accuracy": 0.9}
    assert ended.duration_s is not None and ended.duration_s >= 0


def test_summaries_keep_nan_out_and_numpy_like_scalars_in(repo: RunRepository) -> None:
    run_id = _run(repo)

    class Scalar:
        def item(self) -> float:
            return 0.5

    repo.update_summary(run_id, {"acc": Scalar(), "loss": math.nan, "nested": {"a": [1, 2]}})
    summary = repo.get_run(run_id).summary
    assert summary["acc"] == 0.5 and summary["nested"] == {"a": [1, 2]}
    assert summary["loss"] is None or math.isnan(summary["loss"])


def test_rename_note_tags_and_archive(repo: RunRepository) -> None:
    a, b = _run(repo, "a"), _run(repo, "b")
    repo.rename_run(a, "renamed")
    repo.set_note(a, "a note")
    repo.set_tags(a, ["baseline", "fast", "baseline"])
    repo.set_tags(b, ["fast"])
    repo.set_archived([b], True)
    record = repo.get_run(a)
    assert (record.name, record.note) == ("renamed", "a note")
    assert sorted(record.tags) == ["baseline", "fast"]
    assert repo.get_run(b).archived
    assert dict(repo.tags_in_use()) == {"baseline": 1, "fast": 2}
    repo.set_tags(a, [])
    assert dict(repo.tags_in_use()) == {"fast": 1}
    repo.set_archived([b], False)
    assert not repo.get_run(b).archived


def test_listing_filters_by_status_and_pages(repo: RunRepository) -> None:
    ids = [_run(repo, f"r{i}") for i in range(5)]
    repo.finish_run(ids[1], FAILED, reason="bad")
    assert {r.id for r in repo.list_runs()} == set(ids)
    assert [r.id for r in repo.list_runs(status=FAILED)] == [ids[1]]
    first, second = repo.list_runs(limit=2), repo.list_runs(limit=2, offset=2)
    assert len(first) == len(second) == 2 and not {r.id for r in first} & {r.id for r in second}


def test_a_query_filters_by_words_fields_tags_and_spec_values(repo: RunRepository) -> None:
    cats = _run(repo, "cats long", dataset="cats")
    dogs = _run(repo, "dogs", dataset="dogs")
    repo.set_tags(dogs, ["baseline"])
    repo.finish_run(cats, COMPLETED, summary={"best_val_accuracy": 0.95})
    repo.finish_run(dogs, COMPLETED, summary={"best_val_accuracy": 0.7})
    repo.set_archived([_run(repo, "hidden")], True)

    def ids(text: str, **kwargs: object) -> list[int]:
        return [r.id for r in repo.query_runs(RunQuery(text=text, **kwargs))]  # type: ignore[arg-type]

    assert sorted(ids("")) == [cats, dogs]  # the archived run is hidden
    assert ids("cats") == [cats] and ids("tag:baseline") == [dogs]
    assert ids("summary.best_val_accuracy>0.9") == [cats]
    assert sorted(ids("lr<0.1")) == [cats, dogs] and ids("lr>0.1") == []
    assert ids("sort:best_val_accuracy", descending=False)[:2] == [dogs, cats]
    assert len(ids("is:archived")) == 1


def test_deleting_runs_removes_their_points_and_refuses_an_active_one(
    repo: RunRepository,
) -> None:
    done, active = _run(repo), _run(repo)
    repo.add_metrics(_points(done, "loss", range(10), float))
    repo.finish_run(done, STOPPED)
    repo.mark_running(active, pid=1, device="cpu")
    with pytest.raises(StoreError, match="still queued or running"):
        repo.delete_run_rows([done, active])
    assert repo.get_run(done).status == STOPPED  # refused as a whole: nothing deleted
    assert repo.delete_run_rows([done]) == [done]
    with pytest.raises(RunNotFound):
        repo.get_run(done)
    assert repo.metrics(done, "loss") == [] and repo.keys_logged([done]) == []


def test_queue_again_and_unqueue_give_the_record_back(repo: RunRepository) -> None:
    run_id = _run(repo)
    assert repo.queue_again(run_id) is None  # queued already: not ended
    repo.finish_run(run_id, STOPPED, reason="asked")
    assert repo.queue_again(run_id) == STOPPED
    assert repo.get_run(run_id).status == QUEUED
    assert repo.unqueue(run_id, STOPPED)
    record = repo.get_run(run_id)
    assert record.status == STOPPED and record.reason == "asked"
    assert not repo.unqueue(run_id, STOPPED)  # not queued any more


def test_crashing_only_an_active_run(repo: RunRepository) -> None:
    active, ended = _run(repo), _run(repo)
    repo.finish_run(ended, COMPLETED)
    assert repo.mark_crashed_if_active(active, "killed")
    assert not repo.mark_crashed_if_active(ended, "killed")
    assert repo.get_run(active).status == CRASHED and repo.get_run(ended).status == COMPLETED


def test_a_run_whose_heartbeat_grew_old_is_swept_as_crashed(repo: RunRepository) -> None:
    """The lease: a run on another host whose heartbeat is older than the store's allowance
    is crashed by whoever looks next; a fresh one is left alone."""
    old, fresh = _run(repo), _run(repo)
    for run_id in (old, fresh):
        repo.mark_running(run_id, pid=1, device="cpu", host="another-host")
    beat = repo.get_run(fresh).heartbeat_at
    assert beat is not None
    repo.heartbeat(old, now=beat - 3600)
    repo.heartbeat(fresh, now=beat)
    assert repo.sweep_stale(now=beat + 1) == [old]
    assert repo.get_run(old).status == CRASHED and repo.get_run(fresh).status == RUNNING
    assert "stopped reporting" in (repo.get_run(old).reason or "")


def test_a_run_of_this_host_whose_process_is_gone_is_swept(repo: RunRepository) -> None:
    import subprocess
    import sys

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    run_id = _run(repo)
    repo.mark_running(run_id, pid=int(gone.stdout), device="cpu", host=socket.gethostname())
    assert repo.sweep_stale() == [run_id]


# ------------------------------------------------------------------------------ metrics


def test_metrics_come_back_in_step_order_with_nan_kept(repo: RunRepository) -> None:
    run_id = _run(repo)
    repo.add_metrics(_points(run_id, "loss", range(9, -1, -1), lambda s: 1.0 / (s + 1)))
    repo.add_metrics([MetricPoint(run_id, 10, 1, "loss", math.nan, 2000.0)])
    points = repo.metrics(run_id, "loss")
    assert [p.step for p in points] == list(range(11))
    assert math.isnan(points[-1].value) and points[0].value == 1.0
    last = repo.last_metric(run_id, "loss")
    assert last is not None and last.step == 10
    assert repo.last_metric(run_id, "absent") is None
    assert repo.metric_keys(run_id) == {"loss": 11}
    assert repo.best_metric(run_id, "loss") == 1.0
    assert repo.best_metric(run_id, "loss", highest=False) == pytest.approx(0.1)
    assert repo.best_metric(run_id, "absent") is None


def test_a_batch_writes_points_samples_and_the_heartbeat_together(repo: RunRepository) -> None:
    run_id = _run(repo)
    repo.mark_running(run_id, pid=1, device="cpu")
    samples = [SystemSample(run_id, 1000.0 + i, "cpu.percent", 10.0 * i) for i in range(4)]
    repo.write_batch(run_id, _points(run_id, "loss", range(3), float), samples, now=5e9)
    assert len(repo.metrics(run_id, "loss")) == 3
    assert [s.value for s in repo.system_samples(run_id, "cpu.percent")] == [0, 10, 20, 30]
    assert repo.get_run(run_id).heartbeat_at == 5e9
    (gauge,) = repo.gauge_stats(run_id)
    assert (gauge.key, gauge.count, gauge.low, gauge.high) == ("cpu.percent", 4, 0.0, 30.0)
    assert gauge.mean == pytest.approx(15.0) and gauge.first_time == 1000.0
    assert list(repo.sample_rows(run_id, batch=3)) == [
        ("cpu.percent", 1000.0 + i, 10.0 * i) for i in range(4)
    ]


def test_truncating_drops_the_points_past_a_step(repo: RunRepository) -> None:
    run_id = _run(repo)
    repo.add_metrics(_points(run_id, "loss", range(100), float))
    assert repo.truncate_metrics(run_id, after_step=59) == 40
    assert repo.last_metric(run_id, "loss").step == 59  # type: ignore[union-attr]
    assert repo.curve(run_id, "loss")[-1].step == 59


def test_a_long_curve_is_downsampled_with_its_extremes(repo: RunRepository) -> None:
    run_id = _run(repo)
    spike = 7_777
    repo.add_metrics(
        _points(run_id, "loss", range(20_000), lambda s: 50.0 if s == spike else 1.0 / (s + 1))
    )
    curve = repo.curve(run_id, "loss", buckets=100)
    assert 100 <= len(curve) <= 200
    assert [p.step for p in curve] == sorted(p.step for p in curve)
    assert max(p.value for p in curve) == 50.0 and curve[0].step == 0
    assert repo.curve(run_id, "absent") == []
    short = _run(repo)
    repo.add_metrics(_points(short, "loss", range(50), float))
    assert repo.curve(short, "loss") == repo.metrics(short, "loss")


def test_keys_logged_and_rows_streamed_for_export(repo: RunRepository) -> None:
    a, b = _run(repo), _run(repo)
    repo.add_metrics(_points(a, "train.loss", range(5), float))
    repo.add_metrics(_points(b, "val.accuracy", range(2), float))
    assert repo.keys_logged([a, b]) == ["train.loss", "val.accuracy"]
    assert repo.keys_logged([b]) == ["val.accuracy"] and repo.keys_logged([]) == []
    rows = list(repo.metric_rows(a, batch=2))
    assert rows == [(a, "train.loss", s, s // 10, float(s), 1000.0 + s) for s in range(5)]


# ---------------------------------------------------------- artifacts and experiments


def test_artifacts_come_back_with_absolute_paths(repo: RunRepository, tmp_path: Path) -> None:
    run_id = _run(repo)
    inside = repo.path.parent / "runs-files" / f"run-{run_id}" / "weights.safetensors"
    outside = tmp_path.parent / "elsewhere" / "export.onnx"
    repo.add_artifact(run_id, path=inside, kind="weights", sha256="a" * 64, bytes=10)
    repo.add_artifact(run_id, path=outside, kind="export", sha256="b" * 64, bytes=20)
    found = {a["kind"]: a for a in repo.artifacts(run_id)}
    assert Path(found["weights"]["path"]) == inside and Path(found["export"]["path"]) == outside
    assert repo.has_artifact(run_id, "weights") and not repo.has_artifact(run_id, "checkpoint")
    for n in range(3):
        repo.set_artifact(run_id, path=inside.with_name("last.ckpt"), kind="checkpoint",
                          sha256=str(n) * 64, bytes=n)  # fmt: skip
    checkpoints = [a for a in repo.artifacts(run_id) if a["kind"] == "checkpoint"]
    assert len(checkpoints) == 1 and checkpoints[0]["bytes"] == 2


def test_an_experiment_is_found_or_created_once_per_kind_and_name(repo: RunRepository) -> None:
    sweep = repo.find_or_create_experiment("lr sweep", kind="sweep", spec_json="{}")
    assert repo.find_or_create_experiment("lr sweep", kind="sweep") == sweep
    other = repo.find_or_create_experiment("lr sweep", kind="optimize", spec_json='{"a": 1}')
    assert other != sweep
    repo.find_or_create_experiment("lr sweep", kind="optimize", spec_json='{"a": 2}')
    (stored,) = repo.experiments("optimize")
    assert stored["spec_json"] == '{"a": 2}' and stored["name"] == "lr sweep"
    assert repo.experiment(other, "optimize") == stored
    assert repo.experiment(other, "sweep") is None
    runs = [_run(repo, experiment_id=sweep) for _ in range(3)]
    assert repo.experiment_runs(sweep) == runs and repo.experiment_runs(other) == []


def test_the_store_checks_itself_and_closes_twice(repo: RunRepository) -> None:
    assert repo.integrity_ok()
    assert repo.path.exists()
    repo.close()
    repo.close()
