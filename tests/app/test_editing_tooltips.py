"""Every option in the editing panels says what it does, and what it does to speed or accuracy.

Issue 10 asks for "tooltips that say what an option does to speed and accuracy". The audit
finds options nothing explains; the word checks keep the texts of the options that change
speed or accuracy saying so.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from PySide6.QtCore import QThreadPool
from PySide6.QtWidgets import QWidget

from cnn_lab.app.models import data_form
from cnn_lab.app.models import hyperparameters_form as hyper
from cnn_lab.app.panels.architecture_panel import ArchitecturePanel
from cnn_lab.app.panels.data_panel import DataPanel
from cnn_lab.app.panels.hyperparameters_panel import HyperparametersPanel
from cnn_lab.app.state import AppState
from cnn_lab.app.widgets import augment_controls, preset_bar
from cnn_lab.app.widgets.param_editor import ParamEditor
from cnn_lab.engine.models.layers.registry import layer_kinds
from tests.app.tooltip_audit import options_without_tooltips

SPEED = re.compile(r"speed|fast|slow|\btime\b", re.IGNORECASE)  # "training time" too
ACCURACY = re.compile(r"accura|overfit|generalis", re.IGNORECASE)

HYPER_SPEED = (
    "batch_size",
    "precision",
    "channels_last",
    "cudnn_benchmark",
    "compile",
    "fused_optimizer",
    "grad_accumulation",
    "world_size",
    "grad_clip",
    "max_steps",
    "early_stopping",
    "optimizer",
    "epochs",
    "tta_flip",
)
HYPER_ACCURACY = (
    "epochs",
    "batch_size",
    "lr",
    "optimizer",
    "schedule",
    "weight_decay",
    "label_smoothing",
    "ema_decay",
    "tta_flip",
    "max_steps",
    "early_stopping",
    "precision",
)
DATA_SPEED = ("image_size", "channels", "limit", "source", "resize", "class_balance")
DATA_ACCURACY = (
    "image_size",
    "channels",
    "limit",
    "val_fraction",
    "test_fraction",
    "class_balance",
)


def _data_panel(state: AppState) -> DataPanel:
    return DataPanel(state)


PANELS: dict[str, Callable[[AppState], QWidget]] = {
    "data": _data_panel,
    "hyperparameters": HyperparametersPanel,
    "architecture": ArchitecturePanel,
}


@pytest.mark.parametrize("name", sorted(PANELS))
def test_every_option_has_a_tooltip(qtbot, db_path: Path, name: str) -> None:  # type: ignore[no-untyped-def]
    panel = PANELS[name](AppState(db_path))
    qtbot.addWidget(panel)
    try:
        assert options_without_tooltips(panel) == []
    finally:
        task = getattr(panel, "import_task", None)
        if task is not None:
            task.cancel()
        assert QThreadPool.globalInstance().waitForDone(30_000)


def test_the_architecture_panel_explains_a_selected_layer_too(qtbot, db_path: Path) -> None:  # type: ignore[no-untyped-def]
    editor = ParamEditor()
    qtbot.addWidget(editor)
    for kind in layer_kinds():
        editor.show_layer(kind, {})
        assert options_without_tooltips(editor) == [], kind.kind


@pytest.mark.parametrize(
    ("texts", "names", "pattern"),
    [
        (hyper.HELP, HYPER_SPEED, SPEED),
        (hyper.HELP, HYPER_ACCURACY, ACCURACY),
        (data_form.HELP, DATA_SPEED, SPEED),
        (data_form.HELP, DATA_ACCURACY, ACCURACY),
        (preset_bar.TIPS, ("width", "depth", "preset", "dropout"), SPEED),
        (preset_bar.TIPS, ("depth", "preset", "pretrained", "dropout"), ACCURACY),
    ],
    ids=["hyper-speed", "hyper-accuracy", "data-speed", "data-accuracy", "arch-speed", "arch-acc"],
)
def test_tooltips_say_what_an_option_does_to_speed_and_accuracy(
    texts: dict[str, str], names: tuple[str, ...], pattern: re.Pattern[str]
) -> None:
    silent = [name for name in names if not pattern.search(texts[name])]
    assert silent == []


def test_augmentation_tooltips_say_what_augmenting_buys() -> None:
    for text in (
        augment_controls.EFFECT,
        augment_controls.MIXUP_HELP,
        augment_controls.CUTMIX_HELP,
    ):
        assert ACCURACY.search(text) and SPEED.search(text), text
