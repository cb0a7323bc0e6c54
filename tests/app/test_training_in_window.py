"""The window trains through a child process, stays responsive, and survives the child dying."""

from __future__ import annotations

import os
import signal

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QToolBar

from cnn_lab.app.main_window import MainWindow
from cnn_lab.engine.store import RunStore
from cnn_lab.engine.store import status as st
from tests.app.conftest import STOP_WAIT_MS, choose_quick_run
from tests.app.settle import settle

TRAIN_TIMEOUT_MS = 120_000


def click_toolbar(qtbot, win: MainWindow, action) -> None:  # type: ignore[no-untyped-def]
    toolbar = win.findChild(QToolBar, "training-toolbar")
    button = toolbar.widgetForAction(action)
    assert button.isEnabled()
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def test_train_click_records_a_run_with_live_charts(qtbot, window: MainWindow, db_path) -> None:  # type: ignore[no-untyped-def]
    choose_quick_run(window, epochs=2)
    with qtbot.waitSignal(window.controller.run_finished, timeout=TRAIN_TIMEOUT_MS) as finished:
        click_toolbar(qtbot, window, window.train_action)
        assert window.tabs.currentWidget() is window.monitor_panel
        # Train stays enabled while a run trains: another press queues the next run.
        assert window.train_action.isEnabled() and window.stop_action.isEnabled()
    run_id, status, reason = finished.args
    assert status == st.COMPLETED, reason
    settle(qtbot, window)  # the Runs panel lists the ended run and reads its curves

    monitor = window.monitor_panel
    assert monitor.loss_chart.points("train (step)") > 10
    assert monitor.accuracy_chart.points("validation") == 2
    assert monitor.speed_chart.points("images/s") > 10
    assert window.train_action.isEnabled() and not window.stop_action.isEnabled()

    runs = window.runs_panel
    assert runs.selected_run_id() == run_id
    assert runs.model.records[0].id == run_id and runs.model.records[0].status == st.COMPLETED
    assert runs.loss_chart.points("train") == monitor.loss_chart.points("train (step)")

    with RunStore.open(db_path) as store:
        keys = store.metric_keys(run_id)
    assert keys["train.loss"] == monitor.loss_chart.points("train (step)")
    assert keys["val.accuracy"] == 2


def test_killed_child_leaves_a_crashed_run_and_a_working_window(
    qtbot, window: MainWindow, db_path
) -> None:  # type: ignore[no-untyped-def]
    choose_quick_run(window, epochs=50, limit=2000)
    with qtbot.waitSignal(window.controller.events, timeout=TRAIN_TIMEOUT_MS):
        window.train_action.trigger()
    run_id = window.controller.running_ids()[0]
    pid = window.controller.child_pid(run_id)
    assert pid and pid != os.getpid()

    with qtbot.waitSignal(window.controller.run_finished, timeout=30_000) as finished:
        os.kill(pid, signal.SIGKILL)
    assert finished.args[0] == run_id
    assert finished.args[1] == st.CRASHED
    assert "SIGKILL" in finished.args[2]
    settle(qtbot, window)  # the Runs panel lists the ended run

    # The window still answers: panels switch, the run is listed as crashed, Train works again.
    window.tabs.setCurrentWidget(window.runs_panel)
    assert window.tabs.currentWidget() is window.runs_panel
    assert window.runs_panel.model.records[0].status == st.CRASHED
    assert window.train_action.isEnabled()
    assert "crashed" in window.status_label.text()
    with RunStore.open(db_path) as store:
        assert store.get_run(run_id).status == st.CRASHED
        assert store.integrity_ok()


def test_stop_ends_the_run_as_stopped(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    choose_quick_run(window, epochs=50, limit=2000)
    window.train_action.trigger()
    loss = window.monitor_panel.loss_chart
    qtbot.waitUntil(lambda: loss.points("train (step)") > 0, timeout=TRAIN_TIMEOUT_MS)
    with qtbot.waitSignal(window.controller.run_finished, timeout=STOP_WAIT_MS) as finished:
        click_toolbar(qtbot, window, window.stop_action)
    assert finished.args[1] == st.STOPPED
    assert "Stopped by request" in finished.args[2]
    assert window.train_action.isEnabled() and not window.stop_action.isEnabled()


def test_a_second_train_while_running_is_queued_without_a_crash(
    qtbot, window: MainWindow, db_path
) -> None:  # type: ignore[no-untyped-def]
    choose_quick_run(window, epochs=50, limit=2000)
    with qtbot.waitSignal(window.controller.events, timeout=TRAIN_TIMEOUT_MS):
        first = window.train()
    second = window.train()
    assert second is not None and second != first
    assert window.controller.running_ids() == [first]
    assert window.controller.queued_ids() == [second]
    assert f"Run {second} queued" in window.status_label.text()
    with qtbot.waitSignal(window.controller.busy_changed, timeout=STOP_WAIT_MS):
        window.stop_all()
    with RunStore.open(db_path) as store:
        assert store.get_run(first).status == st.STOPPED
        cancelled = store.get_run(second)
    assert cancelled.status == st.STOPPED and cancelled.reason == "Cancelled before it started."


def test_an_out_of_memory_failure_offers_a_retry_with_the_batch_that_fits(
    qtbot, window: MainWindow, db_path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    from cnn_lab.engine.specs import RunSpec

    spec = RunSpec.from_dict({"train": {"batch_size": 256, "device": "cpu"}})
    with RunStore.open(db_path) as store:
        run_id = store.create_run(spec_json=spec.to_json(), spec_hash=spec.spec_hash())
        store.finish_run(
            run_id,
            st.FAILED,
            reason="The GPU ran out of memory at batch size 256.",
            summary={"suggested_batch_size": 64},
        )
    started: list[RunSpec] = []
    monkeypatch.setattr(window.controller, "start", lambda s, priority=0: started.append(s) or 99)
    window._on_run_finished(run_id, st.FAILED, "The GPU ran out of memory at batch size 256.")
    settle(qtbot, window)  # the failed run's summary is read off the GUI thread
    assert window.retry_button.isVisibleTo(window)
    assert window.retry_button.text() == f"Retry run {run_id} with batch 64"
    window.retry_button.click()
    assert not window.retry_button.isVisibleTo(window)  # one click: the offer is taken
    settle(qtbot, window)  # the run's spec is read off the GUI thread, then queued again
    assert started and started[0].train.batch_size == 64
    assert started[0].train.grad_accumulation == 4  # the effective batch stays 256
    assert window.state.train.batch_size == 64
    assert not window.retry_button.isVisibleTo(window)
