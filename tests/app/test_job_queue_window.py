"""The job queue in the window: one job per slot, the rest wait; the Jobs dock shows where.

Most tests give the window a JobController with a fake slot list (two GPUs and the CPU) and
stub workers that start no process, so GPU scheduling is tested on a machine without a GPU.
One slow test trains for real on the CPU slot.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QObject, Qt, QThreadPool, QTimer, Signal
from PySide6.QtWidgets import QDockWidget

from cnn_lab.app.bridge.job_controller import CANCELLED_REASON, JobController
from cnn_lab.app.main_window import MainWindow
from cnn_lab.app.state import AppState
from cnn_lab.app.widgets.runs_table import COLUMNS
from cnn_lab.engine.specs import RunSpec
from cnn_lab.engine.store import RunStore
from cnn_lab.engine.store import status as st
from tests.app.conftest import choose_quick_run, shown_window
from tests.app.settle import settle
from tests.app.test_sweep_panel import add_param

GPU_SLOTS = ["cuda:0", "cuda:1", "cpu"]
LABELS = {"cuda:0": "cuda:0 (H100)", "cuda:1": "cuda:1 (H100)"}
TRAIN_TIMEOUT_MS = 180_000


class StubWorker(QObject):
    """Stands in for JobWorker: says what it was asked and finishes when the test says so."""

    child_started = Signal(int, int)
    events = Signal(int, object)
    job_finished = Signal(int, str, str)

    def __init__(
        self,
        run_id: int,
        spec_json: str,
        db_path: str,
        *,
        device: str | None = None,
        resume: bool = False,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.run_id, self.db_path, self.device, self.resume = run_id, db_path, device, resume
        self.pid: int | None = None
        self.started = False

    def start(self) -> None:
        self.started = True
        with RunStore.open(self.db_path) as store:
            store.mark_running(self.run_id, pid=os.getpid(), device=self.device or "")

    def request_stop(self, why: str | None = None) -> None:
        QTimer.singleShot(0, lambda: self.finish(st.STOPPED, "Stopped by request."))

    def wait(self, timeout_ms: int = 0) -> bool:
        return True

    def finish(self, status: str = st.COMPLETED, reason: str = "") -> None:
        with RunStore.open(self.db_path) as store:
            store.finish_run(self.run_id, status, reason=reason or None)
        self.job_finished.emit(self.run_id, status, reason)


Workers = dict[int, StubWorker]


@pytest.fixture
def stub_window(qtbot, db_path: Path) -> Iterator[tuple[MainWindow, Workers]]:  # type: ignore[no-untyped-def]
    workers: Workers = {}

    def factory(run_id: int, spec_json: str, db: str, **kwargs: Any) -> StubWorker:
        workers[run_id] = StubWorker(run_id, spec_json, db, **kwargs)
        return workers[run_id]

    controller = JobController(db_path, slots=GPU_SLOTS, slot_labels=LABELS, worker_factory=factory)
    win = MainWindow(AppState(db_path), controller=controller)
    win.confirm_close = lambda question: True  # asking first: tests/faults/test_gui_faults.py
    qtbot.addWidget(win)
    win.resize(1280, 800)
    win.show()
    yield win, workers
    win.controller.shutdown()
    QThreadPool.globalInstance().waitForDone(10_000)


def train_on(win: MainWindow, device: str, **train: Any) -> int:
    win.state.update(train=win.state.train.model_copy(update={"device": device, **train}))
    run_id = win.train()
    assert run_id is not None
    return run_id


def rows(win: MainWindow) -> list[tuple[int, str, str]]:
    return [(r.run_id, r.state, r.where) for r in win.jobs_view.rows()]


def status_of(db_path: Path, run_id: int) -> tuple[str, str | None]:
    with RunStore.open(db_path) as store:
        record = store.get_run(run_id)
    return record.status, record.reason


# ----------------------------------------------------------------------------- GPU slots


def test_two_gpu_jobs_run_at_once_on_different_slots(qtbot, stub_window, db_path) -> None:  # type: ignore[no-untyped-def]
    win, workers = stub_window
    slots: list[tuple[int, str]] = []
    win.controller.slot_changed.connect(lambda run_id, slot: slots.append((run_id, slot)))
    a, b, c = (train_on(win, "cuda") for _ in range(3))
    assert win.status_label.text() == f"Run {c} queued: waiting for a GPU."
    d = train_on(win, "cpu")
    assert win.monitor_panel.run_id == d  # a run Train starts at once takes the Monitor

    assert win.controller.assignments() == {a: "cuda:0", b: "cuda:1", d: "cpu"}
    assert (workers[a].device, workers[b].device, workers[d].device) == ("cuda:0", "cuda:1", "cpu")
    assert c not in workers and win.controller.queued_ids() == [c]
    assert rows(win) == [
        (a, "running", "cuda:0 (H100)"),
        (b, "running", "cuda:1 (H100)"),
        (d, "running", "cpu"),
        (c, "queued", "waiting for a GPU"),
    ]
    assert win.jobs_label.text() == "3 running, 1 queued"
    assert win.train_action.isEnabled() and win.stop_action.isEnabled()
    assert status_of(db_path, c)[0] == st.QUEUED

    with qtbot.waitSignal(win.controller.slot_changed, timeout=5000) as changed:
        workers[b].finish()
    assert changed.args == [b, ""]
    assert slots[-1] == (c, "cuda:1") and workers[c].device == "cuda:1"
    assert win.controller.assignments()[c] == "cuda:1"
    assert win.jobs_label.text() == "3 running"

    with qtbot.waitSignal(win.controller.busy_changed, timeout=5000) as idle:
        for run_id in (a, c, d):
            workers[run_id].finish()
    assert idle.args == [False]
    assert win.jobs_view.rows() == [] and win.jobs_label.text() == ""
    assert win.train_action.isEnabled() and not win.stop_action.isEnabled()


def test_a_sweeps_slots_are_kept_from_the_queue_until_it_ends(qtbot, stub_window, db_path) -> None:  # type: ignore[no-untyped-def]
    win, workers = stub_window
    panel = win.sweep_panel
    assert panel.free_slots is not None and panel.free_slots() == GPU_SLOTS
    # The Sweep panel's child planned two trials on cuda:0 and one on the CPU.
    win.tabs.setCurrentWidget(panel)
    add_param(qtbot, panel, "train.lr", "0.01, 0.05")
    panel.search = panel.build_search()
    panel._set_running(True)
    panel._on_slots(["cuda:0", "cuda:0", "cpu"], "3 at once: cuda:0 ×2, cpu")
    owner = f"sweep {panel.search.study_name()}"
    assert win.controller.holds() == {owner: ["cuda:0", "cpu"]}
    assert panel.free_slots() == ["cuda:1"]
    a, b = train_on(win, "cuda"), train_on(win, "cpu")
    assert win.controller.assignments() == {a: "cuda:1"}
    assert win.controller.queued_ids() == [b]
    assert win.jobs_label.text() == f"1 running, 1 queued, {owner} on cuda:0, cpu"
    assert panel.where_label.text() == "Trials train 3 at once: cuda:0 ×2, cpu."

    panel._set_running(False)  # the sweep ended: its slots go back, the waiting run starts
    assert win.controller.holds() == {}
    assert win.controller.assignments() == {a: "cuda:1", b: "cpu"}
    assert workers[b].device == "cpu"
    # Closing the window while a run waits for a sweep's slot does not start it on the way out.
    workers[a].finish()  # cuda:1 is free but for the sweep that now holds it
    panel._set_running(True)
    panel._on_slots(["cuda:1"], "one at a time on cuda:1")
    c = train_on(win, "cuda:1")
    assert win.controller.queued_ids() == [c] and win.controller.free_slots() == ["cuda:0"]
    win.close()
    assert c not in workers and status_of(db_path, c)[0] == st.STOPPED
    # A device that names no slot holds the one the engine would resolve it to.
    assert win.controller.hold("x", ["auto", "cuda"]) == ["cuda:0"]
    win.controller.release("x")


def test_data_parallel_run_waits_for_both_gpus(qtbot, stub_window) -> None:  # type: ignore[no-untyped-def]
    win, workers = stub_window
    single = train_on(win, "cuda:1")
    wide = train_on(win, "cuda", world_size=2)
    later = train_on(
        win, "cuda", world_size=1
    )  # cuda:0 is free, but held for the wide run ahead of it
    assert win.controller.assignments() == {single: "cuda:1"}
    assert dict((r[0], r[2]) for r in rows(win))[wide] == "waiting for 2 GPUs (cuda:0 to cuda:1)"

    workers[single].finish()
    assert win.controller.assignments() == {wide: "cuda:0+cuda:1"}
    assert workers[wide].device == "cuda"  # the engine's ranks take cuda:0 and cuda:1
    assert later in win.controller.queued_ids()
    workers[wide].finish()
    assert win.controller.assignments() == {later: "cuda:0"}


def test_a_run_no_slot_can_take_is_refused_with_a_sentence(
    stub_window, monkeypatch, db_path
) -> None:  # type: ignore[no-untyped-def]
    win, _ = stub_window
    warnings: list[str] = []
    monkeypatch.setattr(
        "cnn_lab.app.main_window.QMessageBox.warning",
        lambda _parent, _title, text: warnings.append(text),
    )
    win.state.update(train=win.state.train.model_copy(update={"device": "cuda:3"}))
    assert win.train() is None
    assert warnings and "cuda:3" in warnings[0] and "2 GPU(s)" in warnings[0]
    with RunStore.open(db_path) as store:
        assert store.list_runs() == []


def test_the_jobs_view_reorders_reprioritises_and_cancels(qtbot, stub_window, db_path) -> None:  # type: ignore[no-untyped-def]
    win, _ = stub_window
    view = win.jobs_view
    running = train_on(win, "cpu")
    a, b, c = (train_on(win, "cpu") for _ in range(3))
    assert win.controller.queued_ids() == [a, b, c]
    assert rows(win)[0] == (running, "running", "cpu")
    assert rows(win)[1] == (a, "queued", "waiting for the CPU")

    view.select_run(c)
    assert view.up_button.isEnabled() and not view.down_button.isEnabled()
    qtbot.mouseClick(view.up_button, Qt.MouseButton.LeftButton)
    assert win.controller.queued_ids() == [a, c, b]
    assert view.selected_run_id() == c  # the selection follows the run
    qtbot.mouseClick(view.up_button, Qt.MouseButton.LeftButton)
    assert win.controller.queued_ids() == [c, a, b]
    assert not view.up_button.isEnabled()

    view.select_run(b)
    view.priority.setValue(3)  # higher priority: first in line
    assert win.controller.queued_ids() == [b, c, a]
    assert [r.priority for r in view.rows()] == [0, 3, 0, 0]
    view.select_run(a)
    qtbot.mouseClick(view.up_button, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(view.up_button, Qt.MouseButton.LeftButton)  # above b: takes its priority
    assert win.controller.queued_ids() == [a, b, c]
    assert view.rows()[1].priority == 3

    view.select_run(b)
    assert view.cancel_button.text() == "Cancel"
    with qtbot.waitSignal(win.controller.run_finished, timeout=5000) as finished:
        qtbot.mouseClick(view.cancel_button, Qt.MouseButton.LeftButton)
    assert finished.args == [b, st.STOPPED, CANCELLED_REASON]
    assert win.controller.queued_ids() == [a, c]
    assert status_of(db_path, b) == (st.STOPPED, CANCELLED_REASON)
    assert win.jobs_label.text() == "1 running, 2 queued"

    view.select_run(running)
    assert view.cancel_button.text() == "Stop" and not view.priority.isEnabled()
    with qtbot.waitSignal(win.controller.run_finished, timeout=5000) as stopped:
        qtbot.mouseClick(view.cancel_button, Qt.MouseButton.LeftButton)
    assert stopped.args[:2] == [running, st.STOPPED]
    assert win.controller.assignments() == {a: "cpu"}


def test_jobs_dock_is_in_the_view_menu(stub_window) -> None:  # type: ignore[no-untyped-def]
    win, _ = stub_window
    dock = win.findChild(QDockWidget, "jobs-dock")
    assert dock is win.jobs_dock and dock.windowTitle() == "Jobs" and dock.isVisible()
    view_menu = next(a.menu() for a in win.menuBar().actions() if a.text() == "&View")
    toggle = next(a for a in view_menu.actions() if a.text() == "Jobs")
    toggle.trigger()
    assert not dock.isVisible()
    toggle.trigger()
    assert dock.isVisible()


def test_stop_all_cancels_the_queue_and_stops_what_runs(qtbot, stub_window, db_path) -> None:  # type: ignore[no-untyped-def]
    win, _ = stub_window
    running = train_on(win, "cpu")
    queued = train_on(win, "cpu")
    assert win.stop_all_action.isEnabled()
    with qtbot.waitSignal(win.controller.busy_changed, timeout=5000) as idle:
        win.stop_all_action.trigger()
    assert idle.args == [False]
    assert status_of(db_path, running)[0] == st.STOPPED
    assert status_of(db_path, queued) == (st.STOPPED, CANCELLED_REASON)


# ----------------------------------------------------------------------------- resume


def make_stopped_run(win: MainWindow, db_path: Path, *, started: bool) -> int:
    from cnn_lab.engine.jobs.job import create_run

    with RunStore.open(db_path) as store:
        run_id = create_run(store, win.state.run_spec())
        if started:
            store.mark_running(run_id, pid=os.getpid(), device="cpu")
        store.finish_run(run_id, st.STOPPED, reason="Stopped by request.")
    return run_id


def test_resume_button_queues_a_stopped_run_to_continue(qtbot, stub_window, db_path) -> None:  # type: ignore[no-untyped-def]
    win, workers = stub_window
    win.state.update(train=win.state.train.model_copy(update={"device": "cpu"}))
    stopped = make_stopped_run(win, db_path, started=True)
    runs = win.runs_panel
    runs.refresh()
    settle(qtbot, win)  # the Runs panel lists the runs off the GUI thread
    assert runs.select_run(stopped) and runs.resume_button.isEnabled()
    with qtbot.waitSignal(runs.resume_requested, timeout=1000):
        qtbot.mouseClick(runs.resume_button, Qt.MouseButton.LeftButton)
    assert win.controller.assignments() == {stopped: "cpu"}
    assert win.monitor_panel.run_id == stopped and win.tabs.currentWidget() is win.monitor_panel
    assert workers[stopped].resume and workers[stopped].device == "cpu"
    assert rows(win) == [(stopped, "running", "cpu")]

    workers[stopped].finish()
    runs.refresh()
    settle(qtbot, win)
    assert runs.select_run(stopped) and not runs.resume_button.isEnabled()  # completed now


def test_resume_is_refused_twice_and_a_never_started_run_starts_afresh(
    stub_window, db_path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    win, workers = stub_window
    warnings: list[str] = []
    monkeypatch.setattr(
        "cnn_lab.app.main_window.QMessageBox.warning",
        lambda _parent, _title, text: warnings.append(text),
    )
    win.state.update(train=win.state.train.model_copy(update={"device": "cpu"}))
    busy = train_on(win, "cpu")
    fresh = make_stopped_run(win, db_path, started=False)
    win.resume(fresh)
    assert win.controller.queued_ids() == [fresh]
    assert win.jobs_view.rows()[1].resume is False
    win.resume(fresh)
    assert warnings and "already running or queued" in warnings[0]
    win.resume(busy)
    assert "already running or queued" in warnings[1]
    # Cancelling a queued resume leaves the run's own record as it was.
    assert win.controller.cancel(fresh)
    assert status_of(db_path, fresh) == (st.STOPPED, "Stopped by request.")
    assert fresh not in workers


def shown_status(qtbot, win: MainWindow, run_id: int) -> str:  # type: ignore[no-untyped-def]
    """The Status column of ``run_id``'s row in the Runs table, as the person reads it once
    the store has answered."""
    runs = win.runs_panel
    runs.refresh()
    settle(qtbot, win)
    model = runs.model
    column = next(i for i, c in enumerate(COLUMNS) if c.title == "Status")
    row = next(i for i, r in enumerate(model.records) if r.id == run_id)
    return str(model.data(model.index(row, column)))


def test_a_stopped_run_queued_to_resume_shows_as_queued_until_it_starts(
    qtbot, stub_window, db_path
) -> None:  # type: ignore[no-untyped-def]
    win, workers = stub_window
    busy = train_on(win, "cpu")
    stopped = make_stopped_run(win, db_path, started=True)
    assert shown_status(qtbot, win, stopped) == st.STOPPED
    win.resume(stopped)
    assert win.controller.queued_ids() == [stopped]
    assert shown_status(qtbot, win, stopped) == st.QUEUED
    assert status_of(db_path, stopped)[0] == st.QUEUED  # filters and the CLI say the same
    assert win.runs_panel.select_run(stopped) and not win.runs_panel.resume_button.isEnabled()
    workers[busy].finish()  # the CPU comes free: the resumed run starts
    assert workers[stopped].resume and shown_status(qtbot, win, stopped) == st.RUNNING
    workers[stopped].finish()
    assert shown_status(qtbot, win, stopped) == st.COMPLETED

    # Queued to resume, then the window closes first: it goes back to how it ended.
    again = make_stopped_run(win, db_path, started=True)
    blocker = train_on(win, "cpu")
    win.resume(again)
    assert shown_status(qtbot, win, again) == st.QUEUED
    win.controller.shutdown()
    assert status_of(db_path, again) == (st.STOPPED, "Stopped by request.")
    assert again not in workers and blocker in workers


# ----------------------------------------------------------------------------- real jobs


@pytest.fixture
def cpu_window(qtbot, db_path: Path) -> Iterator[MainWindow]:  # type: ignore[no-untyped-def]
    yield from shown_window(qtbot, db_path, JobController(db_path, slots=["cpu"]))


def quick_spec(db_path: Path, *, epochs: int) -> RunSpec:
    """What choose_quick_run sets in the panels, as a spec for a controller without a window."""
    spec = AppState(db_path).run_spec()
    return spec.model_copy(
        update={
            "dataset": spec.dataset.model_copy(update={"limit": 600}),
            "train": spec.train.model_copy(
                update={"epochs": epochs, "batch_size": 32, "device": "cpu"}
            ),
        }
    )


def step_reached(run_id: int, step: int) -> Callable[[int, list[Any]], bool]:
    return lambda rid, events: (
        rid == run_id and any(getattr(e, "kind", "") == "step" and e.step >= step for e in events)
    )


def finished_run(run_id: int) -> Callable[[int, str, str], bool]:
    return lambda rid, _status, _reason: rid == run_id


@pytest.mark.slow
def test_cpu_slot_runs_one_job_while_the_others_wait(qtbot, cpu_window, db_path) -> None:  # type: ignore[no-untyped-def]
    win = cpu_window
    choose_quick_run(win, epochs=1, limit=200)
    first = win.train()
    second = win.train()
    third = win.train()
    assert first and second and third
    assert win.controller.running_ids() == [first]
    assert win.controller.queued_ids() == [second, third]
    assert rows(win) == [
        (first, "running", "cpu"),
        (second, "queued", "waiting for the CPU"),
        (third, "queued", "waiting for the CPU"),
    ]
    assert win.jobs_label.text() == "1 running, 2 queued"
    assert win.tabs.currentWidget() is win.monitor_panel and win.monitor_panel.run_id == first
    # Live charts repaint many times a second, and PySide6 6.12.0 drops a reference to None
    # on each void Qt call: leave the Monitor so this test does not exhaust None for the next.
    win.tabs.setCurrentWidget(win.runs_panel)

    assert win.controller.cancel(second)
    assert status_of(db_path, second) == (st.STOPPED, CANCELLED_REASON)
    assert [r.run_id for r in win.jobs_view.rows()] == [first, third]

    with qtbot.waitSignal(
        win.controller.run_finished, timeout=TRAIN_TIMEOUT_MS, check_params_cb=finished_run(first)
    ) as done:
        pass
    assert done.args[1] == st.COMPLETED, done.args[2]
    assert win.controller.running_ids() == [third]
    assert win.monitor_panel.run_id == third  # the Monitor follows the next run

    with qtbot.waitSignal(
        win.controller.run_finished, timeout=TRAIN_TIMEOUT_MS, check_params_cb=finished_run(third)
    ) as done:
        pass
    assert done.args[1] == st.COMPLETED, done.args[2]
    assert not win.controller.busy and win.jobs_view.rows() == []
    with RunStore.open(db_path) as store:
        assert store.get_run(third).device == "cpu"


def test_closing_records_queued_runs_as_stopped_and_starts_nothing(
    qtbot, stub_window, db_path
) -> None:  # type: ignore[no-untyped-def]
    win, workers = stub_window
    running = train_on(win, "cpu")
    queued = train_on(win, "cpu")
    win.controller.shutdown()
    status, reason = status_of(db_path, queued)
    assert status == st.STOPPED and reason and "closed before this run started" in reason
    assert queued not in workers and win.controller.queued_ids() == []
    qtbot.waitUntil(lambda: status_of(db_path, running)[0] == st.STOPPED, timeout=5000)
    assert queued not in workers  # its slot came free while closing: nothing new started


def test_the_slots_are_one_per_gpu_and_the_cpu(monkeypatch, db_path) -> None:  # type: ignore[no-untyped-def]
    from cnn_lab.engine.monitor.nvml import GpuInfo, GpuInventory

    gpus = tuple(GpuInfo(i, "NVIDIA H100 80GB HBM3", 81_559.0, f"GPU-{i}") for i in range(2))
    monkeypatch.setattr(
        "cnn_lab.app.bridge.job_controller.gpu_inventory",
        lambda: GpuInventory(True, "2 NVIDIA GPUs", gpus),
    )
    monkeypatch.setattr("cnn_lab.app.bridge.job_controller.sys.platform", "linux")
    controller = JobController(db_path)
    assert controller.slots() == ["cuda:0", "cuda:1", "cpu"]
    assert controller.slot_label("cuda:1") == "cuda:1 (H100 80GB HBM3)"
    assert controller.slot_label("cpu") == "cpu"


@pytest.mark.slow
def test_a_stopped_run_resumes_in_place(qtbot, db_path) -> None:  # type: ignore[no-untyped-def]
    # The controller alone, real processes, no window: live charts would cost this process
    # (see the note above) and the button's wiring is tested with stub workers.
    controller = JobController(db_path, slots=["cpu"])
    try:
        with qtbot.waitSignal(
            controller.events, timeout=TRAIN_TIMEOUT_MS, check_params_cb=step_reached(1, 10)
        ):
            run_id = controller.start(quick_spec(db_path, epochs=3))
        assert run_id == 1
        with qtbot.waitSignal(controller.run_finished, timeout=30_000) as stopped:
            controller.stop(run_id)
        assert stopped.args[1] == st.STOPPED

        with qtbot.waitSignal(controller.run_finished, timeout=TRAIN_TIMEOUT_MS) as finished:
            controller.resume(run_id)
            assert controller.running_ids() == [run_id]
        assert finished.args[:2] == [run_id, st.COMPLETED], finished.args[2]
        with RunStore.open(db_path) as store:
            record = store.get_run(run_id)
            counts = store.metric_keys(run_id)
        assert record.summary.get("epochs") == 3
        assert counts["val.accuracy"] == 3  # one per epoch: nothing repeated after the resume
    finally:
        controller.shutdown()


def test_a_job_preparing_its_data_says_so_in_the_jobs_view(qtbot, stub_window) -> None:  # type: ignore[no-untyped-def]
    from cnn_lab.engine.train.events import DataProgress, StepEnd

    win, workers = stub_window
    run_id = train_on(win, "cpu")
    column = win.jobs_view.model.columnCount() - 1

    def progress_text() -> str:
        return str(win.jobs_view.model.data(win.jobs_view.model.index(0, column)))

    assert progress_text() == "starting…"
    workers[run_id].events.emit(run_id, [DataProgress("Decoding images", 1200, 5000)])
    win.jobs_view.set_rows(win.controller.jobs())
    assert progress_text().startswith("preparing the data: Decoding images · 1,200 of 5,000")
    step = StepEnd(1, 1, 0.5, 0.1, 1000.0, 0.5, progress=0.25, eta_s=90.0)
    workers[run_id].events.emit(run_id, [step])
    win.jobs_view.set_rows(win.controller.jobs())
    assert progress_text().startswith("25% · ETA")
    workers[run_id].finish()
