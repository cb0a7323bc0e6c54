"""The Compare panel on runs written straight into a store: curves, spec diff, seed bands."""

from __future__ import annotations

from pathlib import Path

import pytest

from cnn_lab.app.models.compare_form import EMPTY_TEXT
from cnn_lab.app.panels.compare_panel import ComparePanel
from cnn_lab.app.state import AppState
from cnn_lab.engine.specs import RunSpec, TrainSpec
from cnn_lab.engine.store import MetricPoint, RunStore
from tests.app.settle import settle


def _write_run(store: RunStore, name: str, *, lr: float, seed: int = 0, offset: float = 0) -> int:
    """A finished run of 3 epochs × 10 steps, its curves shifted by ``offset``."""
    spec = RunSpec(name=name, train=TrainSpec(lr=lr, seed=seed, epochs=3))
    run_id = store.create_run(
        spec_json=spec.to_json(), spec_hash=spec.spec_hash(), name=name, status="completed"
    )
    points = [
        MetricPoint(run_id, step, step // 10, "train.loss", 2.0 / (1 + step) + offset, step)
        for step in range(30)
    ]
    for epoch in range(3):
        step = 10 * epoch + 9
        points.append(MetricPoint(run_id, step, epoch, "val.accuracy", 0.5 + 0.1 * epoch, step))
        points.append(MetricPoint(run_id, step, epoch, "val.loss", 1.0 - 0.1 * epoch, step))
    store.add_metrics(points)
    store.update_summary(
        run_id, {"best_val_accuracy": 0.7 + offset, "epochs": 3, "final_train_loss": 0.1}
    )
    return run_id


@pytest.fixture
def panel(qtbot, db_path: Path) -> ComparePanel:  # type: ignore[no-untyped-def]
    widget = ComparePanel(AppState(db_path))
    qtbot.addWidget(widget)
    widget.resize(1200, 800)
    widget.show()
    return widget


def test_two_runs_show_both_curves_and_only_the_differing_spec_paths(
    qtbot, panel: ComparePanel, db_path: Path
) -> None:
    with RunStore.open(db_path) as store:
        first = _write_run(store, "slow", lr=0.01)
        second = _write_run(store, "fast", lr=0.1, offset=0.05)
    assert panel.is_empty() and panel.empty_state.text() == EMPTY_TEXT
    panel.show_runs([first, second])
    settle(qtbot, panel)
    assert not panel.is_empty()
    names = [f"#{first} slow", f"#{second} fast"]
    assert panel.curve_names("loss") == names
    assert panel.curve_names("accuracy") == names
    for name in names:
        assert panel.charts["loss"].points(name) == 30
        assert panel.charts["accuracy"].points(name) == 3
    assert panel.charts["accuracy"].data(names[0])[0].tolist() == [0, 1, 2]  # by epoch
    diff = {row.path: row.values for row in panel.diff_rows()}
    assert list(diff) == ["name", "train.lr"]
    assert diff["train.lr"] == {first: "0.01", second: "0.1"}
    assert panel.diff_table.rowCount() == 2
    assert panel.diff_table.item(1, 0).text() == "train.lr"
    assert panel.diff_table.item(1, 2).text() == "0.1"
    rows = panel.metric_rows()
    assert [r.run_ids for r in rows] == [(first,), (second,)]
    assert panel.metric_table.item(1, 1).text() == "75.0%"
    assert panel.metric_table.item(1, 1).font().bold()  # the better of the two
    # Any logged metric can be overlaid in the third chart.
    assert panel.chosen_metric() == "val.loss"
    assert panel.metric_choice.findText("train.loss") >= 0
    panel.metric_choice.setCurrentText("train.loss")
    settle(qtbot, panel)
    assert panel.curve_names("metric") == names
    assert panel.charts["metric"].points(names[1]) == 30


def test_aggregating_draws_one_mean_and_band_per_recipe(
    qtbot, panel: ComparePanel, db_path: Path
) -> None:
    with RunStore.open(db_path) as store:
        ids = [
            _write_run(store, f"{lr} seed {seed}", lr=lr, seed=seed, offset=0.1 * seed)
            for lr in (0.01, 0.1)
            for seed in (0, 1, 2)
        ]
    panel.show_runs(ids)
    settle(qtbot, panel)
    assert len(panel.curve_names("loss")) == 6 and panel.band_names("loss") == []
    panel.aggregate.setChecked(True)
    labels = ["lr=0.01 (3 seeds)", "lr=0.1 (3 seeds)"]
    for chart in ("loss", "accuracy", "metric"):
        assert panel.curve_names(chart) == labels
        assert panel.band_names(chart) == labels
    x, mean = panel.charts["loss"].data(labels[0])
    assert len(x) == 30 and mean[0] == pytest.approx(2.0 + 0.1)  # offsets 0, .1, .2
    band = panel._bands["loss"][labels[0]]
    assert band in panel.charts["loss"].plot.getPlotItem().items
    low, high = band.curves[0].yData, band.curves[1].yData
    assert low[0] == pytest.approx(2.0) and high[0] == pytest.approx(2.2)  # sample std 0.1
    assert [r.label for r in panel.metric_rows()] == labels
    assert panel.metric_table.item(0, 1).text() == "80.0% ± 10.0%"
    panel.spread.setCurrentText("min to max")
    band = panel._bands["loss"][labels[0]]
    assert band.curves[1].yData[0] == pytest.approx(2.2)
    panel.aggregate.setChecked(False)
    assert len(panel.curve_names("loss")) == 6 and panel.band_names("loss") == []
    assert band not in panel.charts["loss"].plot.getPlotItem().items


def test_fewer_than_two_runs_show_the_hint(qtbot, panel: ComparePanel, db_path: Path) -> None:
    with RunStore.open(db_path) as store:
        first = _write_run(store, "one", lr=0.01)
        second = _write_run(store, "two", lr=0.1)
    panel.show_runs([first, second])
    settle(qtbot, panel)
    panel.show_runs([first, 999])
    settle(qtbot, panel)
    assert panel.is_empty()
    assert "#999" in panel.empty_state.text() and EMPTY_TEXT in panel.empty_state.text()
    assert panel.curve_names("loss") == [] and panel.diff_rows() == []
    panel.show_runs([])
    settle(qtbot, panel)
    assert panel.is_empty() and panel.metric_table.rowCount() == 0
