"""The Evaluate panel scores a real trained run in the background and shows every part of it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QThreadPool
from pytestqt.qtbot import QtBot

from cnn_lab.app.panels.evaluation_panel import EvaluationPanel
from cnn_lab.app.state import AppState
from cnn_lab.engine.store import RunStore
from cnn_lab.engine.store import status as st
from tests.app.settle import settle
from tests.app.trained_run import (
    TEST_IMAGES,
    run_with_missing_weights,
    run_without_weights,
    train_tiny_run,
)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    db = tmp_path_factory.mktemp("evaluate-panel") / "runs.sqlite"
    return db, train_tiny_run(db)


@pytest.fixture
def panel(qtbot: QtBot, trained: tuple[Path, int]) -> Iterator[EvaluationPanel]:
    widget = EvaluationPanel(AppState(trained[0]))
    qtbot.addWidget(widget)
    widget.resize(1000, 800)
    widget.show()
    yield widget
    QThreadPool.globalInstance().waitForDone(30_000)


def _classes(db: Path, run_id: int) -> list[str]:
    from cnn_lab.engine.models.trained import load_trained

    with RunStore.open(db) as store:
        return load_trained(store, run_id).classes


def test_a_run_is_evaluated_in_the_background_and_shown(
    qtbot: QtBot,
    panel: EvaluationPanel,
    trained: tuple[Path, int],
) -> None:
    db, run_id = trained
    panel.set_run(run_id)
    settle(qtbot, panel)
    assert panel.evaluate_button.isEnabled()
    assert panel.evaluate_button.text() == f"Evaluate run {run_id}"
    assert not panel.results.isVisibleTo(panel)
    panel.mistake_limit = 5
    with qtbot.waitSignal(panel.evaluated, timeout=60_000) as stored:
        task = panel.evaluate("test")
        assert task is not None
        assert panel.evaluate("test") is task  # a second press joins the first
        assert not panel.evaluate_button.isEnabled()
        panel.set_run(run_id)  # the window selects the same run again: it goes on
        settle(qtbot, panel)
        assert panel.task is task and panel.status.text() == f"Evaluating run {run_id}…"
    assert stored.args == [run_id]
    assert panel.task is None and panel.evaluate_button.text() == "Evaluate again"
    assert panel.evaluate_button.isEnabled()

    data = panel.evaluation
    assert data is not None and data["split"] == "test"
    assert panel.results.isVisibleTo(panel)
    assert panel.status.text().startswith(f"Run {run_id} evaluated on its test split (30 images)")
    assert panel.summary.text().startswith(f"Run {run_id} on its test split (30 images): accuracy")
    # The matrix counts every test image once; the table has a row per class.
    classes = _classes(db, run_id)
    assert panel.matrix.total() == TEST_IMAGES
    assert panel.matrix.classes == classes
    assert panel.table.rowCount() == len(classes)
    assert [panel.table.item(r, 0).text() for r in range(len(classes))] == classes
    supports = [int(panel.table.item(r, 4).text()) for r in range(len(classes))]
    assert supports == np.array(panel.matrix.counts).sum(axis=1).tolist()
    # The gallery: the costliest mistakes, at most the limit, each with its picture.
    wrong = TEST_IMAGES - int(np.trace(np.array(panel.matrix.counts)))
    assert panel.gallery.count() == min(panel.mistake_limit, wrong) > 0
    assert panel.gallery.shown_images() == panel.gallery.count()
    first = data["mistakes"][0]
    assert panel.gallery.captions[0].text() == (
        f"{first['true']} → {first['predicted']} ({first['confidence']:.0%})"
    )
    # Kept with the run, as `cnn-lab evaluate` keeps it.
    with RunStore.open(db) as store:
        assert store.get_run(run_id).summary["evaluation"] == data


def test_the_confusion_matrix_names_the_cell_under_the_pointer(
    qtbot: QtBot,
    panel: EvaluationPanel,
) -> None:
    matrix = panel.matrix
    matrix.set_matrix(["cat", "dog"], [[3, 1], [0, 4]])
    matrix.resize(300, 300)
    assert matrix.total() == 8
    for row in range(2):
        for column in range(2):
            assert matrix.cell_at(matrix.cell_rect(row, column).center().toPoint()) == (
                row,
                column,
            )
    assert matrix.cell_at(QPoint(1, 1)) is None  # the names, not a cell
    assert matrix.tooltip_text(0, 1) == "true cat predicted as dog: 1 (25%)"
    assert matrix.tooltip_text(1, 1) == "true dog predicted as dog: 4 (100%)"
    assert not matrix.grab().isNull()  # paints without error
    with pytest.raises(ValueError):
        matrix.set_matrix(["cat"], [[1, 2]])


def test_a_stored_evaluation_shows_at_once_with_its_pictures(
    qtbot: QtBot,
    panel: EvaluationPanel,
    trained: tuple[Path, int],
) -> None:
    db, run_id = trained
    with RunStore.open(db) as store:
        if "evaluation" not in store.get_run(run_id).summary:  # run on its own
            from cnn_lab.engine.evaluation.evaluate import evaluate_run

            store.update_summary(run_id, {"evaluation": evaluate_run(store, run_id).to_dict()})
        stored = store.get_run(run_id).summary["evaluation"]
    panel.set_run(run_id)
    settle(qtbot, panel)
    assert panel.task is None  # nothing evaluated again
    assert panel.evaluation == stored
    assert panel.evaluate_button.text() == "Evaluate again"
    assert panel.matrix.total() == stored["images"]
    assert panel.gallery.count() == len(stored["mistakes"])
    qtbot.waitUntil(lambda: panel.gallery.shown_images() == panel.gallery.count(), timeout=30_000)
    panel.set_run(None)
    settle(qtbot, panel)
    assert panel.status.text() == "Select a run to evaluate it."
    assert not panel.results.isVisibleTo(panel) and not panel.evaluate_button.isVisibleTo(panel)


def test_runs_that_cannot_be_evaluated_say_why(
    qtbot: QtBot,
    panel: EvaluationPanel,
    trained: tuple[Path, int],
) -> None:
    db, run_id = trained
    failed = run_without_weights(db, run_id)
    panel.set_run(failed)
    settle(qtbot, panel)
    assert panel.status.text() == f"Run {failed} has no trained weights to evaluate."
    assert not panel.evaluate_button.isEnabled() and panel.evaluate() is None

    queued = run_without_weights(db, run_id, st.QUEUED)
    panel.set_run(queued)
    settle(qtbot, panel)
    assert panel.status.text() == (
        f"Run {queued} is still queued: evaluate it once it has finished."
    )
    assert panel.evaluate() is None

    missing = run_with_missing_weights(db, run_id)
    panel.set_run(missing)
    settle(qtbot, panel)
    with qtbot.waitSignal(panel.evaluate().failed, timeout=30_000):  # type: ignore[union-attr]
        pass
    assert panel.status.text().startswith(f"Run {missing}'s weights file is missing")
    assert panel.evaluate_button.isEnabled()  # may be tried again once the file is back
    assert panel.evaluation is None

    panel.set_run(12345)
    settle(qtbot, panel)
    assert panel.status.text().startswith("There is no run 12345")


def test_cancel_stops_an_evaluation_and_another_run_stops_it_too(
    qtbot: QtBot, panel: EvaluationPanel, trained: tuple[Path, int]
) -> None:
    _, run_id = trained
    panel.set_run(run_id)
    settle(qtbot, panel)
    task = panel.evaluate()
    assert task is not None and panel.cancel_button.isVisible()
    with qtbot.waitSignal(task.cancelled, timeout=30_000):
        panel.cancel_button.click()
    assert panel.status.text() == "Evaluation cancelled."
    assert panel.task is None and panel.evaluate_button.isEnabled()

    task = panel.evaluate()
    assert task is not None
    with qtbot.waitSignal(task.cancelled, timeout=30_000):
        panel.set_run(None)  # its result would show nowhere
        settle(qtbot, panel)
    assert panel.task is None and panel.status.text() == "Select a run to evaluate it."
