"""The Predict panel: files and dropped folders in, ranked classes out, a broken file a row."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt, QThreadPool
from PySide6.QtGui import QPixmap
from pytestqt.qtbot import QtBot

from cnn_lab.app.models.predict_form import DEFAULT_TOP
from cnn_lab.app.panels.predict_panel import PredictPanel
from cnn_lab.app.state import AppState
from cnn_lab.engine.store import RunStore
from tests.app.drops import drag_enter, drop_event, files_mime
from tests.app.settle import settle
from tests.app.trained_run import run_without_weights, train_tiny_run


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, list[str]]:
    from cnn_lab.engine.models.trained import load_trained

    db = tmp_path_factory.mktemp("predict-panel") / "runs.sqlite"
    run_id = train_tiny_run(db)
    with RunStore.open(db) as store:
        classes = load_trained(store, run_id).classes
    return db, run_id, classes


@pytest.fixture
def panel(qtbot: QtBot, trained: tuple[Path, int, list[str]]) -> Iterator[PredictPanel]:
    widget = PredictPanel(AppState(trained[0]))
    qtbot.addWidget(widget)
    widget.resize(900, 600)
    widget.show()
    widget.set_run(trained[1])
    settle(qtbot, widget)
    yield widget
    QThreadPool.globalInstance().waitForDone(30_000)


def _write_images(folder: Path, count: int, side: int = 24) -> list[Path]:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(count)
    paths = []
    for i in range(count):
        path = folder / f"image-{i}.png"
        Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def test_files_are_predicted_with_a_row_for_the_unreadable_one(
    qtbot: QtBot,
    panel: PredictPanel,
    trained: tuple[Path, int, list[str]],
    tmp_path: Path,
) -> None:
    _, run_id, classes = trained
    images = _write_images(tmp_path / "files", 2)
    broken = tmp_path / "files" / "broken.png"
    broken.write_bytes(b"not an image")
    task = panel.predict_paths([str(p) for p in [*images, broken]])
    assert task is not None
    with qtbot.waitSignal(task.finished, timeout=60_000):
        pass
    assert panel.table.rowCount() == 3
    assert panel.status.text() == (
        f"Run {run_id} predicted 2 images; 1 could not be read (see their rows)."
    )
    shown = panel.shown_predictions()
    for row, p in enumerate(shown[:2]):
        assert len(p.top) == DEFAULT_TOP and all(name in classes for name, _ in p.top)
        assert [q for _, q in p.top] == sorted((q for _, q in p.top), reverse=True)
        assert panel.table.item(row, 1).text() == images[row].name
        assert panel.table.item(row, 2).text().startswith(f"{p.top[0][0]} {p.top[0][1]:.1%}")
        thumbnail = panel.table.item(row, 0).data(Qt.ItemDataRole.DecorationRole)
        assert isinstance(thumbnail, QPixmap) and not thumbnail.isNull()
    assert shown[2].top == [] and shown[2].error
    assert panel.table.item(2, 2).text() == f"Not read: {shown[2].error}"
    assert panel.table.item(2, 0).data(Qt.ItemDataRole.DecorationRole) is None
    # Every class's probability is kept, so "Top" redraws without predicting again.
    panel.top.setValue(1)
    assert panel.task is None
    assert [len(p.top) for p in panel.shown_predictions()] == [1, 1, 0]
    assert "   " not in panel.table.item(0, 2).text()

    out = tmp_path / "predictions.csv"
    assert panel.save_csv(str(out))
    with open(out, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["image", "class_1", "probability_1", "error"]
    assert [r[0] for r in rows[1:]] == [str(p) for p in [*images, broken]]
    assert rows[1][1] == shown[0].top[0][0] and rows[1][3] == ""
    assert rows[3][1] == "" and rows[3][3] == shown[2].error
    assert not panel.save_csv(str(tmp_path / "missing" / "p.csv"))
    assert panel.status.text().startswith("Could not write")


def test_a_dropped_folder_is_predicted_with_the_cached_predictor(
    qtbot: QtBot,
    panel: PredictPanel,
    tmp_path: Path,
) -> None:
    first = _write_images(tmp_path / "first", 1)
    with qtbot.waitSignal(panel.predict_paths([str(first[0])]).finished, timeout=60_000):  # type: ignore[union-attr]
        pass
    predictor = panel.predictor
    assert predictor is not None

    folder = tmp_path / "dropped"
    _write_images(folder / "nested", 3)
    (folder / "notes.txt").write_text("not an image, and not named like one")
    mime = files_mime(folder)  # held here: the events do not own it
    assert drag_enter(panel, mime).isAccepted()
    drop = drop_event(mime)
    panel.dropEvent(drop)
    assert drop.isAccepted() and panel.task is not None
    # A second drop while the first is busy waits for it, then follows.
    more = _write_images(tmp_path / "more", 2)
    assert panel.predict_paths([str(p) for p in more]) is panel.task
    qtbot.waitUntil(lambda: panel.task is None and panel.table.rowCount() == 6, timeout=60_000)
    assert panel.predictor is predictor  # built once for the run
    names = [panel.table.item(r, 1).text() for r in range(6)]
    first_drop, folder_drop, waiting_drop = names[:1], names[1:4], names[4:]
    assert first_drop == ["image-0.png"]
    assert folder_drop == ["image-0.png", "image-1.png", "image-2.png"]  # notes.txt skipped
    assert waiting_drop == ["image-0.png", "image-1.png"]
    assert all(p.top for p in panel.predictions)

    panel.set_run(None)  # another run: the rows were the last run's answers
    settle(qtbot, panel)
    assert panel.table.rowCount() == 0 and panel.predictor is None
    assert panel.predict_paths([str(first[0])]) is None


def test_a_run_without_weights_cannot_predict(
    qtbot: QtBot,
    panel: PredictPanel,
    trained: tuple[Path, int, list[str]],
    tmp_path: Path,
) -> None:
    db, run_id, _ = trained
    failed = run_without_weights(db, run_id)
    panel.set_run(failed)
    settle(qtbot, panel)
    assert panel.status.text() == f"Run {failed} has no trained weights to predict with."
    assert not panel.add_images_button.isEnabled()
    assert panel.predict_paths([str(tmp_path)]) is None
    assert not drag_enter(panel, files_mime(tmp_path)).isAccepted()


def test_an_empty_folder_is_a_sentence(
    qtbot: QtBot,
    panel: PredictPanel,
    tmp_path: Path,
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with qtbot.waitSignal(panel.predict_paths([str(empty)]).failed, timeout=30_000):  # type: ignore[union-attr]
        pass
    assert panel.status.text().startswith("No images to predict")
    assert panel.table.rowCount() == 0
