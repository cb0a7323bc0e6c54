"""The first run: an empty database offers the samples and a preset, and one click trains."""

from __future__ import annotations

from PySide6.QtCore import Qt, QThreadPool

from cnn_lab.app.main_window import MainWindow
from cnn_lab.app.state import AppState
from cnn_lab.engine.data.samples import sample_names
from cnn_lab.engine.specs import RunSpec
from cnn_lab.engine.store import RunStore
from cnn_lab.engine.store import status as st
from tests.app.conftest import choose_quick_run
from tests.app.settle import settle

TRAIN_TIMEOUT_MS = 180_000


def test_one_click_on_an_empty_database_trains_the_sample(qtbot, window, db_path) -> None:  # type: ignore[no-untyped-def]
    card = window.welcome
    settle(qtbot, window)  # the store answers whether it is empty
    assert card.isVisible()
    offered = [card.sample.itemData(i) for i in range(card.sample.count())]
    assert offered == sample_names()
    assert card.preset.currentData() == "small_cnn"
    choose_quick_run(window, epochs=1, limit=600)  # keep the test short; a person keeps 3

    with qtbot.waitSignal(window.controller.run_finished, timeout=TRAIN_TIMEOUT_MS) as done:
        qtbot.mouseClick(card.train_button, Qt.MouseButton.LeftButton)
        assert not card.isVisible()  # the run is on its way
    run_id, status, _ = done.args
    assert status == st.COMPLETED
    with RunStore.open(db_path) as store:
        record = store.get_run(run_id)
    spec = RunSpec.from_json(record.spec_json)
    assert spec.dataset.source == "sample:shapes"
    assert spec.architecture.preset == "small_cnn"
    assert record.summary.get("best_val_accuracy") is not None
    settle(qtbot, window)  # the Runs panel lists the new run
    assert window.runs_panel.selected_run_id() == run_id
    assert window.tabs.currentWidget() is window.monitor_panel

    again = MainWindow(AppState(db_path))  # the next launch: the database has a run now
    qtbot.addWidget(again)
    again.show()
    settle(qtbot, again)
    assert not again.welcome.isVisible()
    again.close()
    QThreadPool.globalInstance().waitForDone(10_000)


def test_hiding_the_card_is_remembered_and_help_brings_it_back(qtbot, window, db_path) -> None:  # type: ignore[no-untyped-def]
    settle(qtbot, window)  # the card shows once the store says it is empty
    qtbot.mouseClick(window.welcome.hide_button, Qt.MouseButton.LeftButton)
    assert not window.welcome.isVisible()
    again = MainWindow(AppState(db_path))
    qtbot.addWidget(again)
    again.show()
    settle(qtbot, again)
    assert not again.welcome.isVisible()
    again.menu_actions["Welcome"].trigger()
    assert again.welcome.isVisible()
    again.close()
    QThreadPool.globalInstance().waitForDone(10_000)


def test_the_tour_button_starts_the_tour(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    settle(qtbot, window)
    qtbot.mouseClick(window.welcome.tour_button, Qt.MouseButton.LeftButton)
    assert window.tour.isVisible()
    assert "step 1 of" in window.tour.heading.text()
