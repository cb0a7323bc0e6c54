"""``cnn-lab runs check``: a sound database passes; a missing weights file and a damaged index
(which the quick check at open does not see) are each named, with exit code 1."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from cnn_lab.engine.store import RunStore, artifact_kinds
from tests.engine.test_cli import invoke


def a_store_with_weights(db: Path, tmp_path: Path) -> Path:
    weights = tmp_path / "run1" / "weights.safetensors"
    weights.parent.mkdir()
    weights.write_bytes(b"not read by the check")
    with RunStore.open(db) as store:
        for n in range(3):
            run_id = store.create_run(spec_json="{}", spec_hash=f"h{n}")
        store.add_artifact(run_id, path=weights, kind=artifact_kinds.WEIGHTS, sha256="00", bytes=21)
    return weights


def test_a_sound_store_passes_and_a_missing_file_is_named(db_path: Path, tmp_path: Path) -> None:
    weights = a_store_with_weights(db_path, tmp_path)
    sound = invoke(["runs", "check", "--db", str(db_path)])
    assert sound.code == 0, sound
    assert sound.out == f"{db_path}: 3 runs; SQLite's integrity check passed.\n"

    weights.unlink()
    missing = invoke(["runs", "check", "--db", str(db_path)])
    assert missing.code == 1
    assert f"its weights file is missing: {weights}" in missing.out
    assert "1 recorded files are missing from disk." in missing.out


def test_a_damaged_index_fails_the_check_with_what_to_do(db_path: Path, tmp_path: Path) -> None:
    a_store_with_weights(db_path, tmp_path)
    # The index now claims an order its rows do not have: reads still work, and SQLite's
    # quick check (run when a store opens) does not look at index contents.
    conn = sqlite3.connect(db_path)
    conn.execute("PRAGMA writable_schema=ON")
    reversed_index = "CREATE INDEX idx_runs_created_at ON runs(created_at DESC)"
    conn.execute(
        "UPDATE sqlite_master SET sql = ? WHERE name = 'idx_runs_created_at'", [reversed_index]
    )
    conn.commit()
    conn.close()
    damaged = invoke(["runs", "check", "--db", str(db_path)])
    assert damaged.code == 1
    assert "FAILED: the database is damaged." in damaged.out
    assert ".recover" in damaged.err and "Traceback" not in damaged.err


def test_checking_a_database_that_is_not_there_creates_none(tmp_path: Path) -> None:
    db = tmp_path / "typo.sqlite"
    result = invoke(["runs", "check", "--db", str(db)])
    assert result.code != 0 and "There is no run database" in result.err
    assert not db.exists()
