"""The window never waits on the store: browsing and organising runs opens no store on the
GUI thread, and the window opens its store once, on its store link's thread."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from cnn_lab.app.main_window import MainWindow
from cnn_lab.engine.store import MetricPoint, RunStore
from tests.app.conftest import shown_window
from tests.app.settle import record_store_opens, settle


def _make_runs(db_path: Path) -> list[int]:
    ids = []
    with RunStore.open(db_path) as store:
        for name, lr in (("first", 0.1), ("second", 0.01), ("third", 0.001)):
            spec = json.dumps({"name": name, "train": {"lr": lr}})
            run_id = store.create_run(
                spec_json=spec, spec_hash=name, name=name, dataset="shapes", status="completed"
            )
            store.add_metrics(
                [MetricPoint(run_id, s, s // 5, "train.loss", 1.0 / (s + 1), s) for s in range(20)]
                + [MetricPoint(run_id, 5 * e + 4, e, "val.accuracy", 0.5, e) for e in range(4)]
            )
            ids.append(run_id)
    return ids


@pytest.fixture
def opens(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The thread of every store opened from now on."""
    return record_store_opens(monkeypatch)


@pytest.fixture
def window(qtbot, db_path: Path, opens: list[str]) -> Iterator[MainWindow]:  # type: ignore[no-untyped-def]
    _make_runs(db_path)
    opens.clear()
    yield from shown_window(qtbot, db_path)


def test_browsing_and_organising_runs_never_opens_the_store_on_the_gui_thread(
    qtbot, window: MainWindow, opens: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    runs = window.runs_panel
    settle(qtbot, window)
    assert [r.name for r in runs.model.records] == ["third", "second", "first"]
    runs.select_run(2)  # the Monitor, Evaluate and Predict read it
    settle(qtbot, window)
    assert window.monitor_panel.run_id == 2
    runs.rename_run(2, "renamed")
    runs.set_tags(2, ["keep"])
    runs.set_note(2, "a note")
    runs.set_filter("tag:keep")
    settle(qtbot, window)
    assert [r.name for r in runs.model.records] == ["renamed"]
    runs.set_filter("")
    runs.select_runs([1, 3])
    runs.archive_selected()
    settle(qtbot, window)
    window.compare([1, 2])
    window.tabs.setCurrentWidget(window.sweep_panel)  # lists the database's past sweeps
    window.sweep_panel.refresh_estimate()
    settle(qtbot, window)
    window.tabs.setCurrentWidget(runs)
    assert len(window.compare_panel.records) == 2
    runs.confirm = lambda title, text: True
    runs.archived_box.setChecked(True)
    settle(qtbot, window)
    runs.select_runs([3])
    runs.delete_selected()
    settle(qtbot, window)
    assert sorted(r.id for r in runs.model.records) == [1, 2]

    gui = threading.main_thread().name
    assert gui not in opens, f"the GUI thread opened the store {opens.count(gui)} times"
    assert opens == ["cnn-lab-store"]  # once per window, by its store link
