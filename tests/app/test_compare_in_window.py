"""The issue's path: select two runs in Runs, press Compare, see both curves and the spec diff."""

from __future__ import annotations

from PySide6.QtCore import Qt

from cnn_lab.app.main_window import MainWindow
from cnn_lab.engine.specs import RunSpec, TrainSpec
from cnn_lab.engine.store import MetricPoint, RunStore
from tests.app.settle import settle


def _run(store: RunStore, name: str, lr: float) -> int:
    spec = RunSpec(name=name, train=TrainSpec(lr=lr, epochs=2))
    run_id = store.create_run(
        spec_json=spec.to_json(), spec_hash=spec.spec_hash(), name=name, status="completed"
    )
    store.add_metrics(
        [MetricPoint(run_id, s, s // 5, "train.loss", lr * (10 - s), s) for s in range(10)]
        + [MetricPoint(run_id, 5 * e + 4, e, "val.accuracy", 0.5 + lr, 0) for e in range(2)]
    )
    return run_id


def test_selecting_two_runs_and_pressing_compare_shows_both(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    with RunStore.open(window.state.db_path) as store:
        slow = _run(store, "slow", 0.01)
        fast = _run(store, "fast", 0.1)
        _run(store, "other", 0.1)
    runs = window.runs_panel
    window.tabs.setCurrentWidget(runs)
    runs.refresh()
    settle(qtbot, window)

    # Click the first run, then Ctrl-click the second, as a person selects two rows.
    rows = {record.id: row for row, record in enumerate(runs.model.records)}
    for run_id, modifier in (
        (slow, Qt.KeyboardModifier.NoModifier),
        (fast, Qt.KeyboardModifier.ControlModifier),
    ):
        rect = runs.table.visualRect(runs.model.index(rows[run_id], 2))
        qtbot.mouseClick(runs.table.viewport(), Qt.MouseButton.LeftButton, modifier, rect.center())
    assert sorted(runs.selected_run_ids()) == [slow, fast]
    settle(qtbot, window)
    qtbot.mouseClick(runs.compare_button, Qt.MouseButton.LeftButton)
    settle(qtbot, window)

    compare = window.compare_panel
    assert window.tabs.currentWidget() is compare
    names = [f"#{slow} slow", f"#{fast} fast"]
    assert compare.curve_names("loss") == names
    assert all(compare.charts["loss"].points(name) == 10 for name in names)
    assert [row.path for row in compare.diff_rows()] == ["name", "train.lr"]
    assert compare.diff_table.rowCount() == 2

    # Deleting one of them takes it out of Compare too.
    runs.confirm = lambda title, text: True
    runs.select_runs([fast])
    with qtbot.waitSignal(runs.runs_deleted, timeout=15_000):
        runs.delete_selected()
    settle(qtbot, window)
    assert compare.is_empty()
