"""The Runs browser's search, tags, notes, archive and delete, against a real SQLite store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cnn_lab.engine.errors import RunNotFound, StoreError
from cnn_lab.engine.store import MetricPoint, RunStore, run_files_dir
from cnn_lab.engine.store.run_files import delete_runs, run_files
from cnn_lab.engine.store.run_query import QueryError, RunQuery


def _spec(lr: float, batch: int, preset: str = "small_cnn", tags: tuple[str, ...] = ()) -> str:
    return json.dumps(
        {
            "tags": list(tags),
            "architecture": {"preset": preset},
            "train": {"lr": lr, "batch_size": batch, "channels_last": batch > 32},
        }
    )


@pytest.fixture
def store(db_path: Path) -> RunStore:
    with RunStore.open(db_path) as opened:
        rows = [
            ("alpha cats", "cats", "small_cnn", 0.1, 32, "completed", ("baseline",), 0.91),
            ("beta cats", "cats", "resnet18", 0.01, 64, "completed", ("Baseline", "wide"), 0.95),
            ("gamma dogs", "dogs", "small_cnn", 0.001, 128, "failed", (), None),
            ("delta dogs", "dogs", "resnet18", 0.05, 64, "stopped", ("wide",), 0.80),
        ]
        for name, dataset, model, lr, batch, status, tags, best in rows:
            run_id = opened.create_run(
                spec_json=_spec(lr, batch, model, tags),
                spec_hash=name,
                name=name,
                dataset=dataset,
                model=model,
                status=status,
            )
            if best is not None:
                opened.update_summary(run_id, {"best_val_accuracy": best})
        yield opened


def _names(store: RunStore, text: str = "", **kwargs: object) -> list[str]:
    return [r.name for r in store.query_runs(RunQuery(text=text, **kwargs))]  # type: ignore[arg-type]


def test_tags_come_from_the_spec_and_filters_combine(store: RunStore) -> None:
    assert store.get_run(2).tags == ("Baseline", "wide")
    assert _names(store, "tag:baseline") == ["beta cats", "alpha cats"]  # newest first, any case
    assert _names(store, "tag:wide dataset:dogs") == ["delta dogs"]
    assert _names(store, "status:completed model:resnet") == ["beta cats"]
    assert _names(store, status="failed") == ["gamma dogs"]
    assert _names(store, "cats") == ["beta cats", "alpha cats"]  # a word: name, data or model
    assert _names(store, "#3") == ["gamma dogs"]


def test_hyperparameters_compare_as_numbers_and_sort(store: RunStore) -> None:
    # "lr" is a training option, so it means train.lr; 0.05 < 0.1 numerically, not as text.
    assert _names(store, "lr<0.06 sort:lr") == ["gamma dogs", "beta cats", "delta dogs"]
    assert _names(store, "train.batch_size>=64 sort:-train.batch_size") == [
        "gamma dogs",
        "delta dogs",
        "beta cats",
    ]
    assert _names(store, "architecture.preset=RESNET18 sort:id", descending=False) == [
        "beta cats",
        "delta dogs",
    ]
    assert _names(store, "channels_last=true") == ["delta dogs", "gamma dogs", "beta cats"]
    assert _names(store, "lr!=0.1") == ["delta dogs", "gamma dogs", "beta cats"]
    # Results: runs without the value sort last whichever way.
    assert _names(store, "sort:-best_val_accuracy") == [
        "beta cats",
        "alpha cats",
        "delta dogs",
        "gamma dogs",
    ]
    assert _names(store, "summary.best_val_accuracy>0.9", sort="name", descending=False) == [
        "alpha cats",
        "beta cats",
    ]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("status:done", "'done' is not a run status"),
        ("colour:red", "'colour:' is not a filter"),
        ('name:"unclosed', "unclosed quote"),
        ("lr<", "needs a value after <"),
        ("train..lr>1", "is not a setting's path"),
        ("is:deleted", "is:deleted is not a filter"),
    ],
)
def test_a_bad_search_is_refused_with_a_sentence(store: RunStore, text: str, says: str) -> None:
    with pytest.raises(QueryError, match=says):
        store.query_runs(RunQuery(text=text))


def test_a_search_cannot_inject_sql(store: RunStore) -> None:
    assert _names(store, '"name:x\' OR 1=1 --"') == []
    assert _names(store, "lr=\"0.1' OR '1'='1\"") == []
    assert len(_names(store)) == 4  # and nothing was changed


def test_rename_note_tags_and_archive(store: RunStore) -> None:
    store.rename_run(1, "  renamed  ")
    store.set_note(1, "lr too high: diverged at epoch 3\nsecond line")
    store.set_tags(1, ["keep", " keep ", "", "Zeta", "alpha"])
    record = store.get_run(1)
    assert (record.name, record.note, record.tags) == (
        "renamed",
        "lr too high: diverged at epoch 3\nsecond line",
        ("alpha", "keep", "Zeta"),
    )
    assert store.tags_in_use() == [
        ("wide", 2),
        ("Baseline", 1),
        ("Zeta", 1),
        ("alpha", 1),
        ("keep", 1),
    ]
    store.set_archived([1, 2], True)
    assert _names(store) == ["delta dogs", "gamma dogs"]
    assert _names(store, "is:archived") == ["beta cats", "renamed"]
    assert len(_names(store, include_archived=True)) == 4
    store.set_archived([1], False)
    assert "renamed" in _names(store)
    with pytest.raises(RunNotFound):
        store.set_tags(99, ["x"])


def test_delete_takes_the_runs_files_and_keeps_exports_outside(
    store: RunStore, tmp_path: Path
) -> None:
    folder = run_files_dir(store.path, 1)
    (folder / "checkpoints").mkdir(parents=True)
    (folder / "checkpoints" / "last.pt").write_bytes(b"x" * 1000)
    (folder / "weights.safetensors").write_bytes(b"y" * 500)
    exported = tmp_path / "mine.onnx"
    exported.write_bytes(b"z")
    store.add_artifact(
        1, path=str(folder / "weights.safetensors"), kind="weights", sha256="", bytes=500
    )
    store.add_artifact(1, path=str(exported), kind="export.onnx", sha256="", bytes=1)
    store.add_metrics([MetricPoint(1, s, 0, "train.loss", 1.0, 0.0) for s in range(100)])
    assert run_files(store, 1).bytes == 1500

    deleted = delete_runs(store, [1, 3])

    assert deleted.run_ids == [1, 3] and deleted.bytes == 1500 and deleted.kept == [exported]
    assert "Deleted 2 runs and 0.0 MB" in deleted.sentence()
    assert not folder.exists() and exported.exists()
    assert _names(store, include_archived=True) == ["delta dogs", "beta cats"]
    for table in ("metrics", "metric_rollups", "artifacts", "run_tags"):
        count = store.sqlite_db.execute(
            f"SELECT COUNT(*) FROM {table} WHERE run_id = 1"
        ).fetchone()[0]
        assert count == 0, table
    assert store.integrity_ok()


def test_an_active_or_missing_run_is_not_deleted_and_nothing_changes(store: RunStore) -> None:
    running = store.create_run(spec_json="{}", spec_hash="r", name="live", status="running")
    with pytest.raises(StoreError, match=f"Run {running} is still queued or running"):
        delete_runs(store, [2, running])
    with pytest.raises(RunNotFound):
        delete_runs(store, [2, 999])
    assert store.get_run(2).name == "beta cats"


def test_a_v2_store_gets_its_spec_tags_when_migrated(tmp_path: Path) -> None:
    import sqlite_utils

    from cnn_lab.engine.store.schema import MIGRATIONS, apply_migration

    path = tmp_path / "v2.sqlite"
    old = sqlite_utils.Database(path)
    with old.conn:
        for migration in MIGRATIONS[:2]:
            apply_migration(old, migration)
        for spec in (_spec(0.1, 32, tags=("old", "old", "b")), "not json", '{"tags": "x"}'):
            old.execute(
                "INSERT INTO runs (status, spec_json, spec_hash, created_at) "
                "VALUES ('completed', ?, 'h', 0)",
                [spec],
            )
    old.close()
    with RunStore.open(path) as store:
        assert [r.tags for r in store.query_runs(RunQuery(sort="id", descending=False))] == [
            ("b", "old"),
            (),
            (),
        ]
        assert (store.get_run(1).note, store.get_run(1).archived) == ("", False)


def test_a_listing_can_carry_only_the_summary_values_it_shows(store: RunStore) -> None:
    store.update_summary(2, {"evaluation": {"confusion": [[1] * 50] * 50}, "epochs": 7})
    records = store.query_runs(RunQuery(sort="id"), summary_keys=("epochs", "best_val_accuracy"))
    by_id = {r.id: r.summary for r in records}
    assert by_id[2] == {"epochs": 7, "best_val_accuracy": 0.95}
    assert by_id[3] == {}  # no value: no key, so .get() defaults still apply
    assert store.get_run(2).summary["evaluation"]  # a single run still reads it whole


def test_the_cli_lists_what_a_search_finds(store: RunStore) -> None:
    from tests.engine.test_cli import invoke

    db = str(store.path)
    store.set_archived([2], True)
    found = invoke(["runs", "list", "--db", db, "tag:baseline", "--json"])
    assert found.code == 0 and [r["name"] for r in json.loads(found.out)] == ["alpha cats"]
    with_archived = invoke(["runs", "list", "--db", db, "tag:baseline", "--archived", "--json"])
    assert [r["name"] for r in json.loads(with_archived.out)] == ["beta cats", "alpha cats"]
    assert invoke(["runs", "list", "--db", db, "lr>5"]).out == "No run matches.\n"
    refused = invoke(["runs", "list", "--db", db, "status:done"])
    assert refused.code == 2 and refused.err.count("\n") == 1 and "not a run status" in refused.err


def test_the_global_db_option_reaches_every_command(store: RunStore) -> None:
    from tests.engine.test_cli import invoke

    before = invoke(["--db", str(store.path), "runs", "list", "--json"])
    assert [r["name"] for r in json.loads(before.out)] == [
        "delta dogs",
        "gamma dogs",
        "beta cats",
        "alpha cats",
    ]
