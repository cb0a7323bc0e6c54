"""The Architecture panel builds a network by clicking, shows its cost live, undoes and saves.

Every wait is on a condition the panel reaches (the live summary idle, a banner shown), never
a fixed sleep. The first summary imports torch on a worker thread, so the first wait is long.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QThreadPool
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QTreeWidget, QTreeWidgetItem

from cnn_lab.app.bridge.live_summary import LiveSummary
from cnn_lab.app.panels.architecture_panel import ArchitecturePanel
from cnn_lab.app.state import AppState
from cnn_lab.app.widgets.layer_list import ERROR_BRUSH, PATH_MIME
from cnn_lab.app.widgets.layer_palette import KIND_MIME
from cnn_lab.engine.errors import ModelError, UserError
from cnn_lab.engine.models.registry import InputShape
from cnn_lab.engine.specs import ArchitectureSpec

SUMMARY_MS = 60_000  # the first summary imports torch (and torchvision for its presets)
SHAPE = InputShape(channels=3, height=32, width=32, classes=10)
SMALL_NET = ("conv2d", "batchnorm", "relu", "max_pool", "global_avg_pool", "linear")
# 3×32×32 in, 10 classes: conv 3·32·3·3 (no bias) + BN 2·32 + linear 32·10 + 10.
SMALL_NET_PARAMS = 864 + 64 + 330


@pytest.fixture
def panel(qtbot, db_path: Path) -> Iterator[ArchitecturePanel]:  # type: ignore[no-untyped-def]
    """The panel on a fresh state, showing the default preset's summary."""
    panel = ArchitecturePanel(AppState(db_path))
    qtbot.addWidget(panel)
    panel.resize(1280, 760)
    panel.show()
    settle(qtbot, panel)
    yield panel
    assert QThreadPool.globalInstance().waitForDone(30_000)


def settle(qtbot, panel: ArchitecturePanel) -> None:  # type: ignore[no-untyped-def]
    """Wait until the newest summary (or its error) is on screen."""
    qtbot.waitUntil(lambda: not panel.live.is_busy, timeout=SUMMARY_MS)


def click_item(qtbot, tree: QTreeWidget, item: QTreeWidgetItem, double: bool = False) -> None:  # type: ignore[no-untyped-def]
    tree.scrollToItem(item)
    pos = tree.visualItemRect(item).center()
    qtbot.mouseClick(tree.viewport(), Qt.MouseButton.LeftButton, pos=pos)
    if double:  # a double-click follows a press, as a real one does
        qtbot.mouseDClick(tree.viewport(), Qt.MouseButton.LeftButton, pos=pos)


def build_by_clicking(qtbot, panel: ArchitecturePanel, kinds: tuple[str, ...]) -> None:  # type: ignore[no-untyped-def]
    qtbot.mouseClick(panel.bar.new_button, Qt.MouseButton.LeftButton)
    for kind in kinds:
        click_item(qtbot, panel.palette_tree, panel.palette_tree.item_for(kind), double=True)
    settle(qtbot, panel)


def kinds_of(panel: ArchitecturePanel) -> list[str]:
    return [layer.kind for layer in panel.spec.layers]


# ------------------------------------------------------------------ build, undo, save


def test_build_a_small_net_by_clicking_then_undo_redo_save_and_load(
    qtbot,  # type: ignore[no-untyped-def]
    panel: ArchitecturePanel,
    tmp_path: Path,
) -> None:
    qtbot.mouseClick(panel.bar.new_button, Qt.MouseButton.LeftButton)
    assert panel.spec.is_custom and not panel.spec.layers
    assert panel.banner.isVisible() and "no layers" in panel.banner.text()

    build_by_clicking(qtbot, panel, SMALL_NET)
    assert kinds_of(panel) == list(SMALL_NET)
    assert panel.summary.params == SMALL_NET_PARAMS
    assert f"Parameters {SMALL_NET_PARAMS:,}" in panel.summary_table.totals_text()
    assert "at batch 64 with adamw" in panel.summary_table.totals_text()
    assert panel.summary_table.table.rowCount() == len(SMALL_NET)
    assert not panel.banner.isVisible()
    assert panel.state.architecture == panel.spec  # a valid net reaches the shared state

    # Select the convolution and type a new channel count into the property editor.
    click_item(qtbot, panel.layer_list.tree, panel.layer_list.item_at_path((0,)))
    assert panel.selected == (0,)
    spin = panel.editor.field_widget("out_channels")
    spin.lineEdit().selectAll()
    qtbot.keyClicks(spin.lineEdit(), "64")
    qtbot.keyClick(spin.lineEdit(), Qt.Key.Key_Return)
    settle(qtbot, panel)
    wider = 3 * 64 * 9 + 2 * 64 + 64 * 10 + 10
    assert panel.spec.layers[0].params["out_channels"] == 64
    assert f"Parameters {wider:,}" in panel.summary_table.totals_text()

    qtbot.mouseClick(panel.bar.undo_button, Qt.MouseButton.LeftButton)
    settle(qtbot, panel)
    assert panel.spec.layers[0].params["out_channels"] == 32
    assert f"Parameters {SMALL_NET_PARAMS:,}" in panel.summary_table.totals_text()

    # Ctrl+Y / Ctrl+Z belong to the window's Edit menu, which drives this same stack.
    qtbot.mouseClick(panel.bar.redo_button, Qt.MouseButton.LeftButton)
    settle(qtbot, panel)
    assert panel.summary.params == wider
    panel.undo_stack.undo()
    settle(qtbot, panel)
    assert panel.summary.params == SMALL_NET_PARAMS

    saved = tmp_path / "small.json"
    panel.save_to(saved)
    other = tmp_path / "other.json"
    other.write_text(ArchitectureSpec(preset="resnet9", width=0.5).model_dump_json())
    panel.load_from(other)
    settle(qtbot, panel)
    assert panel.spec.preset == "resnet9" and panel.state.architecture.width == 0.5

    panel.load_from(saved)
    settle(qtbot, panel)
    assert panel.spec == ArchitectureSpec.model_validate_json(saved.read_text())
    assert kinds_of(panel) == list(SMALL_NET)
    assert panel.summary.params == SMALL_NET_PARAMS

    qtbot.mouseClick(panel.bar.undo_button, Qt.MouseButton.LeftButton)  # loading is undoable
    assert panel.spec.preset == "resnet9"

    bad = tmp_path / "bad.json"
    bad.write_text('{"preset": "custom", "layers": [], "colour": "red"}')
    with pytest.raises(UserError, match=r"bad\.json is not an architecture"):
        panel.load_from(bad)
    assert panel.spec.preset == "resnet9"


# ------------------------------------------------------------------ errors


def test_an_impossible_net_names_the_layer_and_the_panel_keeps_working(
    qtbot,  # type: ignore[no-untyped-def]
    panel: ArchitecturePanel,
) -> None:
    build_by_clicking(qtbot, panel, ("conv2d", "linear"))
    assert panel.banner.isVisible()
    text = panel.banner.text()
    assert text.startswith("Layer 2 (Linear)") and "Traceback" not in text
    assert panel.layer_list.error_path() == (1,)
    row = panel.layer_list.item_at_path((1,))
    assert row.background(0) == ERROR_BRUSH and row.toolTip(0) == text
    assert panel.diagram.error_index == 2  # box 0 is the input
    assert panel.summary_table.table.styleSheet()  # the last good summary stays, greyed

    # Too many pools on 32×32: the seventh collapses the map.
    click_item(qtbot, panel.layer_list.tree, panel.layer_list.item_at_path((0,)))
    for _ in range(6):
        panel.add_layer("max_pool")
    settle(qtbot, panel)
    assert "collapses to zero" in panel.banner.text()
    assert panel.layer_list.error_path() == (6,)

    for _ in range(6):
        panel.undo_stack.undo()
    # The next valid edit clears the error: global pooling before the linear layer.
    click_item(qtbot, panel.layer_list.tree, panel.layer_list.item_at_path((0,)))
    click_item(qtbot, panel.palette_tree, panel.palette_tree.item_for("global_avg_pool"), True)
    settle(qtbot, panel)
    assert kinds_of(panel) == ["conv2d", "global_avg_pool", "linear"]
    assert not panel.banner.isVisible() and panel.layer_list.error_path() is None
    assert panel.summary.params == 864 + 330

    # Deleting every layer leaves an invalid draft: a sentence, no crash, state untouched.
    for _ in range(3):
        valid = panel.state.architecture
        click_item(qtbot, panel.layer_list.tree, panel.layer_list.item_at_path((0,)))
        qtbot.keyClick(panel.layer_list.tree, Qt.Key.Key_Delete)
    assert panel.spec.layers == () and "no layers" in panel.banner.text()
    assert panel.state.architecture == valid and kinds_of(panel) == []
    assert [layer.kind for layer in valid.layers] == ["linear"]  # the last valid spec
    with pytest.raises(UserError, match="cannot be saved yet"):
        panel.save_to(Path(panel.state.db_path).with_name("empty.json"))


# ------------------------------------------------------------------ reorder, blocks, presets


def drop(tree: QTreeWidget, mime_type: str, payload: bytes, pos: QPoint) -> None:
    data = QMimeData()
    data.setData(mime_type, payload)
    event = QDropEvent(
        QPointF(pos), Qt.DropAction.MoveAction, data, Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )  # fmt: skip
    tree.dropEvent(event)


def test_reorder_by_buttons_and_drops_open_a_block_and_edit_a_preset_as_layers(
    qtbot,  # type: ignore[no-untyped-def]
    panel: ArchitecturePanel,
) -> None:
    preset_params = panel.summary.params  # small_cnn, the default
    qtbot.mouseClick(panel.bar.edit_layers_button, Qt.MouseButton.LeftButton)
    settle(qtbot, panel)
    assert panel.spec.is_custom and panel.spec.layers
    assert panel.summary.params == preset_params

    build_by_clicking(qtbot, panel, ("conv2d", "relu", "batchnorm", "global_avg_pool", "linear"))
    lst = panel.layer_list
    click_item(qtbot, lst.tree, lst.item_at_path((2,)))
    qtbot.mouseClick(lst.up_button, Qt.MouseButton.LeftButton)
    assert kinds_of(panel)[:3] == ["conv2d", "batchnorm", "relu"] and panel.selected == (1,)
    qtbot.mouseClick(lst.down_button, Qt.MouseButton.LeftButton)
    assert kinds_of(panel)[:3] == ["conv2d", "relu", "batchnorm"] and panel.selected == (2,)

    # Drag the batchnorm above the relu: dropped on the upper part of the relu's row.
    rect = lst.tree.visualItemRect(lst.item_at_path((1,)))
    drop(lst.tree, PATH_MIME, b"[2]", QPoint(rect.center().x(), rect.top() + 2))
    assert kinds_of(panel)[:3] == ["conv2d", "batchnorm", "relu"]
    # A palette drag onto the lower part of the first row inserts after it.
    rect = lst.tree.visualItemRect(lst.item_at_path((0,)))
    drop(lst.tree, KIND_MIME, b"basic_block", QPoint(rect.center().x(), rect.bottom() - 2))
    assert kinds_of(panel)[:2] == ["conv2d", "basic_block"]
    settle(qtbot, panel)
    with_block = panel.summary.params

    click_item(qtbot, lst.tree, lst.item_at_path((1,)))
    assert lst.open_button.isEnabled()
    qtbot.mouseClick(lst.open_button, Qt.MouseButton.LeftButton)
    settle(qtbot, panel)
    opened = panel.spec.layers[1]
    assert opened.kind == "residual" and len(opened.layers) == 5
    assert [layer.kind for layer in opened.layers] == [
        "conv2d", "batchnorm", "relu", "conv2d", "batchnorm",
    ]  # fmt: skip
    assert lst.item_at_path((1, 4)) is not None
    assert panel.summary.params == with_block  # the same network, now editable
    assert not panel.banner.isVisible()

    # Into the block: a palette drop on the middle of its row appends inside it ...
    drop(lst.tree, KIND_MIME, b"relu", lst.tree.visualItemRect(lst.item_at_path((1,))).center())
    assert [layer.kind for layer in panel.spec.layers[1].layers][-1] == "relu"
    # ... and out of it: the new inner layer dragged above the global pooling.
    rect = lst.tree.visualItemRect(lst.item_at_path((4,)))
    drop(lst.tree, PATH_MIME, b"[1, 5]", QPoint(rect.center().x(), rect.top() + 2))
    assert len(panel.spec.layers[1].layers) == 5
    assert kinds_of(panel) == [
        "conv2d", "residual", "batchnorm", "relu", "relu", "global_avg_pool", "linear",
    ]  # fmt: skip
    settle(qtbot, panel)
    assert panel.summary.params == with_block and not panel.banner.isVisible()


def test_a_torchvision_preset_shows_its_units_and_depth_follows_the_preset(
    qtbot,  # type: ignore[no-untyped-def]
    panel: ArchitecturePanel,
) -> None:
    from cnn_lab.engine.models.architecture_summary import summarize_architecture

    expected = summarize_architecture(ArchitectureSpec(preset="resnet18"), SHAPE)
    combo = panel.bar.preset
    combo.setCurrentIndex(combo.findData("resnet18"))
    settle(qtbot, panel)
    assert panel.spec.preset == "resnet18" and panel.state.architecture.preset == "resnet18"
    assert panel.summary_table.table.rowCount() == len(expected.layers) > 10
    assert panel.summary.params == expected.params
    assert f"Parameters {expected.params:,}" in panel.summary_table.totals_text()
    assert "11.2 M" in panel.summary_table.totals_text()
    assert not panel.bar.edit_layers_button.isEnabled()
    assert panel.bar.spins["depth"].isEnabled()

    combo.setCurrentIndex(combo.findData("mobilenet_v3_small"))
    settle(qtbot, panel)
    assert not panel.bar.spins["depth"].isEnabled()
    assert "no repeated blocks" in panel.bar.spins["depth"].toolTip()
    assert panel.bar.spins["width"].isEnabled()


def test_batch_size_and_input_shape_changes_recompute_without_looping(
    qtbot,  # type: ignore[no-untyped-def]
    panel: ArchitecturePanel,
) -> None:
    state = panel.state
    before = panel.undo_stack.count()
    state.update(train=state.train.model_copy(update={"batch_size": 8, "optimizer": "sgd"}))
    assert "at batch 8 with sgd" in panel.summary_table.totals_text()
    state.set_input_shape(InputShape(channels=1, height=28, width=28, classes=5))
    settle(qtbot, panel)
    assert panel.summary.input_shape == (1, 28, 28)
    assert "from the imported dataset" in panel.bar.input_label.text()
    assert panel.undo_stack.count() == before  # nothing from outside became an undo step


# ------------------------------------------------------------------ the live summary alone


class _Fake:
    def __init__(self, width: float) -> None:
        self.width = width


def test_live_summary_delivers_only_the_newest_request(qtbot) -> None:  # type: ignore[no-untyped-def]
    gate, calls = threading.Event(), []

    def compute(spec: ArchitectureSpec, shape: InputShape) -> _Fake:
        calls.append(spec.width)
        if len(calls) == 1:
            gate.wait(10)  # hold the first one while newer requests arrive
        if spec.width == 3.0:
            raise ModelError("Layer 2 (Linear): needs a flat vector.", path=(1,))
        return _Fake(spec.width)

    live = LiveSummary(compute)
    ready: list[float] = []
    live.ready.connect(lambda summary, spec: ready.append(summary.width))
    busy: list[bool] = []
    live.busy.connect(busy.append)
    for width in (1.0, 1.5, 2.0, 2.5):
        live.request(ArchitectureSpec(width=width), SHAPE)
    gate.set()
    qtbot.waitUntil(lambda: not live.is_busy, timeout=10_000)
    assert ready == [2.5]  # 1.0 finished stale and was dropped; 1.5 and 2.0 never ran
    assert calls == [1.0, 2.5]
    assert busy == [True, False]

    with qtbot.waitSignal(live.failed, timeout=10_000) as failed:
        live.request(ArchitectureSpec(width=3.0), SHAPE)
    assert failed.args == ["Layer 2 (Linear): needs a flat vector.", (1,)]
