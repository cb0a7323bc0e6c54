"""The Architecture panel's weights row, timm picker and module picker, on real parts.

Published weights are served by a real HTTP server on 127.0.0.1 (CNN_LAB_WEIGHTS_MIRROR points
the download there) or pre-filled into torch.hub's cache under tmp_path; a failed download
dials a port nobody listens on. Nothing reaches the internet. The message box and the file
dialog are the only stand-ins, as in the window's other tests.
"""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QThreadPool
from PySide6.QtWidgets import QFileDialog, QMessageBox

from cnn_lab.app.panels.architecture_panel import ArchitecturePanel
from cnn_lab.app.state import AppState
from cnn_lab.app.widgets.module_picker import RUN_TEXT
from cnn_lab.app.widgets.weights_row import CHOOSE_FILE
from cnn_lab.engine.models import published_weights
from cnn_lab.engine.models.hub_download import MIRROR_ENV
from cnn_lab.engine.models.published_weights import PublishedWeights, WeightsSource, find_weights
from cnn_lab.engine.models.trust import is_trusted
from cnn_lab.engine.specs import ArchitectureSpec
from tests.app.test_architecture_panel import settle
from tests.local_http import FileServer, in_slow_chunks

RESNET18 = ArchitectureSpec(preset="resnet18")
PAYLOAD = bytes(range(256)) * 1024  # 256 KiB: a few of torch.hub's 128 KiB chunks
TINY = f"tiny-{hashlib.sha256(PAYLOAD).hexdigest()[:8]}.pth"
WAIT_MS = 60_000
LEFT = Qt.MouseButton.LeftButton
NET_PY = """\
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self, num_classes=10, in_channels=3, width=8):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, width, 3, padding=1)
        self.fc = nn.Linear(width, num_classes)

    def forward(self, x):
        return self.fc(self.conv(x).mean((2, 3)))


class Broken(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        raise ValueError("no layers for you")
"""


class _TinySource(WeightsSource):
    """Published weights for small_cnn whose file is PAYLOAD, so its hash can be right."""

    kind = "test-tiny"

    def handles(self, spec: ArchitectureSpec) -> bool:
        return spec.preset == "small_cnn"

    def catalogue(self, spec: ArchitectureSpec) -> list[PublishedWeights]:
        url = f"https://download.example.invalid/models/{TINY}"
        return [
            PublishedWeights(
                "test-tiny", "small_cnn", "TINY_V1", url, 50.0, 0.3, None, None, None, None,
                None, None, is_default=True,
            )
        ]  # fmt: skip


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """torch.hub's cache and the trusted modules under tmp_path; downloads go nowhere real."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("CNN_LAB_CONFIG", str(tmp_path / "config"))
    monkeypatch.setenv(MIRROR_ENV, f"http://127.0.0.1:{_dead_port()}")
    return tmp_path / "torch" / "hub" / "checkpoints"


@pytest.fixture
def panel(qtbot, db_path: Path, hub: Path) -> Iterator[ArchitecturePanel]:  # type: ignore[no-untyped-def]
    panel = ArchitecturePanel(AppState(db_path))
    qtbot.addWidget(panel)
    panel.resize(1280, 720)
    panel.show()
    settle(qtbot, panel)
    yield panel
    assert QThreadPool.globalInstance().waitForDone(30_000)


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _choose_preset(qtbot, panel: ArchitecturePanel, name: str) -> None:  # type: ignore[no-untyped-def]
    panel.bar.preset.setCurrentIndex(panel.bar.preset.findData(name))
    settle(qtbot, panel)
    qtbot.waitUntil(lambda: panel.bar.weights.combo.count() > 2, timeout=WAIT_MS)


def _leftovers(hub: Path) -> list[str]:
    return sorted(p.name for p in hub.iterdir()) if hub.exists() else []


# ------------------------------------------------------------------ published weights


def test_cached_weights_are_one_undoable_edit_with_no_download(qtbot, panel, hub) -> None:  # type: ignore[no-untyped-def]
    hub.mkdir(parents=True)
    (hub / find_weights(RESNET18, "IMAGENET1K_V1").filename).write_bytes(b"a state dict")
    _choose_preset(qtbot, panel, "resnet18")
    row = panel.bar.weights
    texts = [row.combo.itemText(i) for i in range(row.combo.count())]
    assert texts == [
        "Random initial weights",
        "IMAGENET1K_V1 · 69.8 % top-1 · 44.7 MB · downloaded (default)",
        "A weights file…",
    ]
    assert not panel.bar.freeze.isEnabled()
    steps = panel.undo_stack.count()

    row.choose(row.index_of("published", "IMAGENET1K_V1"))  # the mirror is a dead port
    assert panel.spec.weights == "IMAGENET1K_V1" and not row.downloading
    assert panel.undo_stack.count() == steps + 1
    assert panel.state.architecture.weights == "IMAGENET1K_V1"
    assert panel.bar.freeze.isEnabled()
    qtbot.mouseClick(panel.bar.freeze, LEFT)
    assert panel.spec.freeze_backbone
    settle(qtbot, panel)
    assert not panel.banner.isVisible()
    panel.undo_stack.undo()
    panel.undo_stack.undo()
    assert panel.spec.weights == "" and row.combo.currentIndex() == 0


def test_uncached_weights_download_with_progress_then_the_edit_is_pushed(  # type: ignore[no-untyped-def]
    qtbot, panel, hub, tmp_path, monkeypatch
) -> None:
    monkeypatch.setitem(published_weights._SOURCES, _TinySource.kind, _TinySource())
    served = tmp_path / "served"
    served.mkdir()
    (served / TINY).write_bytes(PAYLOAD)
    panel.sources.refresh(panel.spec, force=True)
    row = panel.bar.weights
    qtbot.waitUntil(lambda: row.index_of("published", "TINY_V1") > 0, timeout=WAIT_MS)
    assert "to download" in row.combo.itemText(row.index_of("published", "TINY_V1"))
    seen: list[str] = []
    with FileServer(served, in_slow_chunks()) as server:
        monkeypatch.setenv(MIRROR_ENV, server.url)
        row.choose(row.index_of("published", "TINY_V1"))
        assert row.downloading and panel.spec.weights == ""  # nothing changes before it is there
        qtbot.waitUntil(lambda: seen.append(row.progress.label.text()) or not row.downloading,
                        timeout=WAIT_MS)  # fmt: skip
    assert panel.spec.weights == "TINY_V1"
    assert any(" of 0.3 MB" in text for text in seen), seen
    assert _leftovers(hub) == [TINY]
    qtbot.waitUntil(
        lambda: "downloaded" in row.combo.itemText(row.index_of("published", "TINY_V1")),
        timeout=WAIT_MS,
    )
    panel.undo_stack.undo()
    assert panel.spec.weights == ""


def test_a_failed_download_says_why_and_offers_the_file_picker(  # type: ignore[no-untyped-def]
    qtbot, panel, hub, tmp_path, monkeypatch
) -> None:
    _choose_preset(qtbot, panel, "resnet18")
    said: list[str] = []

    def choose_file(box: QMessageBox) -> int:
        said.append(box.text())
        next(b for b in box.buttons() if b.text() == CHOOSE_FILE).click()
        return 0

    weights_file = tmp_path / "mine.pt"
    weights_file.write_bytes(b"weights")
    monkeypatch.setattr(QMessageBox, "exec", choose_file)
    monkeypatch.setattr(
        QFileDialog, "getOpenFileName", staticmethod(lambda *a, **k: (str(weights_file), ""))
    )
    row = panel.bar.weights
    steps = panel.undo_stack.count()
    row.choose(row.index_of("published", "IMAGENET1K_V1"))
    qtbot.waitUntil(lambda: bool(said), timeout=WAIT_MS)
    (sentence,) = said
    assert "cannot be reached" in sentence and "\n" not in sentence
    assert "Pretrained file" not in sentence  # the hint is the dialog's own button
    assert panel.spec.weights == "" and panel.spec.pretrained == str(weights_file)
    assert panel.undo_stack.count() == steps + 1  # only the file, never the failed weights
    assert row.combo.currentText() == "File: mine.pt"
    assert _leftovers(hub) == []


def test_cancel_mid_download_changes_nothing(qtbot, panel, hub, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    _choose_preset(qtbot, panel, "resnet18")
    served = tmp_path / "served"
    served.mkdir()
    filename = find_weights(RESNET18, "IMAGENET1K_V1").filename
    (served / filename).write_bytes(PAYLOAD * 40)  # 10 MB at 0.8 MB/s: seconds to cancel in
    row = panel.bar.weights
    before, steps = panel.spec, panel.undo_stack.count()
    with FileServer(served, in_slow_chunks()) as server:
        monkeypatch.setenv(MIRROR_ENV, server.url)
        row.choose(row.index_of("published", "IMAGENET1K_V1"))
        qtbot.waitUntil(lambda: " MB" in row.progress.label.text(), timeout=WAIT_MS)
        assert row.cancel_button.isVisible() and not row.combo.isEnabled()
        qtbot.mouseClick(row.cancel_button, LEFT)
        qtbot.waitUntil(lambda: not row.downloading, timeout=WAIT_MS)
    assert panel.spec == before and panel.undo_stack.count() == steps
    assert row.combo.currentIndex() == 0 and row.combo.isEnabled()
    assert not row.progress.isVisible() and _leftovers(hub) == []


# ------------------------------------------------------------------ timm and your own module


def test_the_timm_picker_finds_resnets_and_choosing_one_sets_the_spec(qtbot, panel) -> None:  # type: ignore[no-untyped-def]
    bar = panel.bar
    bar.preset.setCurrentIndex(bar.preset.findData("timm"))
    dialog = panel.sources.timm_dialog
    assert dialog is not None and dialog.isVisible()
    assert panel.spec.preset == "small_cnn"  # opening the picker is no choice yet
    dialog.field.setText("resnet")
    qtbot.waitUntil(lambda: not dialog.searching and dialog.field.text() == "resnet",
                    timeout=WAIT_MS)  # fmt: skip
    qtbot.waitUntil(lambda: dialog.select("resnet18"), timeout=WAIT_MS)
    names = [
        dialog.results.topLevelItem(i).text(0) for i in range(dialog.results.topLevelItemCount())
    ]
    assert names[0] == "resnet" or all("resnet" in name for name in names)
    item = dialog.results.currentItem()
    assert item.text(1) == "resnet" and "a1_in1k" in item.text(2)
    qtbot.mouseClick(dialog.ok_button, LEFT)
    assert (panel.spec.preset, panel.spec.timm_model) == ("timm", "resnet18")
    assert "built by timm" in bar.description.text() and "resnet18" in bar.description.text()
    assert bar.preset.currentText().strip() == "timm: resnet18"
    settle(qtbot, panel)
    assert not panel.banner.isVisible(), panel.banner.text()
    panel.undo_stack.undo()
    assert panel.spec.preset == "small_cnn"


def test_a_module_file_is_asked_about_once_and_a_broken_class_is_a_sentence(  # type: ignore[no-untyped-def]
    qtbot, panel, tmp_path, monkeypatch
) -> None:
    file = tmp_path / "net.py"
    file.write_text(NET_PY)
    monkeypatch.setattr(
        QFileDialog, "getOpenFileName", staticmethod(lambda *a, **k: (str(file), ""))
    )
    bar = panel.bar
    bar.preset.setCurrentIndex(bar.preset.findData("module"))
    dialog = panel.sources.module_dialog
    assert dialog is not None and dialog.isVisible()
    assert [dialog.class_box.itemText(i) for i in range(dialog.class_box.count())] == [
        "Net",
        "Broken",
    ]
    assert "will run the code in net.py" in dialog.warning.text()
    assert dialog.ok_button.text() == RUN_TEXT
    dialog.kwargs.setText("{width: 4}")
    qtbot.mouseClick(dialog.ok_button, LEFT)
    assert dialog.isVisible() and "not valid JSON" in dialog.error.text()
    dialog.kwargs.setText('{"width": 4}')
    qtbot.mouseClick(dialog.ok_button, LEFT)
    module = panel.spec.module
    assert module is not None and (module.class_name, module.kwargs) == ("Net", {"width": 4})
    assert is_trusted(module.sha256)
    settle(qtbot, panel)
    assert not panel.banner.isVisible(), panel.banner.text()

    bar.preset.activated.emit(bar.preset.currentIndex())  # the same entry again: another class
    again = panel.sources.module_dialog
    assert again is not dialog and again is not None
    assert again.ok_button.text() != RUN_TEXT  # this content was agreed to already
    assert again.kwargs.text() == '{"width": 4}'
    again.class_box.setCurrentText("Broken")
    again.kwargs.setText("")
    qtbot.mouseClick(again.ok_button, LEFT)
    assert panel.spec.module is not None and panel.spec.module.class_name == "Broken"
    settle(qtbot, panel)
    assert panel.banner.isVisible() and "no layers for you" in panel.banner.text()
    assert "Traceback" not in panel.banner.text()
    panel.undo_stack.undo()
    settle(qtbot, panel)
    assert panel.spec.module is not None and panel.spec.module.class_name == "Net"
    assert not panel.banner.isVisible()


def test_a_data_panel_line_says_what_the_weights_expect(qtbot, db_path) -> None:  # type: ignore[no-untyped-def]
    from cnn_lab.app.panels.data_panel import DataPanel

    state = AppState(db_path)
    data = DataPanel(state)
    qtbot.addWidget(data)
    line = data.preprocessing.expected
    assert line.isHidden()
    state.update(architecture=RESNET18.model_copy(update={"weights": "IMAGENET1K_V1"}))
    assert not line.isHidden() and "expect 224 px images" in line.text()
    state.update(architecture=RESNET18)
    assert line.isHidden()
    data.cancel()
    assert QThreadPool.globalInstance().waitForDone(30_000)
