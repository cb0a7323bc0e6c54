"""The Optimize panel: the action opens it, a run shows every phase and the card, Apply and Keep.

The run is a real child process (OptimizeRunner) with planted tuners on a fake clock
(tests/app/planted_optimize.py): no torch steps, a real TPE search recording real runs, so
the panel's path from Start to the card is the one a person takes, in seconds.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QObject
from pytestqt.qtbot import QtBot

from cnn_lab.app.bridge.optimize_runner import OptimizeRunner
from cnn_lab.app.main_window import MainWindow
from cnn_lab.app.panels.optimize_panel import OptimizePanel
from cnn_lab.app.state import AppState
from cnn_lab.engine.optimize import OPTIMIZE_KIND, PHASES, stored_result
from cnn_lab.engine.store import RunStore
from cnn_lab.engine.store import status as st
from tests.app.models.test_optimize_form import result_with
from tests.engine.test_optimize import SPEC

PLANTED = "tests.app.planted_optimize:planted"
END_WAIT_MS = 120_000


def planted_runner(parent: QObject) -> OptimizeRunner:
    return OptimizeRunner(parent, planted=PLANTED)


@pytest.fixture
def panel(qtbot: QtBot, db_path: Path) -> Iterator[OptimizePanel]:
    state = AppState(db_path)
    state.update(dataset=SPEC.dataset, architecture=SPEC.architecture, train=SPEC.train)
    panel = OptimizePanel(state, runner_factory=planted_runner)
    qtbot.addWidget(panel)
    panel.resize(1280, 560)
    panel.show()
    yield panel
    panel.shutdown()


def test_the_optimize_action_opens_the_panel(window: MainWindow) -> None:
    action = window.menu_actions["Optimize…"]
    assert action in window.menuBar().actions()[2].menu().actions()  # the Run menu
    assert any(action in bar.actions() for bar in window.findChildren(type(window.addToolBar("x"))))
    action.trigger()
    assert window.tabs.currentWidget() is window.optimize_panel
    assert window.optimize_panel.is_empty()


def test_a_run_shows_every_phase_and_the_card_then_apply_and_keep(
    qtbot: QtBot, panel: OptimizePanel
) -> None:
    progress: list[tuple] = []
    panel.runner.progress.connect(progress.append)
    with qtbot.waitSignal(panel.optimize_ended, timeout=END_WAIT_MS) as ended:
        assert panel.start()
        assert panel.running and not panel.start_button.isEnabled()
    assert ended.args == ["finished"], panel.problem_label.text()
    assert panel.phases_seen == list(PHASES)
    assert progress and all(p[0] in PHASES for p in progress)
    assert all(panel.phase_titles[p].text() for p in PHASES)
    assert "45% of the budget" in panel.phase_titles["search"].text()
    result = panel.result
    assert result is not None and result.final_run_id is not None
    card = panel.card.toPlainText()
    assert "precision=bf16" in card and "1.70x" in card  # a decision with its evidence
    assert "Tried and rejected" in card and "channels_last" in card
    assert "Final run" in card and " of " in card  # time per phase against its allotment
    assert "Budget held" in card
    assert not panel.is_empty() and panel.apply_button.isEnabled()

    assert panel.apply()
    assert panel.state.train == result.chosen.train
    assert "Hyperparameters:" in panel.outcome_label.text()

    with qtbot.waitSignal(panel.run_kept) as kept:
        assert panel.keep_run() == result.final_run_id
    assert kept.args == [result.final_run_id]
    with RunStore.open(panel.state.db_path) as store:
        archived = {r.id for r in store.list_runs(limit=1000) if r.archived}
    assert result.final_run_id not in archived
    assert archived == set(result.run_ids) - {result.final_run_id}  # the trials


def test_a_refusal_is_a_sentence_and_nothing_starts(panel: OptimizePanel) -> None:
    panel.budget_spin.setValue(0.0)
    assert not panel.start()
    assert not panel.runner.running and not panel.running
    assert panel.problem_label.isVisibleTo(panel)
    assert "budget must be a positive number of minutes" in panel.problem_label.text()
    panel.budget_spin.setValue(5.0)
    panel.goal_box.setCurrentIndex(panel.goal_box.findData("target"))
    panel.widths_edit.setText("0.5, wide")
    assert not panel.start()
    assert "'wide' is not a width" in panel.problem_label.text()


def test_apply_shows_the_new_rate_in_the_hyperparameters_panel(window: MainWindow) -> None:
    chosen = SPEC.model_copy(update={"train": SPEC.train.model_copy(update={"lr": 0.0123})})
    window.optimize_panel.show_result(result_with(chosen))
    assert window.optimize_panel.apply()
    assert window.state.train.lr == pytest.approx(0.0123)
    assert window.hyperparameters_panel.lr.value() == pytest.approx(0.0123)


def test_the_panel_loads_neither_torch_nor_optuna_until_it_runs() -> None:
    """The window imports it at start: it must appear without waiting for either."""
    code = (
        "import sys, cnn_lab.app.panels.optimize_panel; "
        "print(sorted(m for m in ('torch', 'optuna') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_closing_the_window_during_optimize_asks_then_keeps_what_it_decided(
    qtbot: QtBot, window: MainWindow, db_path: Path
) -> None:
    panel = window.optimize_panel
    panel.runner.planted = "tests.app.planted_optimize:blocking"
    window.state.update(dataset=SPEC.dataset, architecture=SPEC.architecture, train=SPEC.train)

    def a_trial_runs() -> bool:
        with RunStore.open(db_path) as store:
            return any(r.status == st.RUNNING for r in store.list_runs(limit=100))

    assert panel.start()
    qtbot.waitUntil(a_trial_runs, timeout=END_WAIT_MS)
    questions: list[str] = []
    window.confirm_close = lambda question: questions.append(question) or False  # Cancel
    assert not window.close()
    assert questions == [
        "Optimize is running. Stop it and close? It keeps its best run so far and a record "
        "of what it decided."
    ]
    assert window.isVisible() and panel.running

    window.confirm_close = lambda question: questions.append(question) or True  # Yes
    assert window.close()
    assert not panel.runner.running
    with RunStore.open(db_path) as store:
        (experiment,) = store.experiments(OPTIMIZE_KIND)
        runs = [store.get_run(i) for i in store.experiment_runs(experiment["id"])]
    assert runs and all(r.status == st.STOPPED for r in runs), runs
    result = stored_result(db_path, experiment["id"])
    assert result is not None and result.stopped  # what it decided is on the experiment
    assert any(d.phase == "rate" for d in result.decisions)
