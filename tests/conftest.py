"""Every test runs headless and keeps every path (database, settings, data) under tmp_path."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.store.pg_cluster import Cluster

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(autouse=True)
def _isolated_paths(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Point the default database and the user folders somewhere disposable."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / "cache"))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / "state"))  # the error log
    monkeypatch.setenv("CNN_LAB_DB", str(home / "default-runs.sqlite"))


@pytest.fixture(autouse=True)
def _close_store_links() -> Iterator[None]:
    """Each test's windows and states end their store threads (app/store_link.py) and close
    their stores with the test, so a long session collects no idle threads or open files.
    Only where the window's code was loaded: an engine test never imports Qt for this."""
    yield
    link_module = sys.modules.get("cnn_lab.app.store_link")
    if link_module is not None:
        link_module.close_all()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "runs.sqlite"


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One dataset cache for a whole test module, still under tmp."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture
def one_data_cache(shared_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The module's tests share one prepared sample (child processes inherit the variable);
    a module asks for it with an autouse fixture of its own."""
    monkeypatch.setenv("CNN_LAB_CACHE", str(shared_cache))
    return shared_cache


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    """The session's throwaway PostgreSQL cluster (tests/store/pg_cluster.py), started when a
    test first asks for it (once per xdist worker) and deleted at the end.

    Missing server binaries fail the tests that need them, loudly: CI installs them
    (.ci/run), and a skipped backend would pass unseen. Here, not in tests/store, because the
    engine's and the window's tests open a PostgreSQL run store too. Imported here, not at
    the top: a test worker that never asks for it never loads psycopg and its libpq.
    """
    from tests.store.pg_cluster import throwaway_cluster

    with throwaway_cluster() as cluster:
        yield cluster


@pytest.fixture
def pg_url(pg_cluster: Cluster) -> str:
    """The address of a new, empty database, so every test starts from nothing."""
    return pg_cluster.new_database()
