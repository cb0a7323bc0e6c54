"""The Sweep panel opens any sweep the run database remembers, not only one launched here.

A real sweep (three one-epoch trials, trained and recorded by the engine as ``cnn-lab sweep``
would) is made once into a database; each test opens a copy of it in a fresh panel, as after
a restart: the chooser lists it, Open fills the results side exactly as the sweep's own end
did, and a study that is gone or damaged costs a sentence, never the runs or a traceback.
The smaller cases (an unfinished sweep, opening while one runs) use planted trials.
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt, QThreadPool
from pytestqt.qtbot import QtBot

from cnn_lab.app.panels.sweep_panel import SweepPanel
from cnn_lab.app.state import AppState
from cnn_lab.engine.search import SearchSpec
from cnn_lab.engine.search.storage import default_storage_path
from cnn_lab.engine.search.study import run_sweep
from tests.app.fake_sweep_runner import FakeSweepRunner
from tests.app.settle import settle
from tests.app.tune_results import FakeRunner
from tests.engine.planted_sweep import StoredEpochTrainer, planted_sweep

OPEN_TIMEOUT_MS = 30_000
NAME = "three-rates"
REAL = {
    "base": {
        "dataset": {"source": "sample:shapes", "limit": 120, "image_size": 16},
        "train": {"epochs": 1, "batch_size": 32, "device": "cpu"},
    },
    "params": [{"path": "train.lr", "values": [0.01, 0.05, 0.1]}],
    "strategy": "grid",
    "name": NAME,
}


@pytest.fixture(scope="module")
def real_sweep(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """A folder holding a database and journal with one finished sweep; its live result."""
    folder = tmp_path_factory.mktemp("sweep-history")
    result = run_sweep(SearchSpec.from_dict(REAL), folder / "runs.sqlite", sample_system=False)
    assert result.trials_done == 3
    return folder, result.to_dict()


@pytest.fixture
def copy_of(real_sweep: tuple[Path, dict[str, Any]], tmp_path: Path) -> Path:
    """This test's own copy of the sweep's database (and journal): it may break it."""
    shutil.copytree(real_sweep[0], tmp_path / "db")
    return tmp_path / "db" / "runs.sqlite"


@pytest.fixture
def make(qtbot: QtBot) -> Iterator[Callable[[Path], SweepPanel]]:
    """A fresh Sweep panel on ``db``, shown (which lists the database's sweeps)."""
    made: list[SweepPanel] = []

    def build(db: Path) -> SweepPanel:
        panel = SweepPanel(AppState(db), runner_factory=FakeSweepRunner, probe_factory=FakeRunner)
        qtbot.addWidget(panel)
        panel.resize(1280, 720)
        panel.show()
        made.append(panel)
        settle(qtbot, panel)  # showing it lists the database's sweeps, off the GUI thread
        return panel

    yield build
    for panel in made:
        panel.shutdown()
    QThreadPool.globalInstance().waitForDone(10_000)


def click(qtbot: QtBot, button: Any) -> None:
    assert button.isVisible() and button.isEnabled()
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def open_chosen(qtbot: QtBot, panel: SweepPanel) -> None:
    """Press Open and wait for the background read to be shown (or refused)."""
    click(qtbot, panel.open_button)
    assert panel.progress_label.text().startswith("Opening sweep ")
    assert not panel.open_button.isEnabled()  # one read at a time
    qtbot.waitUntil(lambda: panel.saved_row.task is None, timeout=OPEN_TIMEOUT_MS)


def test_a_past_sweep_opens_as_if_it_had_just_ended(
    qtbot: QtBot,
    make: Callable[[Path], SweepPanel],
    copy_of: Path,
    real_sweep: tuple[Path, dict[str, Any]],
) -> None:
    live = real_sweep[1]
    panel = make(copy_of)
    assert panel.is_empty() and panel.empty_state.title() == "No sweep yet"
    assert [panel.saved_box.itemText(i) for i in range(panel.saved_box.count())] == [
        f"{NAME}: 3 of 3 trials, finished"
    ]
    assert panel.open_button.isEnabled() and not panel.resume_button.isEnabled()

    open_chosen(qtbot, panel)
    assert not panel.error.isVisible(), panel.error.text()
    assert not panel.is_empty() and panel.table.isVisibleTo(panel)
    # The very rows the sweep's end filled: same outcomes, same best, same buttons.
    assert panel.table.rowCount() == 3
    assert list(panel.table.outcomes.values()) == live["trials"]
    assert {panel.table.item(r, 1).text() for r in range(3)} == {"complete"}
    assert panel.progress_label.text() == f"Sweep {NAME}: 3 trials, read from the database."
    assert panel.best_label.text() == (
        f"Best: trial {live['best_trial']}, val.accuracy {live['best_value']:.4f} "
        f"(run {live['best_run_id']})."
    )
    assert len(panel.parallel.lines) == 3
    assert panel.parallel.axes == ["train.lr", "val.accuracy"]
    assert "train.lr" in panel.importance.text() and "100%" in panel.importance.text()
    assert panel.report_button.isEnabled() and panel.train_best_button.isEnabled()
    assert panel.where_label.text() == ""  # read from its study: nothing to excuse

    panel.table.selectRow(0)
    (run_id,) = panel.table.selected_run_ids()
    settle(qtbot, panel)  # the trial's curve is read off the GUI thread
    assert panel.curves.curve_names() == [f"run {run_id}"]
    assert panel.curves.points(f"run {run_id}") == 1  # one epoch, one point

    with qtbot.waitSignal(panel.train_requested):
        click(qtbot, panel.train_best_button)
    assert panel.state.train.lr == live["best_params"]["train.lr"]
    assert panel.state.dataset.limit is None

    # Another database has no sweeps: its chooser is empty, and this sweep is not shown.
    panel.state.set_db_path(copy_of.parent / "other.sqlite")
    settle(qtbot, panel)
    assert panel.saved_box.count() == 0 and not panel.saved_box.isEnabled()
    assert panel.saved_box.placeholderText() == "No sweeps in this database yet"
    assert not panel.open_button.isEnabled() and not panel.resume_button.isEnabled()
    assert panel.is_empty() and panel.empty_state.title() == "No sweep yet"
    assert panel.table.rowCount() == 0 and not panel.train_best_button.isEnabled()


def test_a_database_without_sweeps_offers_nothing_to_open(
    make: Callable[[Path], SweepPanel], db_path: Path
) -> None:
    panel = make(db_path)
    assert panel.saved_row.isVisible() and panel.saved_box.count() == 0
    assert panel.saved_box.currentText() == "" and not panel.saved_box.isEnabled()
    assert not panel.open_button.isEnabled() and not panel.resume_button.isEnabled()
    assert panel.open_saved() is None
    assert panel.is_empty() and panel.empty_state.title() == "No sweep yet"


@pytest.mark.parametrize(
    ("damage", "phrase"),
    [
        (lambda journal: journal.unlink(), "is missing"),
        (lambda journal: journal.write_text("{not json\nnor this\n"), "looks damaged"),
    ],
    ids=["missing", "damaged"],
)
def test_a_lost_study_opens_the_sweep_from_its_runs_with_a_sentence(
    qtbot: QtBot,
    make: Callable[[Path], SweepPanel],
    copy_of: Path,
    real_sweep: tuple[Path, dict[str, Any]],
    damage: Callable[[Path], Any],
    phrase: str,
) -> None:
    damage(default_storage_path(copy_of))
    live = real_sweep[1]
    panel = make(copy_of)
    assert panel.saved_box.currentText() == f"{NAME}: its study is not here, opens from its runs"
    assert not panel.resume_button.isEnabled()  # resuming would start its study afresh
    open_chosen(qtbot, panel)
    assert not panel.error.isVisible(), panel.error.text()
    note = panel.where_label.text()
    assert phrase in note and note.endswith(
        "so its trials are rebuilt from its recorded runs; parameter importance and resuming "
        "need the study."
    )
    assert panel.table.rowCount() == 3 and not panel.is_empty()
    rebuilt = {n: (o["params"], o["value"], o["run_id"]) for n, o in panel.table.outcomes.items()}
    assert rebuilt == {o["number"]: (o["params"], o["value"], o["run_id"]) for o in live["trials"]}
    assert panel.importance.text() == "Parameter importance needs the sweep's study."
    assert panel.train_best_button.isEnabled() and panel.result is not None
    assert panel.result["best_params"] == live["best_params"]


def test_a_sweep_gone_from_the_database_is_a_sentence(
    qtbot: QtBot, make: Callable[[Path], SweepPanel], copy_of: Path
) -> None:
    panel = make(copy_of)
    with sqlite3.connect(copy_of) as db:  # deleted by another window after the list was made
        db.execute("UPDATE runs SET experiment_id = NULL")
        db.execute("DELETE FROM experiments")
    open_chosen(qtbot, panel)
    assert panel.error.isVisible()
    assert panel.error.text().startswith(f"Sweep {NAME} could not be opened: There is no sweep")
    assert "Traceback" not in panel.error.text()
    assert panel.is_empty() and panel.open_button.isEnabled()


def test_an_unfinished_sweep_opens_and_resumes_but_not_while_one_runs(
    qtbot: QtBot, make: Callable[[Path], SweepPanel], db_path: Path
) -> None:
    planted_sweep(db_path, name="finished")
    stopped = SearchSpec.from_dict(
        {**REAL, "name": "stopped", "params": [{"path": "train.lr", "values": [0.01, 0.02]}]}
    )
    run_sweep(stopped, db_path, trainer=StoredEpochTrainer(), should_stop=lambda: True)
    panel = make(db_path)
    labels = [panel.saved_box.itemText(i) for i in range(panel.saved_box.count())]
    assert labels == ["stopped: 0 of 2 trials, unfinished", "finished: 4 of 4 trials, finished"]
    assert panel.resume_button.isEnabled()  # the newest, unfinished, is chosen
    open_chosen(qtbot, panel)
    assert panel.is_empty() and panel.empty_state.title() == "No trial finished"
    assert "press Resume" in panel.empty_state.text()
    assert not panel.train_best_button.isEnabled() and not panel.report_button.isEnabled()

    panel.saved_box.setCurrentIndex(1)  # the finished one: it opens, it does not resume
    assert panel.open_button.isEnabled() and not panel.resume_button.isEnabled()
    panel.saved_box.setCurrentIndex(0)
    click(qtbot, panel.resume_button)  # the fake runner starts nothing, and runs until stopped
    assert panel.running and panel.search == stopped
    assert not panel.open_button.isEnabled() and not panel.resume_button.isEnabled()
    assert panel.open_saved() is None  # the results side belongs to the running sweep
    assert panel.empty_state.title() == "Waiting for the first trial"
    panel.stop()
    assert not panel.running and panel.open_button.isEnabled()
