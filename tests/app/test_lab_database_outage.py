"""A lab's PostgreSQL that is down when the window opens: the window appears, says so in its
status line and tries again; an edit made meanwhile waits its turn; when the server is back
the runs are listed, the edit is made, and the line clears. A real server, stopped and
started (tests/store/pg_cluster.py), no mock."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from cnn_lab.app import store_link
from cnn_lab.app.main_window import MainWindow
from cnn_lab.app.state import AppState
from cnn_lab.engine.store import open_store
from tests.app.settle import settle

if TYPE_CHECKING:
    from tests.store.pg_cluster import Cluster


@pytest.fixture
def own_cluster() -> Iterator[Cluster]:
    """A cluster of this test's own: stopping it must not take the session's away."""
    from tests.store.pg_cluster import throwaway_cluster

    with throwaway_cluster() as cluster:
        yield cluster


def test_a_window_on_a_server_that_is_down_says_so_retries_and_catches_up(
    qtbot, own_cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(store_link, "RETRY_S", (0.2, 0.4))
    url = own_cluster.new_database()
    with open_store(url) as store:
        first = store.create_run(spec_json="{}", spec_hash="a", name="first", status="completed")
        store.create_run(spec_json="{}", spec_hash="b", name="second", status="completed")
    own_cluster.stop_server()

    win = MainWindow(AppState(url))
    win.confirm_close = lambda question: True  # type: ignore[method-assign]
    qtbot.addWidget(win)
    win.show()  # the window appears although its store does not answer
    qtbot.waitUntil(lambda: "Trying again in" in win.store_label.text(), timeout=20_000)
    assert win.store_label.isVisible()
    assert "could not reach" in win.store_label.text() or "lost" in win.store_label.text()
    assert win.runs_panel.model.records == []
    win.runs_panel.rename_run(first, "renamed while the server was down")
    warned: list[str] = []  # Train cannot record a run now: it says so at once, never waits
    monkeypatch.setattr(
        "cnn_lab.app.main_window.QMessageBox.warning", lambda *args: warned.append(args[2])
    )
    assert win.train() is None
    assert warned and warned[0] == win.store_label.text()

    own_cluster.start_server()
    settle(qtbot, win, timeout=30_000)
    names = sorted(r.name for r in win.runs_panel.model.records)
    assert names == ["renamed while the server was down", "second"]
    assert not win.store_label.isVisible()
    with open_store(url) as store:
        assert store.get_run(first).name == "renamed while the server was down"
    win.close()
