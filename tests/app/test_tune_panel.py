"""The Tune panel: results are drawn and listed, a click on the chart picks a rate, Use and
Apply change the recipe, failures are sentences, and a real tuner runs (and stops) in a
child process that never outlives its runner.

The first tests use a fake runner that answers synchronously with canned results in the
agreed shapes (tests/app/tune_results.py); the last ones run the real child on the CPU.
"""

from __future__ import annotations

import math
import multiprocessing
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from cnn_lab.app.bridge.tune_runner import TuneRunner
from cnn_lab.app.main_window import MainWindow
from cnn_lab.app.panels.tune_panel import TunePanel
from cnn_lab.app.state import AppState
from cnn_lab.app.widgets.lr_curve_chart import format_rate, snap_rate
from cnn_lab.engine.errors import UserError
from cnn_lab.engine.specs import ArchitectureSpec, DatasetSpec
from cnn_lab.engine.tune.child import run_tuner, tune_child
from tests.app.tune_results import FakeRunner, speed_result

REAL_TUNER_TIMEOUT_MS = 120_000


class _AnyHint:
    """Equal to any one-sentence hint: the test is about the message, not the advice."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and len(other) > 0


ANY_HINT = _AnyHint()


@pytest.fixture
def state(db_path: Path) -> AppState:
    return AppState(db_path)


def show(qtbot, panel: TunePanel) -> TunePanel:  # type: ignore[no-untyped-def]
    qtbot.addWidget(panel)
    panel.resize(1280, 720)
    panel.show()
    qtbot.waitExposed(panel)
    return panel


@pytest.fixture
def panel(qtbot, state: AppState) -> TunePanel:  # type: ignore[no-untyped-def]
    return show(qtbot, TunePanel(state, runner_factory=FakeRunner))


def click(qtbot, button) -> None:  # type: ignore[no-untyped-def]
    assert button.isVisible() and button.isEnabled()
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


# ------------------------------------------------------------------ learning rate


def test_lr_result_draws_both_curves_and_the_suggestion(qtbot, panel: TunePanel) -> None:  # type: ignore[no-untyped-def]
    section = panel.lr_section
    assert not section.chart.has_data and "No range test yet" in section.chart.empty.text()
    section.steps.setValue(60)
    click(qtbot, section.run_button)

    kind, spec, options = panel.runner.started[-1]
    assert kind == "lr" and options == {"start_lr": 1e-6, "end_lr": 1.0, "steps": 60}
    assert spec == panel.state.run_spec()
    raw_x, raw_y = section.chart.raw_curve.getOriginalDataset()
    smooth_x, smooth_y = section.chart.smooth_curve.getOriginalDataset()
    assert len(raw_x) == len(smooth_x) == 60
    assert all(math.isfinite(y) for y in smooth_y)
    assert math.isnan(raw_y[-1])  # the None (non-finite) loss is a gap, not a zero
    assert section.chart.suggestion_line.isVisible()
    assert section.chart.suggestion_line.value() == pytest.approx(math.log10(3.16e-3))
    # The suggestion is offered at once, rounded as shown.
    assert section.picked_lr == pytest.approx(3.2e-3)
    assert section.use_button.text() == "Use 3.2e-3 as the learning rate"
    assert "suggested learning rate 3.2e-3" in section.message.text()
    assert not section.running and section.run_button.isVisible()


def test_a_click_on_the_chart_picks_that_rate_and_use_applies_it(
    qtbot, panel: TunePanel, state: AppState
) -> None:  # type: ignore[no-untyped-def]
    section = panel.lr_section
    click(qtbot, section.run_button)
    chart = section.chart
    with qtbot.waitSignal(chart.picked) as picked:
        qtbot.mouseClick(
            chart.plot.viewport(), Qt.MouseButton.LeftButton, pos=chart.widget_pos(1e-2)
        )
    assert picked.args[0] == pytest.approx(1e-2, rel=0.05)
    assert section.picked_lr == pytest.approx(1e-2)
    assert chart.pick_line.isVisible()
    assert chart.pick_line.value() == pytest.approx(-2.0)
    assert section.use_button.text() == "Use 1e-2 as the learning rate"

    before = state.train
    with qtbot.waitSignal(state.changed):
        click(qtbot, section.use_button)
    assert state.train.lr == pytest.approx(1e-2)
    assert state.train.model_dump(exclude={"lr"}) == before.model_dump(exclude={"lr"})
    assert "Learning rate set to 1e-2" in section.stage.text()


def test_a_click_beyond_the_tested_rates_picks_the_end_of_the_range(
    qtbot, panel: TunePanel
) -> None:  # type: ignore[no-untyped-def]
    section = panel.lr_section
    click(qtbot, section.run_button)
    section.pick(50.0)  # as a click right of the last rate would
    assert section.picked_lr == pytest.approx(1.0)
    assert section.use_button.text() == "Use 1 as the learning rate"


def test_a_range_that_runs_backwards_is_refused_before_anything_starts(
    qtbot, panel: TunePanel
) -> None:  # type: ignore[no-untyped-def]
    section = panel.lr_section
    section.start_lr.setValue(0.1)
    section.end_lr.setValue(1e-3)
    click(qtbot, section.run_button)
    assert panel.runner.started == []
    assert section.error.isVisible()
    assert "start rate below its end rate" in section.error.text()


# ------------------------------------------------------------------ batch size and speed


def test_batch_use_sets_the_batch_size_and_warns_about_the_rate(
    qtbot, panel: TunePanel, state: AppState
) -> None:  # type: ignore[no-untyped-def]
    section = panel.batch_section
    section.limit.setValue(2048)
    click(qtbot, section.run_button)
    assert panel.runner.started[-1][2] == {"limit": 2048}
    assert section.headline.text() == "Largest batch that fits: 512 (probed on cuda:0)"
    assert section.probes.text().count("batch ") == 6
    assert "batch 1024: out of memory (0.20 s)" in section.probes.text()
    assert section.warning.isVisible() and "learning rate" in section.warning.text()
    assert section.use_button.text() == "Use batch 512"

    with qtbot.waitSignal(state.changed):
        click(qtbot, section.use_button)
    assert state.train.batch_size == 512


def test_speed_apply_changes_exactly_the_listed_fields(
    qtbot, panel: TunePanel, state: AppState
) -> None:  # type: ignore[no-untyped-def]
    state.update(train=state.train.model_copy(update={"lr": 0.003, "batch_size": 96}))
    before = state.train.model_dump()
    section = panel.speed_section
    click(qtbot, section.run_button)

    assert section.table.rowCount() == len(speed_result()["findings"])
    assert section.table.item(0, 0).text() == "precision"
    assert section.table.item(0, 3).text() == "1.63×"
    assert section.table.item(4, 2).text() == "—"  # not measured: no number made up
    assert section.headline.text().startswith("1.85× faster: 1,234 → 2,283 images/s")
    assert "fp16 was skipped" in section.warnings.text()
    assert section.apply_button.text() == "Apply 3 changes"

    with qtbot.waitSignal(state.changed):
        click(qtbot, section.apply_button)
    after = state.train.model_dump()
    changes = speed_result()["changes"]
    assert {field: after[field] for field in changes} == changes
    assert {k: v for k, v in after.items() if k not in changes} == {
        k: v for k, v in before.items() if k not in changes
    }


def test_a_value_the_recipe_refuses_is_explained_and_not_applied(
    panel: TunePanel, state: AppState
) -> None:
    before = state.train
    assert not panel.apply("lr", {"lr": 50.0})
    assert state.train == before
    assert panel.lr_section.error.isVisible()
    assert "training recipe is not valid" in panel.lr_section.error.text()


def test_the_hyperparameters_panel_shows_what_the_tune_panel_applied(window: MainWindow) -> None:
    tune, form = window.tune_panel, window.hyperparameters_panel
    assert tune.apply("lr", {"lr": 0.003})
    assert tune.apply("speed", {"precision": "bf16", "batch_size": 192})
    assert form.lr.value() == pytest.approx(0.003)
    assert form.batch_size.value() == 192
    assert form.precision.value() == "bf16"


# ------------------------------------------------------------------ failures and one at a time


def test_a_failure_is_a_sentence_and_other_results_stay(qtbot, panel: TunePanel) -> None:  # type: ignore[no-untyped-def]
    click(qtbot, panel.lr_section.run_button)
    click(qtbot, panel.batch_section.run_button)
    panel.runner.fail_with = "The device ran out of memory. Lower the batch size."
    click(qtbot, panel.speed_section.run_button)
    click(qtbot, panel.batch_section.run_button)  # a re-run that fails keeps the old result

    speed = panel.speed_section
    assert speed.error.isVisible()
    assert speed.error.text() == "The device ran out of memory. Lower the batch size."
    assert "No advice yet" in speed.headline.text()
    assert QApplication.activeModalWidget() is None
    assert panel.lr_section.chart.has_data and panel.lr_section.use_button.isVisible()
    assert not panel.lr_section.error.isVisible()
    batch = panel.batch_section
    assert batch.error.isVisible() and batch.use_button.text() == "Use batch 512"
    assert all(s.run_button.isEnabled() for s in panel.sections.values())


def test_one_tuner_runs_at_a_time_and_stop_frees_the_others(qtbot, panel: TunePanel) -> None:  # type: ignore[no-untyped-def]
    panel.runner.hold = True
    click(qtbot, panel.lr_section.run_button)
    assert panel.running == "lr"
    assert panel.lr_section.stop_button.isVisible() and not panel.lr_section.run_button.isVisible()
    assert not panel.batch_section.run_button.isEnabled()
    assert not panel.speed_section.run_button.isEnabled()
    assert not panel.run("speed")
    assert [kind for kind, *_ in panel.runner.started] == ["lr"]

    with qtbot.waitSignal(panel.tuner_ended) as ended:
        click(qtbot, panel.lr_section.stop_button)
    assert ended.args == ["lr", "cancelled"]
    assert panel.runner.stopped == 1
    assert panel.running is None
    assert "Stopped" in panel.lr_section.stage.text()
    assert all(s.run_button.isEnabled() for s in panel.sections.values())
    assert not panel.lr_section.chart.has_data


# ------------------------------------------------------------------ the real child process


def tiny_run(state: AppState) -> None:
    """The smallest spec that trains: 300 shapes, the small CNN, batch 16, on the CPU."""
    state.update(
        dataset=DatasetSpec(source="sample:shapes", limit=300),
        architecture=ArchitectureSpec(preset="small_cnn"),
        train=state.train.model_copy(update={"batch_size": 16, "device": "cpu"}),
    )


@pytest.fixture
def real_panel(qtbot, state: AppState) -> Iterator[TunePanel]:  # type: ignore[no-untyped-def]
    tiny_run(state)
    panel = show(qtbot, TunePanel(state))
    yield panel
    panel.shutdown()


def no_tuning_child_left(pid: int | None) -> bool:
    gone = (
        pid is None
        or not psutil.pid_exists(pid)
        or (psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
    )
    return gone and not multiprocessing.active_children()


@pytest.mark.slow
def test_the_real_lr_test_runs_in_a_child_and_fills_the_chart(qtbot, real_panel: TunePanel) -> None:  # type: ignore[no-untyped-def]
    runner = real_panel.runner
    assert isinstance(runner, TuneRunner)
    section = real_panel.lr_section
    section.steps.setValue(20)
    with qtbot.waitSignal(runner.finished, timeout=REAL_TUNER_TIMEOUT_MS) as done:
        click(qtbot, section.run_button)
    result = done.args[0]
    assert not section.error.isVisible(), section.error.text()
    assert 2 <= len(result["lrs"]) <= 20 and len(result["losses"]) == len(result["lrs"])
    assert result["device"] == "cpu"
    xs, _ = section.chart.smooth_curve.getOriginalDataset()
    assert list(xs) == pytest.approx(result["lrs"])
    assert section.chart.has_data and section.message.text().lower() == result["message"].lower()
    assert no_tuning_child_left(None)


@pytest.mark.slow
def test_stop_ends_the_tuning_child_and_keeps_the_curve_so_far(
    qtbot, real_panel: TunePanel
) -> None:  # type: ignore[no-untyped-def]
    runner = real_panel.runner
    section = real_panel.lr_section
    section.steps.setValue(2000)  # far longer than the test waits
    with qtbot.waitSignal(
        runner.progress,
        timeout=REAL_TUNER_TIMEOUT_MS,
        check_params_cb=lambda stage, done, total: total == 2000 and done >= 3,
    ):
        click(qtbot, section.run_button)
    pid = runner.child_pid
    assert pid and psutil.pid_exists(pid)
    # The range test returns what it measured before the stop, which is worth showing.
    with qtbot.waitSignal(real_panel.tuner_ended, timeout=30_000) as ended:
        click(qtbot, section.stop_button)
    assert ended.args == ["lr", "finished"]
    assert no_tuning_child_left(pid)
    assert section.run_button.isEnabled() and not section.error.isVisible()
    assert section.message.text().lower().startswith("stopped after")
    assert section.chart.has_data


@pytest.mark.slow
def test_closing_the_window_leaves_no_tuning_child(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    tiny_run(window.state)
    panel = window.tune_panel
    window.tabs.setCurrentWidget(panel)
    runner = panel.runner
    with qtbot.waitSignal(runner.progress, timeout=REAL_TUNER_TIMEOUT_MS):
        click(qtbot, panel.speed_section.run_button)
    pid = runner.child_pid
    assert pid and psutil.pid_exists(pid)
    questions: list[str] = []
    window.confirm_close = lambda question: questions.append(question) or True
    window.close()
    assert questions == [
        "The speed tuner is measuring. Stop it and close? What it measured so far is lost."
    ]
    assert no_tuning_child_left(pid)
    assert panel.running is None


@pytest.mark.parametrize(
    ("rate", "snapped", "text"),
    [
        (0.0099, 0.01, "1e-2"),
        (0.0104, 0.01, "1e-2"),
        (2.9e-3, 3e-3, "3e-3"),
        (1.6e-4, 1.5e-4, "1.5e-4"),
    ],
)
def test_a_click_snaps_to_the_nearest_nice_rate(rate: float, snapped: float, text: str) -> None:
    assert snap_rate(rate) == pytest.approx(snapped)
    assert format_rate(snap_rate(rate)) == text


# ------------------------------------------------------------------ the child's messages


def test_the_child_reports_an_unknown_tuner_or_option_as_a_sentence(state: AppState) -> None:
    reader, writer = multiprocessing.Pipe(duplex=False)
    tune_child("nope", state.run_spec().to_json(), {}, writer, multiprocessing.Event())
    assert reader.recv() == ("error", "There is no tuner called 'nope'.", ANY_HINT)
    with pytest.raises(UserError, match="LR range test does not take these options"):
        run_tuner("lr", state.run_spec(), {"stepz": 3})


@pytest.mark.slow
def test_a_tuner_error_in_the_real_child_is_shown_as_its_sentence(
    qtbot, real_panel: TunePanel
) -> None:  # type: ignore[no-untyped-def]
    with qtbot.waitSignal(real_panel.runner.failed, timeout=REAL_TUNER_TIMEOUT_MS) as failed:
        real_panel.run("lr", {"start_lr": 1.0, "end_lr": 0.1, "steps": 20})
    sentence = failed.args[0]
    assert "Traceback" not in sentence and sentence.endswith((".", ")"))
    assert real_panel.lr_section.error.text() == sentence
    assert real_panel.running is None and no_tuning_child_left(None)
