"""The Sweep panel: a grid built by clicking counts its trials, a bad row is a sentence, and
a real sweep runs in a child process, fills the trials table, draws the selected trials'
curves and parallel coordinates, and leaves no child behind when it ends or is stopped.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from PySide6.QtCore import Qt

from cnn_lab.app.bridge.sweep_runner import SweepRunner
from cnn_lab.app.main_window import MainWindow
from cnn_lab.app.panels.sweep_panel import SweepPanel
from cnn_lab.app.state import AppState
from cnn_lab.app.widgets.parallel_coordinates import axis_positions
from cnn_lab.app.widgets.param_grid_editor import parse_value, range_values
from cnn_lab.engine.search.estimates import seconds_per_epoch
from cnn_lab.engine.specs import ArchitectureSpec, DatasetSpec
from cnn_lab.engine.store import RunStore
from cnn_lab.engine.store import status as st
from cnn_lab.engine.util.durations import format_duration
from tests.app.settle import settle

SWEEP_TIMEOUT_MS = 180_000


def tiny_base(state: AppState) -> None:
    """The smallest spec that trains: 300 shapes, the small CNN, one epoch on the CPU."""
    state.update(
        dataset=DatasetSpec(source="sample:shapes", limit=300),
        architecture=ArchitectureSpec(preset="small_cnn"),
        train=state.train.model_copy(update={"batch_size": 16, "epochs": 1, "device": "cpu"}),
    )


@pytest.fixture
def panel(qtbot, db_path: Path) -> Iterator[SweepPanel]:  # type: ignore[no-untyped-def]
    state = AppState(db_path)
    tiny_base(state)
    widget = SweepPanel(
        state, runner_factory=lambda parent: SweepRunner(parent, sample_system=False)
    )
    qtbot.addWidget(widget)
    widget.resize(1280, 720)
    widget.show()
    qtbot.waitExposed(widget)
    yield widget
    widget.shutdown()


def click(qtbot, button) -> None:  # type: ignore[no-untyped-def]
    assert button.isVisible() and button.isEnabled()
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def add_param(qtbot, panel: SweepPanel, path: str, values: str) -> None:  # type: ignore[no-untyped-def]
    """Pick ``path`` in the list, click Add parameter, and type the values into its row."""
    editor = panel.editor
    editor.picker.setCurrentIndex(editor.picker.findText(path))
    click(qtbot, editor.add_button)
    row = editor.rows[-1]
    assert row.path.currentText() == path
    qtbot.keyClicks(row.values, values)


def no_sweep_child_left(pid: int | None) -> bool:
    gone = (
        pid is None
        or not psutil.pid_exists(pid)
        or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    )
    return gone and not multiprocessing.active_children()


def test_a_grid_built_by_clicking_counts_its_trials(qtbot, panel: SweepPanel) -> None:  # type: ignore[no-untyped-def]
    add_param(qtbot, panel, "train.lr", "0.01, 0.05")
    add_param(qtbot, panel, "train.batch_size", "16, 32")
    search = panel.build_search()
    assert search.strategy == "grid" and search.grid_size() == 4
    assert search.grid_space() == {"train.lr": [0.01, 0.05], "train.batch_size": [16, 32]}
    assert panel.count_label.text() == "4 trials; measure an epoch to estimate the time."


@pytest.mark.slow
def test_measuring_an_epoch_estimates_the_sweep_before_it_launches(
    qtbot, panel: SweepPanel
) -> None:  # type: ignore[no-untyped-def]
    add_param(qtbot, panel, "train.lr", "0.01, 0.05, 0.1")
    with qtbot.waitSignal(panel.probe.finished, timeout=SWEEP_TIMEOUT_MS) as measured:
        click(qtbot, panel.measure_button)
        assert panel.count_label.text() == "Measuring an epoch…"
    result = measured.args[0]
    assert result["device"] == "cpu" and result["train_images"] == 240
    # Three one-epoch trials, one at a time, each a run set up anew.
    expected = format_duration((result["epoch_s"] + result["setup_s"]) * 3, "rough")
    assert result["setup_s"] > 0
    assert panel.count_label.text() == (
        f"3 trials, about {expected} ({result['epoch_s']:.1f} s an epoch and "
        f"{result['setup_s']:.1f} s to set a run up, measured on cpu)."
    )
    assert panel.measure_button.isEnabled() and not panel.running
    panel.pruner.setCurrentText("median")  # pruning makes the figure an upper bound
    assert panel.count_label.text().startswith(
        f"3 trials, about {expected} at most (pruning stops some early) ("
    )
    # Two free GPUs train two trials at once (three with one on the CPU).
    panel.free_slots = lambda: ["cuda:0", "cuda:1", "cpu"]
    panel.state.update(train=panel.state.train.model_copy(update={"device": "auto"}))
    assert panel._expected_parallel(panel.build_search()) == 2
    panel.cpu_too.setChecked(True)
    assert panel._expected_parallel(panel.build_search()) == 3
    assert "measure an epoch" in panel.count_label.text()  # the base changed: measure again


def test_a_bad_row_is_a_sentence_and_nothing_starts(qtbot, panel: SweepPanel) -> None:  # type: ignore[no-untyped-def]
    click(qtbot, panel.launch_button)
    assert panel.error.isVisible() and panel.error.text().startswith("The sweep has no parameters.")
    add_param(qtbot, panel, "train.lr", "0.01, -1")
    click(qtbot, panel.launch_button)
    assert "do not make a valid run" in panel.error.text()
    assert not panel.running and panel.runner.child_pid is None


def test_ranges_become_values_and_strategies_need_budgets(qtbot, panel: SweepPanel) -> None:  # type: ignore[no-untyped-def]
    editor = panel.editor
    click(qtbot, editor.add_button)  # train.lr, the first in the list
    row = editor.rows[-1]
    row.mode.setCurrentText("range")
    qtbot.keyClicks(row.low, "1e-4")
    qtbot.keyClicks(row.high, "1e-2")
    row.log.setChecked(True)
    assert panel.build_search().grid_space() == {"train.lr": [0.0001, 0.001, 0.01]}
    row.steps.setValue(0)  # continuous: a grid cannot enumerate it
    assert "grid cannot step" in panel.count_label.text()
    panel.strategy.setCurrentText("tpe")
    assert "needs a budget" in panel.count_label.text()
    panel.trials.setValue(5)
    search = panel.build_search()
    assert search.params[0].range is not None and search.params[0].range.log
    assert panel.count_label.text().startswith("5 trials")


def test_helpers() -> None:
    assert [parse_value(t) for t in ("16", "0.1", "adamw", "true")] == [16, 0.1, "adamw", True]
    assert range_values(16, 64, 3, log=False, integer=True) == [16, 40, 64]
    assert axis_positions(["sgd", "adamw", "sgd"])[0] == [1.0, 0.0, 1.0]
    heights, low, high = axis_positions([0.001, 0.01, 0.1])
    assert heights == pytest.approx([0.0, 0.5, 1.0]) and (low, high) == ("0.001", "0.1")


@pytest.mark.slow
def test_a_real_grid_fills_the_table_and_draws_the_curves(qtbot, panel: SweepPanel) -> None:  # type: ignore[no-untyped-def]
    add_param(qtbot, panel, "train.lr", "0.01, 0.05")
    add_param(qtbot, panel, "train.batch_size", "16, 32")
    with qtbot.waitSignal(panel.sweep_ended, timeout=SWEEP_TIMEOUT_MS) as ended:
        click(qtbot, panel.launch_button)
        assert panel.running and not panel.launch_button.isEnabled()
    assert ended.args == ["finished"], panel.error.text()
    assert no_sweep_child_left(None)
    table = panel.table
    assert table.rowCount() == 4
    assert {table.item(r, 1).text() for r in range(4)} == {"complete"}
    points = {
        (o["params"]["train.lr"], o["params"]["train.batch_size"]) for o in table.outcomes.values()
    }
    assert points == {(0.01, 16), (0.01, 32), (0.05, 16), (0.05, 32)}
    assert panel.progress_label.text() == "Done: 4 trials."
    assert panel.result is not None
    assert set(panel.result["importance"]) == {"train.lr", "train.batch_size"}

    table.selectRow(0)
    run_ids = table.selected_run_ids()
    assert len(run_ids) == 1
    settle(qtbot, panel)  # the trial's curve is read off the GUI thread
    assert panel.curves.curve_names() == [f"run {run_ids[0]}"]
    assert panel.curves.points(f"run {run_ids[0]}") == 1  # one epoch, one point
    assert len(panel.parallel.lines) == 4
    assert panel.parallel.axes == ["train.lr", "train.batch_size", "val.accuracy"]

    # The trials are runs: now the estimate is measured, and the best can be trained.
    panel.refresh_estimate()
    settle(qtbot, panel)  # the finished runs are read off the GUI thread, then it says again
    assert panel.count_label.text().startswith("4 trials, about "), panel.count_label.text()
    with RunStore.open(panel.state.db_path) as store:
        history = store.list_runs(status=st.COMPLETED)
        assert seconds_per_epoch(panel.search.base, history) is not None  # type: ignore[union-attr]
    with qtbot.waitSignal(panel.train_requested):
        click(qtbot, panel.train_best_button)
    best = panel.result["best_params"]
    assert panel.state.train.lr == best["train.lr"]
    assert panel.state.train.batch_size == best["train.batch_size"]
    assert panel.state.dataset.limit is None

    # Its report, written in the background from the panel (CSV: the trials table).
    out = Path(panel.state.db_path).parent / "sweep.csv"
    assert panel.report_button.isEnabled()
    task = panel.export_report(str(out), "csv")
    # The task's signals are queued to this thread, so none can fire before the wait starts.
    with qtbot.waitSignal(task.finished, timeout=60_000):
        pass
    assert panel.best_label.text().startswith("Wrote the CSV report of sweep ")
    assert len(out.read_text().strip().splitlines()) == 1 + 4  # header and one row per trial


@pytest.mark.slow
def test_stop_ends_the_sweep_child(qtbot, panel: SweepPanel) -> None:  # type: ignore[no-untyped-def]
    add_param(qtbot, panel, "train.lr", "0.01, 0.02, 0.03, 0.04, 0.05, 0.06")
    with qtbot.waitSignal(panel.runner.trial, timeout=SWEEP_TIMEOUT_MS):
        click(qtbot, panel.launch_button)
    pid = panel.runner.child_pid
    assert pid and psutil.pid_exists(pid)
    with qtbot.waitSignal(panel.sweep_ended, timeout=60_000) as ended:
        click(qtbot, panel.stop_button)
    assert ended.args == ["finished"]
    assert no_sweep_child_left(pid)
    assert panel.result is not None and panel.result["stopped"]
    done = panel.table.rowCount()
    assert 1 <= done < 6
    assert panel.progress_label.text().startswith("Stopped after")
    assert panel.launch_button.isEnabled()
    # The stopped sweep is offered for resuming, as it would be after a restart.
    panel.hide()
    panel.show()
    settle(qtbot, panel)  # the past sweeps are listed off the GUI thread
    assert panel.saved_row.isVisible()
    counted = panel.result["trials_done"] + panel.result["trials_pruned"]  # not the cut-off one
    assert panel.saved_box.currentText().endswith(f": {counted} of 6 trials, unfinished")
    with qtbot.waitSignal(panel.sweep_ended, timeout=SWEEP_TIMEOUT_MS) as ended:
        click(qtbot, panel.resume_button)
    assert ended.args == ["finished"] and not panel.result["stopped"]
    assert panel.result["trials_done"] == 6
    settle(qtbot, panel)
    assert panel.saved_box.currentText().endswith(": 6 of 6 trials, finished")
    assert not panel.resume_button.isEnabled()  # finished: it can be opened, not resumed


@pytest.mark.slow
def test_the_window_has_a_sweep_tab_and_closing_it_leaves_no_sweep_child(
    qtbot, window: MainWindow
) -> None:  # type: ignore[no-untyped-def]
    titles = [window.tabs.tabText(i) for i in range(window.tabs.count())]
    assert titles.index("Sweep") == titles.index("Tune") + 1
    tiny_base(window.state)
    panel = window.sweep_panel
    window.tabs.setCurrentWidget(panel)
    add_param(qtbot, panel, "train.lr", "0.01, 0.02, 0.03, 0.04")
    click(qtbot, panel.launch_button)
    qtbot.waitUntil(lambda: panel.runner.child_pid is not None, timeout=10_000)
    pid = panel.runner.child_pid
    assert pid and psutil.pid_exists(pid)
    questions: list[str] = []
    window.confirm_close = lambda question: questions.append(question) or True
    window.close()
    assert questions and questions[0].startswith("A sweep is running. Stop it and close?")
    assert no_sweep_child_left(pid)
    assert not panel.running and panel.launch_button.isEnabled()
