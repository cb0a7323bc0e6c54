"""Every viewing panel says what it is for and how to fill it while it has nothing to show,
and shows its content as soon as there is some.

The panels are checked the way the window uses them: on an empty database first, then with a
real trained run (tests/app/trained_run.py) switched in, selected or listed. Each panel
decides its empty state from its own data; ``panel.is_empty()`` and ``panel.empty_state``
are the same API on all of them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PySide6.QtCore import QThreadPool
from PySide6.QtWidgets import QWidget
from pytestqt.qtbot import QtBot

from cnn_lab.app.panels.compare_panel import ComparePanel
from cnn_lab.app.panels.evaluation_panel import EvaluationPanel
from cnn_lab.app.panels.monitor_panel import MonitorPanel, read_for_monitor
from cnn_lab.app.panels.predict_panel import PredictPanel
from cnn_lab.app.panels.runs_panel import RunsPanel
from cnn_lab.app.panels.sweep_panel import SweepPanel
from cnn_lab.app.panels.tune_panel import TunePanel
from cnn_lab.app.state import AppState
from cnn_lab.engine.search.spec import SearchSpec
from cnn_lab.engine.store import COMPLETED, RunStore
from tests.app.fake_sweep_runner import FakeSweepRunner
from tests.app.settle import settle
from tests.app.trained_run import run_without_weights, train_tiny_run
from tests.app.tune_results import CANNED, FakeRunner

PANELS: dict[str, Callable[[AppState], QWidget]] = {
    "monitor": MonitorPanel,
    "runs": RunsPanel,
    "compare": ComparePanel,
    "evaluate": EvaluationPanel,
    "predict": PredictPanel,
    "sweep": lambda state: SweepPanel(
        state, runner_factory=FakeSweepRunner, probe_factory=FakeRunner
    ),
    "tune": lambda state: TunePanel(state, runner_factory=FakeRunner),
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    db = tmp_path_factory.mktemp("empty-states") / "runs.sqlite"
    return db, train_tiny_run(db)


@pytest.fixture
def make(qtbot: QtBot, db_path: Path) -> Iterator[Callable[[str], Any]]:
    """Makes a panel on a fresh, empty database, shown at a window's panel size."""
    made: list[QWidget] = []

    def build(name: str) -> Any:
        panel = PANELS[name](AppState(db_path))
        qtbot.addWidget(panel)
        panel.resize(1280, 560)
        panel.show()
        made.append(panel)
        settle(qtbot, panel)  # its first reads of the store have been answered
        return panel

    yield build
    for panel in made:
        shutdown = getattr(panel, "shutdown", None)
        if shutdown is not None:
            shutdown()
    QThreadPool.globalInstance().waitForDone(30_000)


def showing_empty(panel: Any) -> bool:
    """The panel's own answer, checked against what is on screen."""
    shown = panel.empty_state.isVisibleTo(panel)
    assert panel.is_empty() == shown
    return bool(shown)


@pytest.mark.parametrize("name", list(PANELS))
def test_every_panel_starts_with_a_sentence_instead_of_blank_content(
    make: Callable[[str], Any], name: str
) -> None:
    panel = make(name)
    assert showing_empty(panel)
    state = panel.empty_state
    assert state.title() and len(state.text()) > 60  # says what shows here and what to do
    assert state.text().rstrip().endswith(".")


def test_monitor_shows_charts_once_a_run_is_shown_and_forgets_it_on_request(
    make: Callable[[str], Any], trained: tuple[Path, int]
) -> None:
    db, run_id = trained
    panel: MonitorPanel = make("monitor")
    assert "Ctrl+Return" in panel.empty_state.text()
    assert not panel.content.isVisibleTo(panel) and panel.run_label.text() == ""
    with RunStore.open(db) as store:
        panel.show_stored_run(*read_for_monitor(store, run_id))
    assert not showing_empty(panel) and panel.content.isVisibleTo(panel)
    assert panel.loss_chart.points("train (step)") > 0
    panel.show_nothing()
    assert showing_empty(panel) and panel.run_id is None
    panel.begin(run_id + 1)  # a live run starting: charts at once, before its first step
    assert not showing_empty(panel)
    panel.state.set_db_path(db)  # another database: the run shown belonged to the old one
    assert showing_empty(panel)


def test_runs_says_where_runs_are_saved_then_lists_them_and_explains_an_empty_search(
    qtbot: QtBot, make: Callable[[str], Any], db_path: Path, trained: tuple[Path, int]
) -> None:
    panel: RunsPanel = make("runs")
    assert panel.empty_state.title() == "No runs yet"
    assert str(db_path) in panel.empty_state.text()
    assert not panel.table.isVisibleTo(panel)
    assert not panel.clear_filters_button.isVisibleTo(panel)

    with RunStore.open(db_path) as store:  # a run is saved; the window refreshes the list
        run_id = store.create_run(spec_json="{}", spec_hash="h", status=COMPLETED)
    panel.refresh()
    settle(qtbot, panel)
    assert not showing_empty(panel) and panel.table.isVisibleTo(panel)

    panel.set_filter("no-such-run")
    settle(qtbot, panel)
    assert showing_empty(panel)
    assert panel.empty_state.title() == "No run matches “no-such-run”"
    assert panel.clear_filters_button.isVisibleTo(panel)
    panel.clear_filters_button.click()
    settle(qtbot, panel)
    assert panel.search.text() == "" and not showing_empty(panel)

    panel.select_run(run_id)
    panel.archive_selected(True)
    settle(qtbot, panel)
    assert showing_empty(panel)
    assert panel.empty_state.title() == "Every run here is archived"
    panel.show_archived_button.click()
    settle(qtbot, panel)
    assert panel.archived_box.isChecked() and not showing_empty(panel)

    panel.state.set_db_path(trained[0])  # another database with a real run
    settle(qtbot, panel)
    assert not showing_empty(panel) and panel.model.rowCount() >= 1


def test_compare_explains_how_to_choose_runs_until_two_are_chosen(
    qtbot: QtBot, make: Callable[[str], Any], trained: tuple[Path, int]
) -> None:
    db, run_id = trained
    panel: ComparePanel = make("compare")
    assert "Ctrl+click" in panel.empty_state.text()
    panel.state.set_db_path(db)
    other = run_without_weights(db, run_id, COMPLETED)
    panel.show_runs([run_id])
    settle(qtbot, panel)
    assert showing_empty(panel)
    panel.show_runs([run_id, other])
    settle(qtbot, panel)
    assert not showing_empty(panel) and panel.charts["loss"].isVisibleTo(panel)
    assert panel.curve_names("loss")


def test_evaluate_says_why_nothing_shows_until_the_run_is_evaluated(
    qtbot: QtBot, make: Callable[[str], Any], trained: tuple[Path, int]
) -> None:
    db, run_id = trained
    panel: EvaluationPanel = make("evaluate")
    assert panel.empty_state.title() == "No run selected"
    panel.state.set_db_path(db)
    with RunStore.open(db) as store:  # a run evaluated by another test: not evaluated yet
        store.update_summary(run_id, {"evaluation": None})
    broken = run_without_weights(db, run_id)
    panel.set_run(broken)
    settle(qtbot, panel)
    assert showing_empty(panel)
    assert panel.empty_state.title() == f"Run {broken} has no trained weights"

    panel.set_run(run_id)
    settle(qtbot, panel)
    assert showing_empty(panel) and not panel.results.isVisibleTo(panel)
    assert panel.empty_state.title() == f"Run {run_id} has not been evaluated yet"
    panel.mistake_limit = 2
    with qtbot.waitSignal(panel.evaluated, timeout=60_000):
        assert panel.evaluate("test") is not None
        assert panel.empty_state.title() == f"Evaluating run {run_id}…"
    assert not showing_empty(panel) and panel.results.isVisibleTo(panel)
    panel.set_run(None)
    settle(qtbot, panel)
    assert showing_empty(panel) and panel.empty_state.title() == "No run selected"


def test_predict_asks_for_images_and_shows_their_rows(
    qtbot: QtBot, make: Callable[[str], Any], trained: tuple[Path, int], tmp_path: Path
) -> None:
    from PIL import Image

    db, run_id = trained
    panel: PredictPanel = make("predict")
    assert panel.empty_state.title() == "No run selected"
    panel.state.set_db_path(db)
    panel.set_run(run_id)
    settle(qtbot, panel)
    assert showing_empty(panel) and panel.empty_state.title() == "Drop images here"
    assert f"run {run_id}" in panel.empty_state.text()
    image = tmp_path / "one.png"
    Image.fromarray(np.zeros((16, 16, 3), dtype=np.uint8)).save(image)
    task = panel.predict_paths([str(image)])
    assert task is not None
    assert panel.empty_state.title() == f"Predicting with run {run_id}…"
    with qtbot.waitSignal(task.finished, timeout=60_000):
        pass
    assert not showing_empty(panel) and panel.table.isVisibleTo(panel)
    panel.clear()
    assert showing_empty(panel) and panel.empty_state.title() == "Drop images here"


def test_sweep_explains_sweeps_then_waits_for_and_shows_its_trials(
    make: Callable[[str], Any],
) -> None:
    panel: SweepPanel = make("sweep")
    assert panel.empty_state.title() == "No sweep yet"
    assert "Launch sweep" in panel.empty_state.text()
    search = SearchSpec.from_dict(
        {
            "base": panel.state.run_spec(),
            "params": [{"path": "train.lr", "values": [0.01, 0.02]}],
            "strategy": "grid",
        }
    )
    assert panel.launch(search)
    assert showing_empty(panel) and panel.empty_state.title() == "Waiting for the first trial"
    panel.stop()  # stopped before any trial ended
    assert showing_empty(panel) and panel.empty_state.title() == "No trial finished"
    assert panel.launch(search)
    panel.runner.trial.emit(
        {"number": 0, "state": "complete", "params": {"train.lr": 0.01}, "value": 0.4}
    )
    assert not showing_empty(panel) and panel.table.isVisibleTo(panel)


def test_tune_explains_its_tuners_until_one_has_a_result(make: Callable[[str], Any]) -> None:
    panel: TunePanel = make("tune")
    assert "seconds" in panel.empty_state.text() and not panel.intro.isVisibleTo(panel)
    assert panel.lr_section.run_button.isVisibleTo(panel)  # the tuners stay usable
    panel.runner.fail_with = "The data could not be read."
    panel.run("lr", panel.lr_section.options())
    assert showing_empty(panel)  # a failure is no result to show
    panel.runner.fail_with = None
    panel.runner.results["batch-size"] = CANNED["batch-size"]
    panel.run("batch-size", {"limit": 64})
    assert not showing_empty(panel) and panel.intro.isVisibleTo(panel)
