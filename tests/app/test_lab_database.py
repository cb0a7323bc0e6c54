"""The window on a lab's PostgreSQL run store: opened from a ``postgresql://`` address at start
or through File ▸ Open a Lab Database, listing the runs every machine recorded there.

Against the throwaway cluster (tests/conftest.py's ``pg_url``), never a mock database.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QThreadPool

from cnn_lab.app.main_window import MainWindow
from cnn_lab.app.settings import LAST_DB_KEY, RECENT_DBS_KEY
from cnn_lab.engine.store import artifact_kinds, open_store
from cnn_lab.engine.store import status as st
from cnn_lab.engine.store.locations import ARTIFACTS_ENV_VAR
from tests.app.conftest import shown_window
from tests.app.settle import settle
from tests.store.pg_cluster import SUPERUSER, Cluster

OPEN_MS = 30_000
"""How long a test waits for File ▸ Open a Lab Database to switch: the trial open runs in
the background, and a loaded machine may be slow to connect."""


@pytest.fixture
def lab(pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, list[int]]:
    """A lab database holding two ended runs, as other machines' jobs would leave it."""
    monkeypatch.setenv(ARTIFACTS_ENV_VAR, str(tmp_path / "artifacts"))
    ids = []
    with open_store(pg_url) as store:
        for name in ("from-gpu-box", "from-laptop"):
            run_id = store.create_run(spec_json="{}", spec_hash=name, name=name)
            store.mark_running(run_id, pid=1, device="cpu")
            store.finish_run(run_id, st.COMPLETED, summary={"best_val_accuracy": 0.5})
            ids.append(run_id)
    return pg_url, ids


@pytest.fixture
def lab_window(qtbot, lab: tuple[str, list[int]]) -> Iterator[MainWindow]:  # type: ignore[no-untyped-def]
    yield from shown_window(qtbot, lab[0])  # type: ignore[arg-type]


def _listed(qtbot, win: MainWindow) -> set[int]:  # type: ignore[no-untyped-def]
    win.runs_panel.refresh()
    settle(qtbot, win)  # the panel lists the runs off the GUI thread
    return {record.id for record in win.runs_panel.model.records}


def _open(qtbot, win: MainWindow, url: str) -> None:  # type: ignore[no-untyped-def]
    """File ▸ Open a Lab Database: the window switches once the trial open has worked."""
    win.open_database(url)
    qtbot.waitUntil(lambda: win.state.db_path == url, timeout=OPEN_MS)


def test_a_window_on_a_postgresql_address_lists_its_runs(  # type: ignore[no-untyped-def]
    qtbot, lab_window: MainWindow, lab: tuple[str, list[int]]
) -> None:
    url, ids = lab
    assert lab_window.state.db_path == url  # kept whole, never through Path
    assert _listed(qtbot, lab_window) == set(ids)
    assert lab_window.controller.db_path == url  # jobs started here record there too


def test_open_a_lab_database_switches_the_window_to_it(  # type: ignore[no-untyped-def]
    qtbot, window: MainWindow, lab: tuple[str, list[int]]
) -> None:
    url, ids = lab
    assert _listed(qtbot, window) == set()  # the test's own SQLite file
    _open(qtbot, window, url)
    assert window.state.db_path == url and window.controller.db_path == url
    assert _listed(qtbot, window) == set(ids)
    assert window.settings.paths(RECENT_DBS_KEY)[0] == url
    assert "Run database: postgresql://" in window.status_label.text()


def test_the_window_starts_on_a_lab_database_given_at_launch(  # type: ignore[no-untyped-def]
    qtbot, lab: tuple[str, list[int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from cnn_lab.app.gui import _last_database, create_window

    url, ids = lab
    monkeypatch.delenv("CNN_LAB_DB")
    win = create_window(url)
    assert win is not None
    qtbot.addWidget(win)
    assert _listed(qtbot, win) == set(ids)
    assert _last_database(win.settings) == url  # remembered, and not checked as a file
    win.close()
    QThreadPool.globalInstance().waitForDone(10_000)


def test_a_run_trained_from_the_window_is_recorded_in_the_lab_database(  # type: ignore[no-untyped-def]
    qtbot, lab_window: MainWindow, lab: tuple[str, list[int]]
) -> None:
    """The job's child process receives the address as it received the file's path."""
    from tests.app.conftest import choose_quick_run

    url, ids = lab
    choose_quick_run(lab_window, epochs=1, limit=120)
    with qtbot.waitSignal(lab_window.controller.run_finished, timeout=120_000) as finished:
        lab_window.train_action.trigger()
    run_id, status, reason = finished.args
    assert status == st.COMPLETED, reason
    with open_store(url) as store:
        assert store.metric_keys(run_id)["val.accuracy"] == 1
        assert store.has_artifact(run_id, artifact_kinds.WEIGHTS)
    assert _listed(qtbot, lab_window) == {*ids, run_id}


def test_a_password_in_the_address_is_never_remembered(  # type: ignore[no-untyped-def]
    qtbot, window: MainWindow, lab: tuple[str, list[int]], pg_cluster: Cluster
) -> None:
    """The recent list and the last database keep the address without its password (a
    settings file is no place for one; ~/.pgpass or PGPASSWORD is). The throwaway cluster
    lets its superuser in without a password (trust), so the server ignores the one given."""
    url, ids = lab
    dbname = url.split("@/", 1)[1].split("?", 1)[0]
    secret = "s3cret-Pa55"
    in_userinfo = pg_cluster.url(dbname, password=secret)
    assert f"{SUPERUSER}:{secret}@" in in_userinfo
    in_query = f"{url}&password={secret}"

    for given in (in_userinfo, in_query):
        _open(qtbot, window, given)
        assert _listed(qtbot, window) == set(ids)  # the address works, password and all
        remembered = [window.settings.text(LAST_DB_KEY), *window.settings.paths(RECENT_DBS_KEY)]
        assert remembered[0] == url  # the same address, less its password
        assert all(secret not in value for value in remembered), remembered

    window.close()  # the window saves its settings as it closes
    window.settings.sync()
    assert url in window.settings.path.read_text()
    assert secret not in window.settings.path.read_text()
