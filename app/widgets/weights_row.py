"""The Architecture panel's weights row: random, published weights, or a file; and freezing.

One combo lists what the network can start from (app/models/weights_choice.py says what
and how each line reads); beside it, Freeze backbone, and while published weights download,
a progress bar with the bytes and time left and a Cancel button. The row only reports what
the person asks for: the panel downloads (off the GUI thread), pushes the undoable edit once
the weights are there, and calls ``show_spec`` back, which also puts the combo back after a
cancelled or failed download.
"""

from __future__ import annotations

from PySide6.QtCore import QSignalBlocker, Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from cnn_lab.app.models import weights_choice
from cnn_lab.app.models.weights_choice import Published, WeightsEntry
from cnn_lab.app.widgets.task_progress import TaskProgress
from cnn_lab.engine.specs import ArchitectureSpec

WEIGHT_FILES = "Weights (*.safetensors *.pt *.pth);;All files (*)"
CHOOSE_FILE = "Choose a file…"
COMBO_TIP = (
    "Weights to start from instead of random ones: usually much higher accuracy on small "
    "datasets and far fewer epochs to get there. Published weights show their ImageNet "
    "accuracy, size, and whether they are already downloaded."
)
FREEZE_TIP = (
    "Train only the classifier and keep the pretrained weights fixed: faster epochs, "
    "sometimes lower accuracy than fine-tuning every layer."
)


def ask_to_pick_file(parent: QWidget, sentence: str) -> bool:
    """Say why the weights could not be had, and offer the file picker instead."""
    box = QMessageBox(
        QMessageBox.Icon.Warning,
        "Weights not downloaded",
        sentence,
        QMessageBox.StandardButton.Cancel,
        parent,
    )
    choose = box.addButton(CHOOSE_FILE, QMessageBox.ButtonRole.AcceptRole)
    box.setDefaultButton(choose)
    box.exec()
    return box.clickedButton() is choose


class WeightsRow(QWidget):
    """The combo, Freeze backbone, and the download's progress and Cancel."""

    published_chosen = Signal(str)
    file_chosen = Signal(str)  # "" means random initial weights
    freeze_toggled = Signal(bool)
    cancel_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.combo = QComboBox()
        self.combo.setMinimumWidth(300)
        self.combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.combo.setToolTip(COMBO_TIP)
        self.freeze = QCheckBox("Freeze backbone")
        self.freeze.setToolTip(FREEZE_TIP)
        self.progress = TaskProgress(bar_width=160)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the download; nothing is kept and nothing changes.")
        self.cancel_button.setVisible(False)
        # The download takes a line of its own under the combo while it runs: beside it, it
        # squeezed the input line next to the row into a tall narrow column.
        self.download_row = QWidget()
        downloading = QHBoxLayout(self.download_row)
        downloading.setContentsMargins(0, 0, 0, 0)
        downloading.addWidget(self.progress)
        downloading.addWidget(self.cancel_button)
        downloading.addStretch(1)
        self.download_row.setVisible(False)
        top = QHBoxLayout()
        top.addWidget(self.combo)
        top.addWidget(self.freeze)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(top)
        layout.addWidget(self.download_row)
        self._downloading = ""  # the weights being downloaded, "" when none
        self.lines: list[WeightsEntry] = []
        self._published: tuple[Published, ...] = ()
        self._spec = ArchitectureSpec()
        self.combo.activated.connect(self._activated)
        self.freeze.toggled.connect(self.freeze_toggled)
        self.cancel_button.clicked.connect(self.cancel_requested)

    # ----------------------------------------------------------------- showing

    def set_catalogue(self, published: tuple[Published, ...]) -> None:
        """The network's published weights (from a worker), then the lines again."""
        self._published = published
        self._fill()

    def show_spec(self, spec: ArchitectureSpec) -> None:
        """Show the weights ``spec`` starts from; freezing needs weights to keep."""
        self._spec = spec
        self._fill()
        with QSignalBlocker(self.freeze):
            self.freeze.setChecked(spec.freeze_backbone)
        self.freeze.setEnabled(spec.starts_pretrained and not self.downloading)
        if not spec.starts_pretrained:
            self.freeze.setToolTip("Freezing needs pretrained weights: choose some first.")
        else:
            self.freeze.setToolTip(FREEZE_TIP)

    def _fill(self) -> None:
        self.lines = weights_choice.entries(self._spec, self._published)
        with QSignalBlocker(self.combo):
            self.combo.clear()
            for line in self.lines:
                self.combo.addItem(line.label, line.kind)
                self.combo.setItemData(
                    self.combo.count() - 1, line.tip, Qt.ItemDataRole.ToolTipRole
                )
            self.combo.setCurrentIndex(weights_choice.current_index(self.lines, self._spec))

    def entry(self, name: str) -> WeightsEntry | None:
        """The published line called ``name`` (None when the catalogue does not list it)."""
        return weights_choice.find_entry(self.lines, name)

    def index_of(self, kind: str, value: str = "") -> int:
        """The combo's line of ``kind`` (and ``value``); -1 if none."""
        for index, line in enumerate(self.lines):
            if line.kind == kind and (not value or line.value == value):
                return index
        return -1

    # ----------------------------------------------------------------- choosing

    def choose(self, index: int) -> None:
        """Choose line ``index`` as a click would (tests and keyboard use it too)."""
        self.combo.setCurrentIndex(index)
        self._activated(index)

    def _activated(self, index: int) -> None:
        if not 0 <= index < len(self.lines):
            return
        line = self.lines[index]
        current = weights_choice.current_index(self.lines, self._spec)
        if line.kind == "pick":
            self.combo.setCurrentIndex(current)  # the file, once chosen, shows as a line
            self.browse()
        elif index == current:
            return
        elif line.kind == "published":
            self.published_chosen.emit(line.value)
        else:
            self.file_chosen.emit(line.value)

    def browse(self) -> None:
        """The file picker; a chosen file becomes the weights (undoable)."""
        path, _ = QFileDialog.getOpenFileName(self, "Pretrained weights", "", WEIGHT_FILES)
        if path:
            self.file_chosen.emit(path)

    def offer_file(self, sentence: str) -> None:
        """A download failed: say why in one sentence, and offer the file picker."""
        if ask_to_pick_file(self, sentence):
            self.browse()

    # ----------------------------------------------------------------- downloading

    @property
    def downloading(self) -> bool:
        return bool(self._downloading)

    def start_download(self, name: str) -> None:
        self._downloading = name
        self.progress.start(weights_choice.download_text(name))
        self.download_row.setVisible(True)
        self.cancel_button.setVisible(True)
        self.cancel_button.setEnabled(True)
        self.combo.setEnabled(False)
        self.freeze.setEnabled(False)

    def show_progress(self, stage: str, done: int, total: int) -> None:
        """A download's progress in bytes: the bar, then MB done and the time left."""
        self.progress.update_progress(stage, done, total)
        left = self.progress.seconds_left()
        self.progress.label.setText(weights_choice.bytes_text(self._downloading, done, total, left))

    def end_download(self) -> None:
        self._downloading = ""
        self.progress.finish()
        self.cancel_button.setVisible(False)
        self.download_row.setVisible(False)
        self.combo.setEnabled(True)
        self.show_spec(self._spec)
