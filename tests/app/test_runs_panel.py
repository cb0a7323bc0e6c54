"""The Runs browser: search, sort, organise and delete runs through the panel's widgets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from cnn_lab.app.panels.runs_panel import RunsPanel
from cnn_lab.app.state import AppState
from cnn_lab.app.widgets.runs_table import COLUMNS
from cnn_lab.engine.store import MetricPoint, RunStore, run_files_dir
from tests.app.settle import settle


def _make_runs(db_path: Path) -> list[int]:
    ids = []
    with RunStore.open(db_path) as store:
        for name, lr, status, tags, best in (
            ("first", 0.1, "completed", ["baseline"], 0.90),
            ("second", 0.01, "completed", [], 0.97),
            ("third", 0.001, "failed", ["baseline"], None),
        ):
            spec = json.dumps({"tags": tags, "train": {"lr": lr}})
            run_id = store.create_run(
                spec_json=spec, spec_hash=name, name=name, dataset="shapes", status=status
            )
            if best is not None:
                store.update_summary(run_id, {"best_val_accuracy": best})
            store.add_metrics(
                [MetricPoint(run_id, s, 0, "train.loss", 1.0 / (s + 1), 0) for s in range(20)]
            )
            ids.append(run_id)
    return ids


@pytest.fixture
def panel(qtbot, db_path: Path) -> RunsPanel:  # type: ignore[no-untyped-def]
    _make_runs(db_path)
    made = RunsPanel(AppState(db_path))
    qtbot.addWidget(made)
    settle(qtbot, made)
    return made


def _names(panel: RunsPanel) -> list[str]:
    return [r.name for r in panel.model.records]


def test_search_status_and_header_sorting(qtbot, panel: RunsPanel) -> None:  # type: ignore[no-untyped-def]
    assert _names(panel) == ["third", "second", "first"]  # newest first
    panel.set_filter("tag:baseline lr>0.005")
    settle(qtbot, panel)
    assert _names(panel) == ["first"]
    panel.set_filter("")
    panel.status_filter.setCurrentIndex(panel.status_filter.findData("failed"))
    settle(qtbot, panel)
    assert _names(panel) == ["third"]
    panel.status_filter.setCurrentIndex(0)

    best = next(i for i, c in enumerate(COLUMNS) if c.sort == "best_val_accuracy")
    panel.table.horizontalHeader().sectionClicked.emit(best)
    settle(qtbot, panel)
    assert _names(panel) == ["second", "first", "third"]  # best first, unscored last
    panel.table.horizontalHeader().sectionClicked.emit(best)
    settle(qtbot, panel)
    assert _names(panel) == ["first", "second", "third"]
    assert panel.table.horizontalHeader().sortIndicatorSection() == best

    # Typing searches after a pause, without pressing anything.
    panel.search.setText("second")
    qtbot.waitUntil(lambda: _names(panel) == ["second"], timeout=3000)


def test_a_bad_search_says_why_and_keeps_the_list(qtbot, panel: RunsPanel) -> None:  # type: ignore[no-untyped-def]
    panel.set_filter("status:done")
    settle(qtbot, panel)
    assert not panel.query_error.isHidden()
    assert "'done' is not a run status" in panel.query_error.text()
    assert len(_names(panel)) == 3
    panel.set_filter("status:completed")
    settle(qtbot, panel)
    assert panel.query_error.isHidden() and _names(panel) == ["second", "first"]


def test_rename_tag_note_and_archive_through_the_dialogs(
    qtbot, panel: RunsPanel, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    dialogs = "cnn_lab.app.widgets.run_edit_dialogs.QInputDialog"
    panel.select_run(1)
    monkeypatch.setattr(f"{dialogs}.getText", lambda *a, **k: ("lr 0.1 baseline", True))
    panel.rename_action.trigger()
    settle(qtbot, panel)
    monkeypatch.setattr(f"{dialogs}.getText", lambda *a, **k: ("keep, best ,", True))
    panel.tags_action.trigger()
    settle(qtbot, panel)
    monkeypatch.setattr(f"{dialogs}.getMultiLineText", lambda *a, **k: ("diverged <b>", True))
    panel.note_action.trigger()
    settle(qtbot, panel)
    record = next(r for r in panel.model.records if r.id == 1)
    assert (record.name, record.tags, record.note) == (
        "lr 0.1 baseline",
        ("best", "keep"),
        "diverged <b>",
    )
    assert "Tags: best, keep" in panel.detail.text() and "Note: diverged <b>" in panel.detail.text()
    assert panel.detail.textFormat() != Qt.TextFormat.RichText or "<b>" not in panel.detail.text()

    panel.select_runs([1, 2])
    assert panel.archive_action.isEnabled() and not panel.unarchive_action.isEnabled()
    panel.archive_action.trigger()
    settle(qtbot, panel)
    assert _names(panel) == ["third"]
    panel.archived_box.setChecked(True)
    settle(qtbot, panel)
    assert len(_names(panel)) == 3
    panel.select_run(2)
    assert panel.unarchive_action.isEnabled()
    panel.unarchive_action.trigger()
    settle(qtbot, panel)
    panel.archived_box.setChecked(False)
    settle(qtbot, panel)
    assert _names(panel) == ["third", "second"]


def test_compare_needs_two_runs_and_sends_their_ids(qtbot, panel: RunsPanel) -> None:  # type: ignore[no-untyped-def]
    panel.select_run(3)
    assert not panel.compare_button.isEnabled()
    panel.select_runs([3, 1])
    settle(qtbot, panel)
    assert panel.compare_button.isEnabled() and "2 runs selected" in panel.detail.text()
    with qtbot.waitSignal(panel.compare_requested, timeout=1000) as sent:
        qtbot.mouseClick(panel.compare_button, Qt.MouseButton.LeftButton)
    assert sent.args == [[1, 3]]


def test_delete_asks_first_then_removes_runs_and_their_folders(
    qtbot, panel: RunsPanel, db_path: Path
) -> None:  # type: ignore[no-untyped-def]
    folder = run_files_dir(db_path, 2)
    folder.mkdir(parents=True)
    (folder / "last.pt").write_bytes(b"x" * 2_000_000)
    asked: list[str] = []
    panel.confirm = lambda title, text: asked.append(text) or False  # type: ignore[func-returns-value]
    panel.select_runs([1, 2])
    panel.delete_selected()
    settle(qtbot, panel)
    assert asked and "Delete 2 runs with 2.0 MB" in asked[0]
    assert len(_names(panel)) == 3 and folder.exists()

    panel.confirm = lambda title, text: True
    with qtbot.waitSignal(panel.runs_deleted, timeout=15_000) as gone:
        panel.delete_action.trigger()
    settle(qtbot, panel)
    assert gone.args == [[1, 2]]
    assert _names(panel) == ["third"] and not folder.exists()
    assert "Deleted 2 runs and 2.0 MB" in panel.detail.text()
    with RunStore.open(db_path) as store:
        assert store.sqlite_db.execute("SELECT COUNT(*) FROM metrics").fetchone()[0] == 20


def test_a_running_run_is_not_deleted(qtbot, panel: RunsPanel, db_path: Path) -> None:  # type: ignore[no-untyped-def]
    with RunStore.open(db_path) as store:
        live = store.create_run(spec_json="{}", spec_hash="l", name="live", status="queued")
    panel.refresh()
    settle(qtbot, panel)
    panel.confirm = lambda title, text: True
    deleted: list[list[int]] = []
    panel.runs_deleted.connect(deleted.append)
    panel.select_runs([live, 1])
    panel.delete_selected()
    settle(qtbot, panel)
    assert not deleted
    assert f"Run {live} is still queued or running" in panel.detail.text()
    assert len(_names(panel)) == 4


def test_report_writes_the_selected_runs_metrics_in_the_background(
    qtbot, panel: RunsPanel, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    panel.select_run(2)
    settle(qtbot, panel)
    assert panel.report_button.isEnabled()
    out = tmp_path / "second.csv"
    task = panel.export_report(2, str(out), "csv")
    assert not panel.report_button.isEnabled()  # one report at a time
    with qtbot.waitSignal(task.finished, timeout=60_000):
        pass
    assert panel.detail.text().startswith("Wrote the CSV report of run 2")
    assert len(out.read_text().strip().splitlines()) == 1 + 20
    assert panel.report_button.isEnabled()

    task = panel.export_report(2, str(tmp_path / "missing" / "x.html"))
    with qtbot.waitSignal(task.failed, timeout=60_000):
        pass
    assert "The report was not written: Cannot write" in panel.detail.text()


def test_runs_written_elsewhere_appear_without_a_click_and_keep_the_selection(
    qtbot, panel: RunsPanel, db_path: Path
) -> None:  # type: ignore[no-untyped-def]
    panel.show()
    panel.select_run(2)
    settle(qtbot, panel)
    with RunStore.open(db_path) as store:  # a terminal's run, a sweep worker's, another machine's
        store.create_run(spec_json="{}", spec_hash="t", name="from a terminal", status="running")
    qtbot.waitUntil(lambda: "from a terminal" in _names(panel), timeout=20_000)
    assert panel.selected_run_ids() == [2]
