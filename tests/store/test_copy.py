"""A whole store copied between backends: SQLite to PostgreSQL and back gives the same runs,
metrics, tags and artifacts, checked by count and checksum; a non-empty destination is
refused untouched."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import pytest

from cnn_lab.engine.errors import StoreError
from cnn_lab.engine.store import COMPLETED, CRASHED, MetricPoint, RunStore, SystemSample
from cnn_lab.engine.store.paths import run_files_dir
from cnn_lab.engine.store.postgres import PgRunStore
from cnn_lab.engine.store.repository import RunRepository
from cnn_lab.engine.store.tables import TABLES
from cnn_lab.engine.store.transfer import copy_store, digest


def _fill(store: RunRepository) -> dict[str, int]:
    """A store as people leave them: an experiment, runs in several states with tags, notes,
    an archived one, points (a NaN among them), samples, and a weights file."""
    sweep = store.find_or_create_experiment("lr sweep", kind="sweep", spec_json='{"a": 1}')
    ids = {}
    for name in ("first", "second", "third"):
        ids[name] = store.create_run(
            spec_json='{"train": {"lr": 0.01}, "tags": ["base"]}', spec_hash="h" + name,
            name=name, dataset="shapes", model="small_cnn", device="cpu", experiment_id=sweep,
        )  # fmt: skip
    first, second = ids["first"], ids["second"]
    store.mark_running(first, pid=1234, device="cpu", host="box-7")
    store.write_batch(
        first,
        [MetricPoint(first, s, s // 100, "train.loss", 1.0 / (s + 1), 1e9 + s) for s in range(700)]
        + [MetricPoint(first, 700, 7, "train.loss", math.nan, 1e9 + 700)],
        [SystemSample(first, 1e9 + t, "cpu.percent", 12.5 * t) for t in range(5)],
        now=1e9 + 800,
    )
    store.finish_run(first, COMPLETED, reason="done", summary={"best_val_accuracy": 0.93})
    store.mark_crashed_if_active(second, "killed")
    store.set_tags(first, ["base", "Fast"])
    store.set_note(first, "the one to beat")
    store.set_archived([ids["third"]], True)
    weights = run_files_dir(store.path, first) / "model.safetensors"
    weights.parent.mkdir(parents=True, exist_ok=True)
    weights.write_bytes(b"\x00weights" * 100)
    sha = hashlib.sha256(weights.read_bytes()).hexdigest()
    store.set_artifact(first, path=weights, kind="weights", sha256=sha, bytes=800)
    return ids


def _tables(store: RunRepository) -> dict[str, tuple[int, str]]:
    return {table: digest(store.dump_rows(table)) for table in TABLES}


def test_sqlite_to_postgresql_and_back_is_lossless(pg_url: str, tmp_path: Path) -> None:
    with RunStore.open(tmp_path / "a" / "runs.sqlite") as source:
        ids = _fill(source)
        before = _tables(source)
        with PgRunStore.open(pg_url, artifact_root=tmp_path / "lab") as lab:
            result = copy_store(source, lab)
            assert all(t.same for t in result.tables)
            assert result.files == 1 and result.missing_files == ()
            assert _tables(lab) == before
            first = lab.get_run(ids["first"])
            assert first.status == COMPLETED and first.host == "box-7" and first.pid == 1234
            assert first.note == "the one to beat" and set(first.tags) == {"base", "Fast"}
            assert lab.get_run(ids["second"]).status == CRASHED
            assert lab.get_run(ids["third"]).archived
            assert math.isnan(lab.metrics(first.id, "train.loss")[-1].value)
            assert len(lab.curve(first.id, "train.loss", buckets=50)) <= 100  # roll-ups built
            (weights,) = lab.artifacts(first.id)
            assert Path(weights["path"]).read_bytes() == b"\x00weights" * 100
            assert Path(weights["path"]).is_relative_to(tmp_path / "lab")
            new = lab.create_run(spec_json="{}", spec_hash="x")  # ids continue past the copy
            assert new > max(ids.values())
            lab.finish_run(new, COMPLETED)
            lab.delete_run_rows([new])
            with RunStore.open(tmp_path / "b" / "back.sqlite") as back:
                copy_store(lab, back)
                assert _tables(back) == before
                (again,) = back.artifacts(ids["first"])
                assert Path(again["path"]).read_bytes() == b"\x00weights" * 100


def test_a_destination_that_holds_runs_is_refused_untouched(tmp_path: Path) -> None:
    with (
        RunStore.open(tmp_path / "a.sqlite") as source,
        RunStore.open(tmp_path / "b.sqlite") as destination,
    ):
        _fill(source)
        kept = destination.create_run(spec_json="{}", spec_hash="h", name="mine")
        before = _tables(destination)
        with pytest.raises(StoreError, match="empty store only"):
            copy_store(source, destination)
        assert _tables(destination) == before
        assert destination.get_run(kept).name == "mine"


def test_a_recorded_file_that_is_gone_is_named_not_copied(tmp_path: Path) -> None:
    with (
        RunStore.open(tmp_path / "a" / "runs.sqlite") as source,
        RunStore.open(tmp_path / "b" / "runs.sqlite") as destination,
    ):
        ids = _fill(source)
        (weights,) = source.artifacts(ids["first"])
        Path(weights["path"]).unlink()
        result = copy_store(source, destination)
        assert result.files == 0 and result.missing_files == (
            f"runs-files/run-{ids['first']}/model.safetensors",
        )


def test_cli_db_copy_prints_each_table_checked_and_refuses_a_second_copy(
    pg_url: str, tmp_path: Path
) -> None:
    from tests.engine.test_cli import invoke

    source = tmp_path / "mine" / "runs.sqlite"
    with RunStore.open(source) as store:
        ids = _fill(store)
        before = _tables(store)
    lab = f"{pg_url}&artifacts={tmp_path / 'lab-files'}"
    done = invoke(["db", "copy", str(source), lab])
    assert done.code == 0, done
    assert "copied and checked" in done.out and "DIFFERENT" not in done.out
    metrics_line = next(line for line in done.out.splitlines() if line.startswith("metrics"))
    assert "701 rows" in metrics_line and "same" in metrics_line
    with PgRunStore.open(pg_url, artifact_root=tmp_path / "lab-files") as copied:
        assert _tables(copied) == before
        assert Path(copied.artifacts(ids["first"])[0]["path"]).is_file()
    again = invoke(["db", "copy", str(source), lab])
    assert again.code != 0 and "empty store only" in again.err
    assert "password" not in again.err
