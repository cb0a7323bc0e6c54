"""Artifact paths are recorded relative to the database's folder: a copied store keeps its files.

A real trained run is copied with its folder to another place and the original deleted; the
copy still loads the run's weights, and ``cnn-lab runs check`` finds every file. A store an
older cnn-lab left with absolute paths (also one copied before the upgrade) is migrated to
relative paths; a file outside the folder keeps its absolute path.
"""

from __future__ import annotations

import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
import sqlite_utils

from cnn_lab.engine.models.trained import load_trained
from cnn_lab.engine.store import RunStore, artifact_kinds, schema
from cnn_lab.engine.store.artifact_paths import from_old, to_absolute, to_stored
from tests.app.trained_run import train_tiny_run
from tests.engine.test_cli import invoke


def stored_paths(db: Path) -> list[str]:
    with closing(sqlite3.connect(db)) as conn:
        return [row[0] for row in conn.execute("SELECT path FROM artifacts ORDER BY id")]


def test_paths_inside_the_folder_are_relative_and_others_absolute(tmp_path: Path) -> None:
    root = tmp_path / "lab"
    inside = root / "runs-files" / "run-3" / "weights.safetensors"
    assert to_stored(inside, root) == "runs-files/run-3/weights.safetensors"
    assert to_absolute("runs-files/run-3/weights.safetensors", root) == str(inside)
    assert to_stored("/elsewhere/model.onnx", root) == "/elsewhere/model.onnx"
    assert to_absolute("/elsewhere/model.onnx", root) == "/elsewhere/model.onnx"
    assert to_absolute("C:\\exports\\model.onnx", root) == "C:\\exports\\model.onnx"
    # Recorded by an older cnn-lab on another machine, before the store was copied here:
    old = "/home/ada/lab/runs-files/run-3/checkpoints/last.ckpt"
    assert from_old(old, root, "runs", 3) == "runs-files/run-3/checkpoints/last.ckpt"
    assert from_old("C:\\lab\\runs-files\\run-3\\w.safetensors", root, "runs", 3) == (
        "runs-files/run-3/w.safetensors"
    )
    assert from_old(old, root, "runs", 4) == old  # another run's folder: not this run's file
    assert from_old(str(inside), root, "runs", 3) == "runs-files/run-3/weights.safetensors"


def test_a_store_copied_with_its_folder_keeps_every_runs_weights(tmp_path: Path) -> None:
    db = tmp_path / "first" / "runs.sqlite"
    db.parent.mkdir()
    run_id = train_tiny_run(db)
    assert all(not Path(p).is_absolute() for p in stored_paths(db))
    with RunStore.open(db) as store:
        before = load_trained(store, run_id)
        kinds = {a["kind"] for a in store.artifacts(run_id)}
    assert artifact_kinds.WEIGHTS in kinds and artifact_kinds.LAST_CHECKPOINT in kinds

    moved = tmp_path / "elsewhere" / "lab"
    shutil.copytree(db.parent, moved)
    shutil.rmtree(db.parent)
    copy = moved / "runs.sqlite"
    with RunStore.open(copy) as store:
        paths = [Path(a["path"]) for a in store.artifacts(run_id)]
        after = load_trained(store, run_id)
    assert paths and all(p.is_file() and moved in p.parents for p in paths), paths
    assert after.weights.parent.is_relative_to(moved)
    state, loaded = before.model.state_dict(), after.model.state_dict()
    assert all((state[k] == loaded[k]).all() for k in state)
    result = invoke(["runs", "check", "--db", str(copy)])
    assert result.code == 0 and "missing" not in result.out, result.out


@pytest.mark.parametrize("copied_before_upgrade", [False, True])
def test_an_older_stores_absolute_paths_become_relative(
    tmp_path: Path, copied_before_upgrade: bool
) -> None:
    original = tmp_path / "old-place"
    here = tmp_path / "new-place" if copied_before_upgrade else original
    here.mkdir(parents=True)
    db_path = here / "runs.sqlite"
    recorded = original / "runs-files" / "run-1" / "weights.safetensors"
    export = tmp_path / "exports" / "model.onnx"
    db = sqlite_utils.Database(db_path)
    with db.conn:
        for migration in schema.MIGRATIONS[:3]:  # as cnn-lab left a store at version 3
            schema.apply_migration(db, migration)
        db.execute(
            "INSERT INTO runs (id, name, status, spec_json, spec_hash, created_at) "
            "VALUES (1, 'r', 'completed', '{}', 'h', 0)"
        )
        for path, kind in ((recorded, artifact_kinds.WEIGHTS), (export, "export")):
            db.execute(
                "INSERT INTO artifacts (run_id, path, kind, created_at) VALUES (1, ?, ?, 0)",
                [str(path), kind],
            )
    db.close()
    with RunStore.open(db_path) as store:
        assert schema.current_version(store.sqlite_db) == schema.SCHEMA_VERSION
        read = [a["path"] for a in store.artifacts(1)]
    assert stored_paths(db_path) == ["runs-files/run-1/weights.safetensors", str(export)]
    assert read == [str(here / "runs-files" / "run-1" / "weights.safetensors"), str(export)]


def test_an_unknown_database_url_is_refused_in_one_line_and_creates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.engine.test_cli import assert_refused_in_one_line

    monkeypatch.chdir(tmp_path)
    for command in (["runs", "list"], ["train", "--data", "sample:shapes", "--epochs", "1"]):
        result = invoke([*command, "--db", "mysql://lab@host/db"])
        assert_refused_in_one_line(result)
        assert "mysql:// is neither" in result.err
    assert list(tmp_path.iterdir()) == []  # no folder named "mysql:"
