"""The Hyperparameters panel: fields follow the registries, every valid edit reaches the state,
refused combinations are explained, and fast defaults apply per device.

Every edit is a direct (synchronous) signal, so nothing here waits on an event loop.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from cnn_lab.app.models.hyperparameters_form import OPTIMIZER_FIELDS, SCHEDULE_FIELDS
from cnn_lab.app.panels import hyperparameters_panel as module
from cnn_lab.app.panels.hyperparameters_panel import HyperparametersPanel
from cnn_lab.app.state import AppState
from cnn_lab.engine.monitor.nvml import GpuInfo, GpuInventory
from cnn_lab.engine.specs import TrainSpec
from cnn_lab.engine.train.optimizers import optimizer_info, optimizer_names
from cnn_lab.engine.train.schedules import schedule_info, schedule_names

NO_GPU = GpuInventory(False, "No NVIDIA GPU: the NVIDIA driver (NVML) is not installed.")


def inventory(*names: str) -> GpuInventory:
    gpus = tuple(GpuInfo(i, name, 81_559.0, f"GPU-{i}") for i, name in enumerate(names))
    return GpuInventory(True, f"{len(gpus)} NVIDIA GPU(s)", gpus, "570.00")


def make_panel(qtbot, state: AppState) -> HyperparametersPanel:  # type: ignore[no-untyped-def]
    panel = HyperparametersPanel(state)
    qtbot.addWidget(panel)
    panel.resize(1280, 760)
    panel.show()
    return panel


@pytest.fixture
def state(db_path: Path) -> AppState:
    return AppState(db_path)


@pytest.fixture
def panel(
    qtbot, state: AppState, monkeypatch: pytest.MonkeyPatch
) -> Iterator[HyperparametersPanel]:  # type: ignore[no-untyped-def]
    """The panel on a machine without a GPU (whatever this machine has)."""
    monkeypatch.setattr(module, "gpu_inventory", lambda: NO_GPU)
    yield make_panel(qtbot, state)


def choose(combo, value: str) -> None:  # type: ignore[no-untyped-def]
    index = combo.findData(value)
    assert index >= 0, value
    combo.setCurrentIndex(index)


def click(qtbot, button) -> None:  # type: ignore[no-untyped-def]
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


# ------------------------------------------------------------------ fields follow the registries


def test_momentum_is_shown_for_sgd_and_hidden_for_adamw(panel: HyperparametersPanel) -> None:
    choose(panel.optimizer, "sgd")
    assert panel.momentum.isVisible() and panel.nesterov.isVisible()
    assert panel.state.train.optimizer == "sgd"
    choose(panel.optimizer, "adamw")
    assert not panel.momentum.isVisible() and not panel.nesterov.isVisible()
    assert panel.weight_decay.isVisible()
    assert panel.state.train.optimizer == "adamw"


@pytest.mark.parametrize("name", optimizer_names())
def test_optimizer_fields_come_from_the_registry(panel: HyperparametersPanel, name: str) -> None:
    choose(panel.optimizer, name)
    info = optimizer_info(name)
    for field in OPTIMIZER_FIELDS:
        assert getattr(panel, field).isVisible() == (field in info.fields), field
    assert panel.optimizer_note.text() == info.description


@pytest.mark.parametrize("name", schedule_names())
def test_schedule_fields_follow_the_schedule(panel: HyperparametersPanel, name: str) -> None:
    choose(panel.schedule, name)
    info = schedule_info(name)
    for field in SCHEDULE_FIELDS:
        assert getattr(panel, field).isVisible() == (field in info.fields), field
    assert panel.schedule_note.text() == info.description
    assert panel.state.train.schedule == name


def test_step_and_plateau_show_their_settings_and_onecycle_drops_the_warmup(
    panel: HyperparametersPanel,
) -> None:
    choose(panel.schedule, "plateau")
    assert panel.lr_decay.isVisible() and panel.plateau_patience.isVisible()
    panel.lr_decay.setValue(0.5)
    panel.plateau_patience.setValue(4)
    panel.warmup_epochs.setValue(1.0)
    train = panel.state.train
    assert (train.lr_decay, train.plateau_patience, train.warmup_epochs) == (0.5, 4, 1.0)
    choose(panel.schedule, "step")
    assert panel.lr_decay.isVisible() and not panel.plateau_patience.isVisible()
    # One-cycle has its own warm-up and the engine refuses another: the hidden box keeps its
    # number for later, but the spec gets none.
    choose(panel.schedule, "onecycle")
    assert not panel.warmup_epochs.isVisible()
    assert panel.state.train.warmup_epochs == 0.0
    choose(panel.schedule, "cosine")
    assert panel.state.train.warmup_epochs == 1.0


# ------------------------------------------------------------------ edits reach the state


def test_quick_run_widgets_keep_their_names(panel: HyperparametersPanel) -> None:
    """tests/app/conftest.py's choose_quick_run sets these three by name."""
    panel.epochs.setValue(2)
    panel.batch_size.setValue(32)
    choose(panel.device, "cpu")
    train = panel.state.train
    assert (train.epochs, train.batch_size, train.device) == (2, 32, "cpu")


def test_optional_fields_round_trip(panel: HyperparametersPanel) -> None:
    panel.ema_decay.check.setChecked(True)
    assert panel.state.train.ema_decay == pytest.approx(0.999)
    panel.ema_decay.box.setValue(0.99)
    assert panel.state.train.ema_decay == pytest.approx(0.99)
    panel.ema_decay.check.setChecked(False)
    assert panel.state.train.ema_decay is None
    assert not panel.ema_decay.box.isEnabled()
    panel.ema_decay.check.setChecked(True)  # the last value comes back
    assert panel.state.train.ema_decay == pytest.approx(0.99)

    panel.grad_clip.check.setChecked(True)
    panel.grad_clip.box.setValue(2.5)
    assert panel.state.train.grad_clip == 2.5
    panel.early_stopping.check.setChecked(True)
    assert panel.state.train.early_stopping == 5
    panel.max_steps.set_value(40)
    panel.max_steps.changed.emit()
    assert panel.state.train.max_steps == 40
    panel.grad_clip.check.setChecked(False)
    panel.early_stopping.check.setChecked(False)
    assert panel.state.train.grad_clip is None and panel.state.train.early_stopping is None


def test_every_field_reaches_the_state(panel: HyperparametersPanel) -> None:
    panel.label_smoothing.setValue(0.1)
    panel.tta_flip.setChecked(True)
    choose(panel.precision, "bf16")
    panel.channels_last.setChecked(False)
    panel.cudnn_benchmark.set_value(False)
    panel.compile.setChecked(True)
    choose(panel.fused_optimizer, "foreach")
    panel.grad_accumulation.setValue(4)
    choose(panel.monitor, "val.loss")
    panel.min_delta.setValue(0.01)
    panel.seed.setValue(11)
    train = panel.state.train
    assert train.label_smoothing == pytest.approx(0.1) and train.tta_flip
    assert (train.precision, train.channels_last, train.cudnn_benchmark) == ("bf16", False, False)
    assert train.compile and train.fused_optimizer == "foreach"
    assert train.grad_accumulation == 4 and train.effective_batch == 256
    assert "256 images" in panel.effective_batch.text()
    assert (train.monitor, train.min_delta, train.seed) == ("val.loss", 0.01, 11)


def test_the_optimizer_offers_its_rate_unless_the_person_chose_one(
    panel: HyperparametersPanel,
) -> None:
    choose(panel.optimizer, "sgd")
    assert panel.state.train.lr == optimizer_info("sgd").default_lr
    choose(panel.optimizer, "adam")
    assert panel.state.train.lr == optimizer_info("adam").default_lr
    panel.lr.lineEdit().setText("3e-4")  # typed by hand, in scientific notation
    panel.lr.interpretText()
    assert panel.state.train.lr == pytest.approx(3e-4)
    choose(panel.optimizer, "sgd")
    assert panel.state.train.lr == pytest.approx(3e-4)
    assert "0.05" in panel.advice.text() and panel.advice.isVisible()


def test_rates_step_along_one_two_five(panel: HyperparametersPanel) -> None:
    panel.lr.setValue(0.001)
    panel.lr.stepBy(1)
    assert panel.lr.value() == pytest.approx(0.002)
    panel.lr.stepBy(2)
    assert panel.lr.value() == pytest.approx(0.01)
    panel.lr.stepBy(-1)
    assert panel.lr.value() == pytest.approx(0.005)
    panel.weight_decay.setValue(0.0)
    panel.weight_decay.stepBy(1)
    assert panel.weight_decay.value() > 0


# ------------------------------------------------------------------ refused combinations


def test_a_refused_combination_shows_a_sentence_and_leaves_the_state(
    panel: HyperparametersPanel,
) -> None:
    panel.batch_size.setValue(4)
    before = panel.state.train
    panel.world_size.setValue(8)
    assert panel.state.train == before
    assert panel.problem.isVisible()
    assert "batch of 4 cannot be split over 8 processes" in panel.problem.text()
    assert "last valid recipe" in panel.problem.text()
    assert "Traceback" not in panel.problem.text()
    panel.batch_size.setValue(16)  # fixed: the sentence goes and the state follows
    assert not panel.problem.isVisible()
    assert (panel.state.train.batch_size, panel.state.train.world_size) == (16, 8)
    assert "2 per process" in panel.effective_batch.text()


def test_a_warmup_as_long_as_the_run_is_refused(panel: HyperparametersPanel) -> None:
    choose(panel.schedule, "cosine")
    panel.epochs.setValue(2)
    before = panel.state.train
    panel.warmup_epochs.setValue(2.0)
    assert panel.state.train == before
    assert "warm-up" in panel.problem.text()


# ------------------------------------------------------------------ fast defaults


def test_fast_defaults_for_the_cpu(qtbot, panel: HyperparametersPanel) -> None:  # type: ignore[no-untyped-def]
    assert panel.fast_button.text() == "Fast defaults for CPU"
    choose(panel.precision, "fp16")
    panel.cudnn_benchmark.set_value(True)
    panel.compile.setChecked(True)
    panel.channels_last.setChecked(False)
    panel.batch_size.setValue(512)
    assert "fp16 needs a GPU" in panel.advice.text()  # the CPU would refuse it at Train
    lr = panel.state.train.lr
    click(qtbot, panel.fast_button)
    train = panel.state.train
    assert (train.precision, train.channels_last, train.compile) == ("fp32", True, False)
    assert train.cudnn_benchmark is None and train.batch_size == 64
    assert train.lr == lr  # the recipe itself is untouched
    assert "fp16" not in panel.advice.text()
    assert panel.precision.value() == "fp32" and panel.batch_size.value() == 64


@pytest.mark.parametrize(
    ("gpu", "precision"), [("NVIDIA H100 80GB HBM3", "bf16"), ("Tesla T4", "fp16")]
)
def test_fast_defaults_for_a_gpu(
    qtbot,  # type: ignore[no-untyped-def]
    state: AppState,
    monkeypatch: pytest.MonkeyPatch,
    gpu: str,
    precision: str,
) -> None:
    monkeypatch.setattr(module, "gpu_inventory", lambda: inventory(gpu))
    panel = make_panel(qtbot, state)
    assert panel.device.findData("cuda:0") >= 0
    assert panel.fast_button.text() == f"Fast defaults for {gpu}"  # automatic: the first GPU
    click(qtbot, panel.fast_button)
    train = panel.state.train
    assert (train.precision, train.channels_last, train.cudnn_benchmark) == (
        precision,
        True,
        True,
    )
    assert train.fused_optimizer == "auto" and train.batch_size == 256
    assert "Applied the fast defaults" in panel.advice.text()
    choose(panel.device, "cpu")  # the GPU settings would be refused on the CPU: say so
    assert panel.fast_button.text() == "Fast defaults for CPU"
    assert "cuDNN benchmark" in panel.advice.text()
    click(qtbot, panel.fast_button)
    assert panel.state.train.cudnn_benchmark is None
    assert "cuDNN" not in panel.advice.text()


def test_several_gpus_offer_all_of_them_for_data_parallel(
    qtbot,  # type: ignore[no-untyped-def]
    state: AppState,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(module, "gpu_inventory", lambda: inventory("NVIDIA L4", "Tesla T4"))
    panel = make_panel(qtbot, state)
    choose(panel.device, "cuda:1")
    assert panel.fast_button.text() == "Fast defaults for Tesla T4"
    panel.world_size.setValue(2)  # one GPU of several: refused with a sentence
    assert "data-parallel" in panel.problem.text()
    choose(panel.device, "cuda")
    assert not panel.problem.isVisible()
    assert (panel.state.train.device, panel.state.train.world_size) == ("cuda", 2)


def test_reset_puts_back_the_defaults(qtbot, panel: HyperparametersPanel) -> None:  # type: ignore[no-untyped-def]
    choose(panel.optimizer, "sgd")
    panel.ema_decay.check.setChecked(True)
    panel.epochs.setValue(30)
    click(qtbot, panel.reset_button)
    assert panel.state.train == TrainSpec()
    assert not panel.ema_decay.check.isChecked() and panel.epochs.value() == 3


# ------------------------------------------------------------------ the state drives the form


def test_a_spec_set_in_the_state_is_shown(panel: HyperparametersPanel) -> None:
    spec = TrainSpec(
        epochs=12,
        batch_size=128,
        lr=0.1,
        optimizer="sgd",
        momentum=0.8,
        nesterov=False,
        weight_decay=1e-4,
        schedule="step",
        warmup_epochs=1.0,
        lr_decay=0.2,
        ema_decay=0.99,
        early_stopping=3,
        monitor="val.loss",
        precision="bf16",
        cudnn_benchmark=False,
        fused_optimizer="off",
        device="cpu",
        seed=7,
    )
    panel.state.update(train=spec)  # as the window does for a stored run
    assert panel.values() == spec.model_dump()
    assert panel.state.train == spec
    assert panel.momentum.isVisible() and panel.lr_decay.isVisible()
    assert panel.ema_decay.check.isChecked() and panel.early_stopping.box.value() == 3
    assert panel.lr.text() == "0.1" and panel.weight_decay.text() == "0.0001"
    # A loaded rate is the person's own: another optimizer does not overwrite it.
    choose(panel.optimizer, "adamw")
    assert panel.state.train.lr == 0.1

    panel.load_spec(TrainSpec(device="cuda:3"))  # a GPU this machine does not have
    assert panel.device.currentText() == "cuda:3 (not on this machine)"
    assert panel.state.train.device == "cuda:3"


# ------------------------------------------------------------------ fine-tuning


def test_the_fine_tuning_box_edits_the_recipe_and_says_the_phases(
    panel: HyperparametersPanel,
) -> None:
    box = panel.fine_tune
    assert "random weights" in box.note.text()
    panel.epochs.setValue(10)
    choose(box.inputs["mode"].widget, "on")
    box.inputs["head_epochs"].widget.setValue(2)
    assert panel.state.train.fine_tune.mode == "on"
    assert panel.state.train.fine_tune.head_epochs == 2
    assert "Epochs 3–10: all layers" in box.note.text()
    panel.undo_stack.undo()
    assert panel.state.train.fine_tune.head_epochs == 1


def test_the_architecture_decides_automatic_fine_tuning(panel: HyperparametersPanel) -> None:
    from cnn_lab.engine.specs import ArchitectureSpec

    panel.state.update(architecture=ArchitectureSpec(preset="resnet18", weights="IMAGENET1K_V1"))
    assert panel.fine_tune.note.text().startswith("Automatic: on")
    assert panel.state.train.fine_tune.mode == "auto"
