"""Undo and redo in the editing panels: each edit is one step, undo puts the form and the state
back, consecutive edits of one field merge, and changes from elsewhere are shown, not recorded.

The Hyperparameters and Architecture tests are synchronous (no summary is asked for: the
Architecture panel is never shown). The Data tests wait on the panel's import signals.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QThreadPool
from PySide6.QtGui import QAction, QKeySequence

from cnn_lab.app.panels import hyperparameters_panel as hyper_module
from cnn_lab.app.panels._spec_undo import top_edit
from cnn_lab.app.panels._standalone import add_undo_shortcuts
from cnn_lab.app.panels.architecture_panel import ArchitecturePanel
from cnn_lab.app.panels.data_panel import DataPanel
from cnn_lab.app.panels.hyperparameters_panel import HyperparametersPanel
from cnn_lab.app.state import AppState
from cnn_lab.engine.monitor.nvml import GpuInventory
from cnn_lab.engine.specs import DatasetSpec, TrainSpec
from cnn_lab.engine.util.progress_eta import EtaEstimator
from tests.app.test_data_panel import plant

IMPORT_MS = 60_000
NO_GPU = GpuInventory(False, "No NVIDIA GPU: the NVIDIA driver (NVML) is not installed.")
DEFAULT = TrainSpec()


# ------------------------------------------------------------------ hyperparameters


@pytest.fixture
def hyper(qtbot, db_path: Path, monkeypatch: pytest.MonkeyPatch) -> HyperparametersPanel:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(hyper_module, "gpu_inventory", lambda: NO_GPU)
    panel = HyperparametersPanel(AppState(db_path))
    qtbot.addWidget(panel)
    return panel


def test_a_field_edit_is_one_step_and_undo_restores_form_and_state(
    hyper: HyperparametersPanel,
) -> None:
    stack = hyper.undo_stack
    assert stack.count() == 0  # loading the start-up recipe is not an edit
    hyper.lr.setValue(0.002)
    assert hyper.state.train.lr == pytest.approx(0.002)
    assert stack.count() == 1 and stack.undoText() == "Change Learning rate to 0.002"
    assert stack.createUndoAction(hyper).text() == "Undo Change Learning rate to 0.002"

    stack.undo()
    assert hyper.lr.value() == pytest.approx(DEFAULT.lr)
    assert hyper.state.train == DEFAULT
    assert stack.redoText() == "Change Learning rate to 0.002"

    stack.redo()
    assert hyper.lr.value() == pytest.approx(0.002)
    assert hyper.state.train.lr == pytest.approx(0.002)
    assert stack.count() == 1  # undo and redo never push steps of their own


def test_consecutive_edits_of_one_field_merge(qtbot, hyper: HyperparametersPanel) -> None:  # type: ignore[no-untyped-def]
    stack = hyper.undo_stack
    hyper.epochs.lineEdit().selectAll()
    qtbot.keyClicks(hyper.epochs.lineEdit(), "12")  # "1", then "12": one step
    assert hyper.state.train.epochs == 12
    assert stack.count() == 1 and stack.undoText() == "Change Epochs to 12"
    hyper.lr.stepBy(1)
    hyper.lr.stepBy(1)  # the arrows, twice: one step
    assert stack.count() == 2
    assert stack.undoText() == f"Change Learning rate to {hyper.state.train.lr:g}"

    stack.undo()
    assert hyper.lr.value() == pytest.approx(DEFAULT.lr) and hyper.state.train.epochs == 12
    stack.undo()
    assert hyper.epochs.value() == DEFAULT.epochs and hyper.state.train == DEFAULT

    # Spinning a box away and back leaves no step at all.
    hyper.batch_size.setValue(DEFAULT.batch_size * 2)
    hyper.batch_size.setValue(DEFAULT.batch_size)
    assert stack.count() == 0 and not stack.canUndo()


def test_a_new_optimizer_and_the_rate_it_brings_undo_together(
    hyper: HyperparametersPanel,
) -> None:
    hyper.optimizer.set_value("sgd")
    assert hyper.state.train.optimizer == "sgd"
    assert hyper.state.train.lr != DEFAULT.lr  # the form put in SGD's usual rate
    assert hyper.undo_stack.count() == 1
    assert hyper.undo_stack.undoText() == f"Change Optimizer to {hyper.optimizer.currentText()}"
    hyper.undo_stack.undo()
    assert hyper.optimizer.value() == DEFAULT.optimizer
    assert hyper.lr.value() == pytest.approx(DEFAULT.lr)
    assert hyper.state.train == DEFAULT


def test_reset_and_fast_defaults_are_undoable(hyper: HyperparametersPanel) -> None:
    hyper.epochs.setValue(7)
    hyper.reset()
    assert hyper.state.train == DEFAULT
    assert hyper.undo_stack.undoText() == "Reset to defaults"
    hyper.undo_stack.undo()
    assert hyper.epochs.value() == 7 and hyper.state.train.epochs == 7

    hyper.channels_last.setChecked(False)
    hyper.batch_size.setValue(16)
    slow = hyper.state.train
    hyper.apply_fast_defaults()  # the CPU's: channels-last, batch 64
    fast = hyper.state.train
    assert fast.channels_last and fast.batch_size == 64
    assert hyper.undo_stack.undoText() == "Apply fast defaults for CPU"
    hyper.undo_stack.undo()
    assert hyper.state.train == slow
    assert not hyper.channels_last.isChecked() and hyper.batch_size.value() == 16
    hyper.undo_stack.redo()
    assert hyper.state.train == fast


def test_a_recipe_set_elsewhere_is_shown_without_an_undo_step(
    hyper: HyperparametersPanel,
) -> None:
    hyper.epochs.setValue(5)
    recommended = TrainSpec(lr=0.05, batch_size=128, epochs=30)
    hyper.state.update(train=recommended)  # the window applies a recommendation
    assert hyper.lr.value() == pytest.approx(0.05) and hyper.batch_size.value() == 128
    assert hyper.state.train == recommended
    assert hyper.undo_stack.count() == 1  # only the panel's own edit
    hyper.epochs.setValue(31)  # the next edit starts from the recipe shown
    assert hyper.undo_stack.count() == 2
    hyper.undo_stack.undo()
    assert hyper.state.train == recommended


# ------------------------------------------------------------------ data


@pytest.fixture
def data(qtbot, db_path: Path) -> Iterator[DataPanel]:  # type: ignore[no-untyped-def]
    """A Data panel whose start-up import of the built-in sample has finished."""
    panel = DataPanel(AppState(db_path))
    qtbot.addWidget(panel)
    qtbot.waitUntil(
        lambda: panel.import_task is None and panel.report is not None, timeout=IMPORT_MS
    )
    yield panel
    panel.cancel()
    assert QThreadPool.globalInstance().waitForDone(30_000)


def test_image_size_undo_and_redo_reimport(qtbot, data: DataPanel) -> None:  # type: ignore[no-untyped-def]
    stack = data.undo_stack
    assert stack.count() == 0  # the start-up spec is not an edit
    original = data.report.image_size
    with qtbot.waitSignal(data.import_finished, timeout=IMPORT_MS) as got:
        data.image_size.setValue(16)
    assert got.args[0].image_size == 16 and data.state.dataset.image_size == 16
    assert stack.count() == 1 and stack.undoText() == "Change Image size to 16"

    with qtbot.waitSignal(data.import_finished, timeout=IMPORT_MS) as got:
        stack.undo()
    assert data.image_size.value() == 0 and data.image_size.text() == "auto"
    assert data.state.dataset.image_size is None and got.args[0].image_size == original

    stack.redo()
    assert data.image_size.value() == 16 and data.state.dataset.image_size == 16
    assert data._import_timer.isActive()  # re-imported a moment later, as if typed
    assert stack.count() == 1


def test_data_edits_merge_and_name_the_control(data: DataPanel) -> None:
    stack = data.undo_stack
    data.val_fraction.setValue(0.25)
    data.val_fraction.setValue(0.3)
    assert stack.count() == 1 and stack.undoText() == "Change Validation share to 0.3"
    data.limit.setValue(0)  # already "all images": nothing changes, nothing is recorded
    assert stack.count() == 1
    data.channels.setCurrentIndex(data.channels.findData(1))
    assert stack.undoText() == "Change Channels to Greyscale (1 channel)"
    data.augment_boxes["hflip"].setChecked(True)
    assert stack.undoText().startswith("Turn on ")
    ticked = data.state.dataset.augment
    data.augment_sliders["hflip"].setValue(80)
    data.augment_sliders["hflip"].setValue(90)
    assert stack.undoText().endswith("strength to 0.9") and stack.count() == 4

    stack.undo()
    assert data.state.dataset.augment == ticked
    assert data.augment_sliders["hflip"].value() == round(ticked[0].strength * 100)
    stack.undo()
    assert not data.augment_boxes["hflip"].isChecked() and not data.state.dataset.augment
    stack.undo()
    stack.undo()
    assert data.val_fraction.value() == pytest.approx(0.2)
    assert data.state.dataset == DatasetSpec()
    assert not stack.canUndo()
    data._import_timer.stop()  # the channels undo scheduled a re-import nobody waits for


def test_opening_a_source_is_a_step_and_a_failed_one_leaves_none(
    qtbot, data: DataPanel, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    stack = data.undo_stack
    folder = plant(tmp_path / "colours")
    with qtbot.waitSignal(data.import_finished, timeout=IMPORT_MS):
        data.open_source(str(folder))
    assert stack.count() == 1 and stack.undoText().startswith("Open colours")

    missing = tmp_path / "no" / "such" / "folder"
    with qtbot.waitSignal(data.import_failed, timeout=IMPORT_MS):
        data.open_source(str(missing))
    assert data.state.dataset.source == str(folder)
    assert stack.count() == 1 and not stack.canRedo()  # the failed source left no step
    assert top_edit(stack).after == data.state.dataset

    # An edit made while the failing import ran stays; the revert becomes a step of its own.
    data.open_source(str(missing))
    data.val_fraction.setValue(0.3)
    with qtbot.waitSignal(data.import_failed, timeout=IMPORT_MS):
        pass
    assert data.state.dataset.source == str(folder)
    assert data.state.dataset.val_fraction == pytest.approx(0.3)
    assert top_edit(stack).after == data.state.dataset
    assert stack.undoText() == f"Go back to {data.source.currentText()}"

    # A cancelled import of a new source leaves no step either.
    other = plant(tmp_path / "other", {"a": (0, 0, 0), "b": (255, 255, 255)})
    count = stack.count()
    data.open_source(str(other))
    with qtbot.waitSignal(data.import_cancelled, timeout=IMPORT_MS):
        data.cancel_import()
    assert stack.count() == count and top_edit(stack).after == data.state.dataset

    # Undoing back to the sample imports it again.
    while stack.canUndo():
        stack.undo()
    assert data.state.dataset.source == "sample:shapes"
    qtbot.waitUntil(lambda: data.import_task is None, timeout=IMPORT_MS)
    assert data.report.source == "sample:shapes"


def test_a_dataset_set_elsewhere_is_loaded_and_imported_without_a_step(
    qtbot, data: DataPanel
) -> None:  # type: ignore[no-untyped-def]
    opened = DatasetSpec(image_size=16, val_fraction=0.3, folds=5, fold=2, mixup_alpha=0.2)
    with qtbot.waitSignal(data.import_finished, timeout=IMPORT_MS) as got:
        data.state.update(dataset=opened)  # the window opened a saved spec file
    assert got.args[0].image_size == 16
    assert data.image_size.value() == 16 and data.val_fraction.value() == pytest.approx(0.3)
    assert data.mixup_alpha.value() == pytest.approx(0.2)
    assert data.state.dataset == opened  # k-fold, which no control sets, is kept
    assert data.undo_stack.count() == 0

    data.split_seed.setValue(4)  # a later edit keeps the loaded fields too
    assert data.state.dataset == opened.model_copy(update={"split_seed": 4})
    data.undo_stack.undo()
    assert data.state.dataset == opened


def test_a_source_set_elsewhere_stays_when_it_fails_to_import(
    qtbot, data: DataPanel, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    missing = str(tmp_path / "moved" / "away")
    with qtbot.waitSignal(data.import_failed, timeout=IMPORT_MS):
        data.state.update(dataset=DatasetSpec(source=missing))  # a spec file from elsewhere
    # Train runs what the window loaded (and says why it cannot), never the sample instead.
    assert data.state.dataset.source == missing and data.source.currentData() == missing
    assert "Could not import" in data.status.text() and data.retry_button.isVisibleTo(data)
    assert data.undo_stack.count() == 0


def test_the_import_shows_stage_count_and_time_left(qtbot, data: DataPanel, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    now = [100.0]
    data.progress.eta = EtaEstimator(lambda: now[0])
    folder = plant(tmp_path / "colours")
    data.open_source(str(folder))
    task = data.import_task
    assert task is not None and data.progress.isVisibleTo(data)
    assert data.cancel_button.isVisibleTo(data)
    data._on_import_progress(task, "Decoding", 10, 100)
    now[0] += 2.0
    data._on_import_progress(task, "Decoding", 50, 100)
    label = data.progress.label.text()
    assert label.startswith("Decoding · 50 of 100") and label.endswith("left"), label
    assert data.progress.bar.maximum() == 100 and data.progress.bar.value() == 50
    with qtbot.waitSignal(data.import_finished, timeout=IMPORT_MS):
        pass
    assert not data.progress.isVisibleTo(data) and not data.cancel_button.isVisibleTo(data)
    assert "Imported" in data.status.text()


# ------------------------------------------------------------------ architecture


def _undo_shortcut_actions(widget) -> list[QAction]:  # type: ignore[no-untyped-def]
    undo = QKeySequence(QKeySequence.StandardKey.Undo)
    return [
        action
        for action in widget.findChildren(QAction)
        if any(
            key.matches(undo) == QKeySequence.SequenceMatch.ExactMatch for key in action.shortcuts()
        )
    ]


def test_the_architecture_panel_leaves_the_shortcuts_to_the_window(qtbot, db_path: Path) -> None:  # type: ignore[no-untyped-def]
    panel = ArchitecturePanel(AppState(db_path))
    qtbot.addWidget(panel)
    assert not _undo_shortcut_actions(panel) and not panel.actions()
    start = panel.spec
    panel.bar.new_button.click()
    assert panel.spec.is_custom and panel.undo_stack.count() == 1
    panel.undo_stack.undo()
    assert panel.spec == start and panel.state.architecture == start
    panel.bar.redo_button.click()
    assert panel.spec.is_custom

    # On its own (python -m ...), the panel gets the standard shortcuts.
    add_undo_shortcuts(panel)
    undo = _undo_shortcut_actions(panel)
    assert len(undo) == 1 and undo[0] in panel.actions()
    undo[0].trigger()
    assert panel.spec == start
