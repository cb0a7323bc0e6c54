"""Progress with the time left: the bar itself on a stepped clock, and the viewing panels'
long tasks (evaluating, predicting, a sweep's trials, a tuner) showing "N of M" beside it.

The clock is injected, so the ETA is checked without sleeping; the real tasks are waited
on through their signals.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PySide6.QtCore import QThreadPool
from PySide6.QtWidgets import QWidget
from pytestqt.qtbot import QtBot

from cnn_lab.app.panels.evaluation_panel import EvaluationPanel
from cnn_lab.app.panels.predict_panel import PredictPanel
from cnn_lab.app.panels.sweep_panel import SweepPanel
from cnn_lab.app.panels.tune_panel import TunePanel
from cnn_lab.app.state import AppState
from cnn_lab.app.widgets.task_progress import TaskProgress
from cnn_lab.engine.search.spec import SearchSpec
from cnn_lab.engine.util.progress_eta import EtaEstimator
from tests.app.fake_sweep_runner import FakeSweepRunner
from tests.app.settle import settle
from tests.app.trained_run import train_tiny_run
from tests.app.tune_results import CANNED, FakeRunner

LEFT = re.compile(r"(\d+):(\d\d) left")


class FakeClock:
    """Seconds that pass only when the test says so."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def seconds_left(label: str) -> int | None:
    """The ``m:ss left`` of a progress label, in seconds (None: no ETA shown)."""
    found = LEFT.search(label)
    return None if found is None else int(found[1]) * 60 + int(found[2])


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def progress(qtbot: QtBot, clock: FakeClock) -> Iterator[TaskProgress]:
    parent = QWidget()  # held here: the bar lives only as long as its parent
    qtbot.addWidget(parent)
    bar = TaskProgress(parent, clock=clock)
    parent.show()
    yield bar


# ------------------------------------------------------------------ the bar on a fake clock


def test_the_bar_is_busy_then_counts_then_shows_a_falling_eta(
    progress: TaskProgress, clock: FakeClock
) -> None:
    assert progress.isHidden()
    progress.start("Evaluating")
    assert progress.isVisible()
    assert (progress.bar.minimum(), progress.bar.maximum()) == (0, 0)  # busy: no total yet
    assert progress.label.text() == "Evaluating"

    progress.update_progress("Evaluating", 0, 100)
    assert progress.label.text() == "Evaluating · 0 of 100"
    assert progress.bar.maximum() == 100
    clock.now += 0.5
    progress.update_progress("Evaluating", 10, 100)
    assert progress.label.text() == "Evaluating · 10 of 100"  # half a second: no guess yet
    assert progress.seconds_left() is None

    clock.now += 1.5  # two seconds in, 40 done: 0.05 s each, 60 to go
    progress.update_progress("Evaluating", 40, 100)
    first = seconds_left(progress.label.text())
    assert progress.label.text().startswith("Evaluating · 40 of 100 · ")
    assert first == 3
    assert progress.bar.value() == 40

    clock.now += 2.0
    progress.update_progress("Evaluating", 80, 100)
    later = seconds_left(progress.label.text())
    assert later is not None and later < first
    assert progress.label.text() == "Evaluating · 80 of 100 · 0:01 left"

    progress.finish()
    assert progress.isHidden() and progress.label.text() == ""


def test_an_unknown_total_stays_busy_and_a_new_stage_starts_the_estimate_over(
    progress: TaskProgress, clock: FakeClock
) -> None:
    progress.start("Loading")
    progress.update_progress("Loading the run", 0, 0)
    assert (progress.bar.minimum(), progress.bar.maximum()) == (0, 0)
    assert progress.label.text() == "Loading the run"  # no "of", no made-up ETA
    progress.update_progress("Predicting", 0, 50)
    clock.now += 2.0
    progress.update_progress("Predicting", 25, 50)
    assert seconds_left(progress.label.text()) == 2
    progress.update_progress("Saving", 1, 10)  # another stage: its own estimate
    assert progress.label.text() == "Saving · 1 of 10"
    assert progress.seconds_left() is None


# ------------------------------------------------------------------ panels with real tasks


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    db = tmp_path_factory.mktemp("task-progress") / "runs.sqlite"
    return db, train_tiny_run(db)


def _record_labels(task: Any, progress: TaskProgress, seen: list[tuple[str, bool]]) -> None:
    """Note the bar's label each time the task reports: connected after the panel's own
    slot, so it reads what the panel has just shown."""
    task.progress.connect(
        lambda *_: seen.append((progress.label.text(), progress.bar.maximum() > 0))
    )


def test_evaluate_counts_its_batches_beside_the_bar(
    qtbot: QtBot, trained: tuple[Path, int]
) -> None:
    db, run_id = trained
    panel = EvaluationPanel(AppState(db))
    qtbot.addWidget(panel)
    panel.show()
    panel.set_run(run_id)
    settle(qtbot, panel)
    panel.mistake_limit = 3
    seen: list[tuple[str, bool]] = []
    with qtbot.waitSignal(panel.evaluated, timeout=60_000):
        task = panel.evaluate("test")
        assert task is not None
        assert panel.progress.isVisible() and panel.progress.label.text() == "Loading the run"
        _record_labels(task, panel.progress, seen)
    counted = [text for text, determinate in seen if determinate]
    assert any(re.search(r"^Evaluating · \d+ of \d+", text) for text in counted), seen
    assert panel.progress.isHidden()  # done: the bar goes
    QThreadPool.globalInstance().waitForDone(30_000)


def test_predict_counts_its_images_beside_the_bar(
    qtbot: QtBot, trained: tuple[Path, int], tmp_path: Path
) -> None:
    from PIL import Image

    db, run_id = trained
    panel = PredictPanel(AppState(db))
    qtbot.addWidget(panel)
    panel.show()
    panel.set_run(run_id)
    settle(qtbot, panel)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(4):
        path = tmp_path / f"image-{i}.png"
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(path)
        paths.append(str(path))
    seen: list[tuple[str, bool]] = []
    task = panel.predict_paths(paths)
    assert task is not None and panel.progress.isVisible()
    _record_labels(task, panel.progress, seen)
    with qtbot.waitSignal(task.finished, timeout=60_000):
        pass
    assert ("Predicting · 4 of 4", True) in [(t.split(" · 0:")[0], d) for t, d in seen], seen
    assert panel.progress.isHidden() and panel.table.rowCount() == 4
    QThreadPool.globalInstance().waitForDone(30_000)


# ------------------------------------------------------------------ a sweep's trials, a tuner


def _outcome(number: int) -> dict[str, Any]:
    return {
        "number": number,
        "state": "complete",
        "params": {"train.lr": 0.01 * (number + 1)},
        "value": 0.5,
        "epochs": 1,
        "run_id": None,
    }


@pytest.fixture
def sweep_panel(qtbot: QtBot, db_path: Path) -> Iterator[SweepPanel]:
    panel = SweepPanel(AppState(db_path), runner_factory=FakeSweepRunner, probe_factory=FakeRunner)
    qtbot.addWidget(panel)
    panel.show()
    yield panel
    panel.shutdown()


def test_a_sweep_counts_its_trials_with_the_time_left(
    sweep_panel: SweepPanel, clock: FakeClock
) -> None:
    panel = sweep_panel
    panel.trials_progress.eta = EtaEstimator(clock)
    search = SearchSpec.from_dict(
        {
            "base": panel.state.run_spec(),
            "params": [{"path": "train.lr", "values": [0.01, 0.02, 0.03, 0.04]}],
            "strategy": "grid",
        }
    )
    assert panel.launch(search)
    assert panel.trials_progress.isVisible()
    assert panel.trials_progress.label.text() == "Trials · 0 of 4"
    runner = panel.runner
    for number in range(2):
        clock.now += 30.0
        runner.trial.emit(_outcome(number))
    assert panel.trials_progress.label.text() == "Trials · 2 of 4 · 1:00 left"
    clock.now += 30.0
    runner.trial.emit(_outcome(2))
    assert panel.trials_progress.label.text() == "Trials · 3 of 4 · 0:30 left"
    runner.running = False
    runner.finished.emit({"trials": [_outcome(n) for n in range(4)], "metric": "val.accuracy"})
    assert panel.trials_progress.isHidden()
    assert panel.progress_label.text() == "Done: 4 trials."


def test_a_tuner_shows_its_steps_beside_the_bar(qtbot: QtBot, db_path: Path) -> None:
    panel = TunePanel(AppState(db_path), runner_factory=FakeRunner)
    qtbot.addWidget(panel)
    panel.show()
    runner = panel.runner
    runner.hold = True
    section = panel.lr_section
    assert panel.run("lr", section.options())
    assert section.progress.isVisible()
    assert section.progress.label.text() == "Starting the tuning process…"
    runner.progress.emit("lr range test", 30, 100)
    assert section.progress.label.text() == "LR range test · 30 of 100"
    runner.progress.emit("Decoding images", 5, 0)
    assert section.progress.label.text() == "Decoding images"  # no total: busy, no ETA
    runner.finished.emit(CANNED["lr"]())
    assert section.progress.isHidden() and panel.running is None
