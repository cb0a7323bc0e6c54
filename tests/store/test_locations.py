"""One location string for the run store: a SQLite path (or ``sqlite:///``) or a
``postgresql://`` address, for every command, child process and the sweep's study.

The resolution rules are checked as plain functions; the PostgreSQL paths end to end against
the throwaway cluster (tests/conftest.py's ``pg_url``): ``cnn-lab train`` and ``runs list``
with ``--db postgresql://...``, and a sweep whose Optuna study lands in the same database.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import platformdirs
import psycopg
import pytest

from cnn_lab.engine.about import data_locations
from cnn_lab.engine.errors import StoreError
from cnn_lab.engine.search.storage import OPTUNA_SCHEMA, default_storage
from cnn_lab.engine.store import ENV_VAR, RunStore, artifact_kinds, open_store, resolve_location
from cnn_lab.engine.store import status as st
from cnn_lab.engine.store.locations import (
    ARTIFACTS_ENV_VAR,
    artifact_root,
    connect_url,
    describe,
    is_postgres,
    is_sqlite,
)
from cnn_lab.engine.store.paths import resolve_db_path
from cnn_lab.engine.store.postgres import PgRunStore
from tests.engine.test_cli import invoke

QUICK = ["--data", "sample:shapes", "--limit", "60", "--size", "16", "--epochs", "1"]
"""The smallest training the CLI accepts that still records metrics and weights."""


# ------------------------------------------------------------------------- resolution


def test_a_value_wins_then_the_environment_then_the_default_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "env.sqlite"))
    assert resolve_location(str(tmp_path / "given.sqlite")) == str(tmp_path / "given.sqlite")
    assert resolve_location() == str(tmp_path / "env.sqlite")
    assert resolve_location("") == str(tmp_path / "env.sqlite")
    monkeypatch.setenv(ENV_VAR, "postgresql://lab@db.example/cnnlab")
    assert resolve_location() == "postgresql://lab@db.example/cnnlab"
    monkeypatch.delenv(ENV_VAR)
    assert resolve_location() == str(platformdirs.user_data_path("cnn-lab") / "runs.sqlite")


def test_sqlite_locations_come_back_absolute_and_expanded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert resolve_location("lab.sqlite") == str(tmp_path / "lab.sqlite")
    assert resolve_location("~/x.sqlite") == str(tmp_path / "x.sqlite")
    assert resolve_location("sqlite:///lab.sqlite") == str(tmp_path / "lab.sqlite")
    assert resolve_location(f"sqlite:///{tmp_path}/a.sqlite") == str(tmp_path / "a.sqlite")
    assert resolve_location(tmp_path / "p.sqlite") == str(tmp_path / "p.sqlite")  # a Path too
    assert is_sqlite("lab.sqlite") and is_sqlite("sqlite:///lab.sqlite")
    assert not is_sqlite("postgresql://h/db") and is_postgres("postgres://h/db")
    assert list(tmp_path.iterdir()) == []  # resolving creates nothing


@pytest.mark.parametrize("url", ["postgresql://lab@host/db", "postgres://lab:pw@h:5433/db"])
def test_a_postgresql_address_is_returned_as_given(url: str) -> None:
    assert resolve_location(url) == url


@pytest.mark.parametrize("url", ["mysql+pymysql://u@h/db", "http://h/db", "oracle://h/db"])
def test_other_schemes_are_refused_with_a_sentence(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(StoreError) as refused:
        resolve_location(url)
    assert str(refused.value).startswith(f"cnn-lab cannot use {url!r} as its run store")
    assert "is neither" in str(refused.value) and "postgresql://" in refused.value.hint
    monkeypatch.setenv(ENV_VAR, url)
    with pytest.raises(StoreError):
        open_store()
    assert list(tmp_path.iterdir()) == []  # no folder named after the scheme


def test_what_needs_the_sqlite_file_refuses_an_address_without_its_password() -> None:
    with pytest.raises(StoreError) as refused:
        resolve_db_path("postgresql://lab:secret@host/db")
    assert "needs the run store's SQLite file" in str(refused.value)
    assert "secret" not in str(refused.value)
    assert describe("postgresql://lab:secret@host/db") == "postgresql://lab:***@host/db"
    assert describe("postgresql://lab@host/db?password=secret&x=1") == (
        "postgresql://lab@host/db?password=***&x=1"
    )
    with pytest.raises(StoreError) as unknown:
        resolve_location("mysql://lab:secret@host/db")
    assert "secret" not in str(unknown.value)


def test_the_artifact_root_is_the_environment_then_the_address_then_a_folder_per_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"postgresql://lab@db.example:5432/cnnlab?artifacts={tmp_path}/shared&sslmode=prefer"
    assert artifact_root(url) == tmp_path / "shared"
    assert connect_url(url) == "postgresql://lab@db.example:5432/cnnlab?sslmode=prefer"
    monkeypatch.setenv(ARTIFACTS_ENV_VAR, str(tmp_path / "mounted"))
    assert artifact_root(url) == tmp_path / "mounted"  # each machine mounts the share its way
    monkeypatch.delenv(ARTIFACTS_ENV_VAR)
    plain = "postgresql://lab@db.example/cnnlab"
    assert connect_url(plain) == plain
    data = platformdirs.user_data_path("cnn-lab") / "artifacts"
    assert artifact_root(plain) == data / "db.example-cnnlab"
    socket = "postgresql://lab@/runs?host=/run/postgresql"  # a Unix socket's folder as host
    assert artifact_root(socket) == data / "run_postgresql-runs"


def test_open_store_opens_either_backend_from_one_string(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with open_store(tmp_path / "runs.sqlite", busy_timeout_ms=500, check=True) as store:
        assert isinstance(store, RunStore) and store.location == str(tmp_path / "runs.sqlite")
    monkeypatch.setenv(ARTIFACTS_ENV_VAR, str(tmp_path / "art"))
    with open_store(pg_url, sweep=False, busy_timeout_ms=500, check=True) as store:
        assert isinstance(store, PgRunStore)  # SQLite's options are not passed to it
        assert store.path.parent == tmp_path / "art"
        assert store.location == pg_url
    monkeypatch.setenv(ENV_VAR, pg_url)
    with open_store() as store:
        assert isinstance(store, PgRunStore)


# ---------------------------------------------------------------- PostgreSQL end to end


def test_train_and_list_runs_with_a_postgresql_db(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "artifacts"
    monkeypatch.setenv(ARTIFACTS_ENV_VAR, str(root))
    monkeypatch.chdir(tmp_path)
    result = invoke(["train", "--db", pg_url, *QUICK, "--json"])
    assert result.code == 0, result.err
    run_id = json.loads(result.out)["run_id"]
    with open_store(pg_url) as store:
        record = store.get_run(run_id)
        assert record.status == st.COMPLETED
        assert store.metric_keys(run_id)  # the batched writer wrote to PostgreSQL
        weights = [a for a in store.artifacts(run_id) if a["kind"] == artifact_kinds.WEIGHTS]
    assert weights and Path(weights[0]["path"]).is_file()
    assert Path(weights[0]["path"]).is_relative_to(root)
    assert list(tmp_path.glob("postgres*")) == []  # no folder named after the address
    about = dict(data_locations(f"{pg_url}&artifacts=/elsewhere"))  # the variable wins
    assert about["Runs' weights and exports"] == str(Path(weights[0]["path"]).parents[1])

    listed = invoke(["runs", "list", "--db", pg_url, "--json"])
    assert listed.code == 0, listed.err
    assert [r["id"] for r in json.loads(listed.out)] == [run_id]
    monkeypatch.setenv(ENV_VAR, pg_url)  # the environment variable serves every command too
    shown = invoke(["runs", "show", str(run_id)])
    assert shown.code == 0 and f"Run {run_id}" in shown.out


def _optuna_tables(url: str) -> dict[str, list[str]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_schema IN ('public', %s) ORDER BY table_name",
            [OPTUNA_SCHEMA],
        ).fetchall()
    tables: dict[str, list[str]] = {}
    for schema, name in rows:
        tables.setdefault(schema, []).append(name)
    return tables


def test_a_sweep_on_a_postgresql_db_keeps_its_study_in_the_same_database(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ARTIFACTS_ENV_VAR, str(tmp_path / "artifacts"))
    monkeypatch.chdir(tmp_path)
    base: dict[str, Any] = {
        "dataset": {"source": "sample:shapes", "limit": 60, "image_size": 16},
        "architecture": {"preset": "small_cnn"},
        "train": {"epochs": 1, "batch_size": 32, "device": "cpu"},
    }
    path = tmp_path / "search.json"
    path.write_text(
        json.dumps(
            {
                "base": base,
                "strategy": "grid",
                "params": [{"path": "train.lr", "values": [0.01, 0.1]}],
            }
        )
    )
    result = invoke(["sweep", str(path), "--db", pg_url, "--json"])
    assert result.code == 0, result.err
    summary = json.loads(result.out)
    assert summary["trials_done"] == 2
    assert list(tmp_path.glob("*.journal")) == []  # no journal file beside anything

    tables = _optuna_tables(pg_url)
    assert "studies" in tables[OPTUNA_SCHEMA] and "trials" in tables[OPTUNA_SCHEMA]
    assert "studies" not in tables["public"]  # the run store's schema holds only its own
    with psycopg.connect(pg_url) as conn:
        studies = conn.execute(f"SELECT study_name FROM {OPTUNA_SCHEMA}.studies").fetchall()
    assert len(studies) == 1
    with open_store(pg_url) as store:  # and the run store still opens: no foreign tables
        runs = store.list_runs()
        assert len(runs) == 2 and {r.status for r in runs} == {st.COMPLETED}
        assert summary["best_run_id"] in {r.id for r in runs}
    assert OPTUNA_SCHEMA in default_storage(pg_url)

    again = invoke(["sweep", str(path), "--db", pg_url, "--json"])  # resumes: nothing left
    assert again.code == 0, again.err
    assert json.loads(again.out)["trials_done"] == 2


def test_sweep_workers_find_the_study_through_the_postgresql_db_alone(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ARTIFACTS_ENV_VAR, str(tmp_path / "artifacts"))
    base: dict[str, Any] = {
        "dataset": {"source": "sample:shapes", "limit": 60, "image_size": 16},
        "architecture": {"preset": "small_cnn"},
        "train": {"epochs": 1, "batch_size": 32, "device": "cpu"},
    }
    path = tmp_path / "search.json"
    params = [{"path": "train.lr", "values": [0.05]}]
    path.write_text(json.dumps({"base": base, "strategy": "grid", "params": params}))
    created = invoke(["sweep", str(path), "--db", pg_url, "--create-only"])
    assert created.code == 0, created.err
    assert f"--db {pg_url}" in created.out and "--storage" not in created.out
    name = created.out.split("Sweep ", 1)[1].split(" ", 1)[0]
    worked = invoke(["sweep-worker", name, "--db", pg_url, "--json"])
    assert worked.code == 0, worked.err
    assert json.loads(worked.out)["trials_done"] == 1
    with open_store(pg_url) as store:
        assert [r.status for r in store.list_runs()] == [st.COMPLETED]
    refused = invoke(["sweep-worker", name, "--db", str(tmp_path / "runs.sqlite")])
    assert refused.code == 2 and "Give --storage" in refused.err
