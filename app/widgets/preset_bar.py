"""The Architecture panel's top rows: where the network starts from, and its weights.

"Start from" lists cnn-lab's presets, then torchvision's, then custom layers, with the
chosen one's description under it; width, depth and dropout scale a preset (each disabled,
with a tooltip saying why, where the preset cannot use it). The weights row picks a
pretrained file (never downloaded) and can freeze the backbone. The bar only reports what
the person asks for; the panel turns it into undoable edits and calls ``show_spec`` back.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QWidget,
)

from cnn_lab.engine.models.registry import Preset, all_presets
from cnn_lab.engine.specs import CUSTOM, ArchitectureSpec

WEIGHT_FILES = "Weights (*.safetensors *.pt *.pth);;All files (*)"
TIPS = {
    "width": "Scales every layer's channels. Wider nets learn more and train slower "
    "(compute grows with the square of the width).",
    "depth": "Scales how many times the preset repeats its blocks: deeper nets can reach "
    "higher accuracy and train slower, in proportion to the depth.",
    "dropout": "Dropout before the classifier: fights overfitting on small data, so often "
    "better validation accuracy; no speed cost.",
    "preset": "Where the network starts. cnn-lab's presets are small and fast on small "
    "images; torchvision's are larger, slower and made for large images (most accurate "
    "with pretrained weights); custom layers are your own. Hover an entry for its "
    "description.",
    "pretrained": "Weights to start from instead of random ones: usually much higher accuracy "
    "on small datasets and far fewer epochs to get there. Empty: random initial weights.",
}

CANNOT = {
    "width": "cannot be scaled in width.",
    "depth": "has no repeated blocks to scale, so its depth stays 1.",
    "dropout": "has no dropout setting.",
}


class PresetBar(QWidget):
    """Preset, multipliers, Edit as layers / New empty network, undo/redo/save/load, weights."""

    preset_chosen = Signal(str)
    field_changed = Signal(str, object)  # "width" | "depth" | "dropout" | "freeze_backbone"
    pretrained_chosen = Signal(str)  # "" clears

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.preset = QComboBox()
        self.preset.setMinimumWidth(210)
        self.preset.setMaxVisibleItems(30)
        self.preset.setToolTip(TIPS["preset"])
        for family, title in (("cnn-lab", "cnn-lab presets"), ("torchvision", "torchvision")):
            self._header(title)
            for p in all_presets():
                if p.family == family:
                    self.preset.addItem(f"   {p.name}", p.name)
                    self.preset.setItemData(
                        self.preset.count() - 1, p.description, Qt.ItemDataRole.ToolTipRole
                    )
        self._header("Your own")
        self.preset.addItem("   Custom layers", CUSTOM)
        self.description = QLabel()
        self.description.setWordWrap(True)
        self.description.setStyleSheet("color: palette(placeholder-text);")
        self.spins = {
            "width": self._spin("width", 0.25, 8.0, 0.25),
            "depth": self._spin("depth", 0.25, 4.0, 0.25),
            "dropout": self._spin("dropout", 0.0, 0.9, 0.05),
        }
        self.edit_layers_button = QPushButton("Edit as layers")
        self.new_button = QPushButton("New empty network")
        self.new_button.setToolTip("Start a custom network with no layers (undo brings it back).")
        self.undo_button, self.redo_button = QPushButton("Undo"), QPushButton("Redo")
        self.save_button, self.load_button = QPushButton("Save…"), QPushButton("Load…")
        self.save_button.setToolTip("Save this architecture as a JSON file.")
        self.load_button.setToolTip("Load an architecture from a JSON file (undoable).")
        self.pretrained = QLineEdit()
        self.pretrained.setReadOnly(True)
        self.pretrained.setPlaceholderText("none (random initial weights)")
        self.pretrained.setMinimumWidth(220)
        self.pretrained.setToolTip(TIPS["pretrained"])
        self.browse_button, self.clear_button = QPushButton("Choose file…"), QPushButton("Clear")
        self.browse_button.setToolTip(
            "Pick a weights file (.safetensors, .pt or .pth). Nothing is ever downloaded."
        )
        self.freeze = QCheckBox("Freeze backbone")
        self.freeze.setToolTip("Train only the classifier and keep the pretrained weights fixed.")
        self.input_label = QLabel()
        self.input_label.setStyleSheet("color: palette(placeholder-text);")
        self.input_label.setWordWrap(True)  # long on a narrow window: wrap, never widen it
        self._lay_out()
        self.preset.currentIndexChanged.connect(self._preset_changed)
        self.browse_button.clicked.connect(self._browse)
        self.clear_button.clicked.connect(lambda: self.pretrained_chosen.emit(""))
        self.freeze.toggled.connect(lambda on: self.field_changed.emit("freeze_backbone", on))

    def _lay_out(self) -> None:
        row = QHBoxLayout()
        for name, spin in self.spins.items():
            row.addSpacing(6)
            row.addWidget(QLabel(name.capitalize()))
            row.addWidget(spin)
        row.addStretch(1)
        # The buttons take a row of their own: beside the preset and the multipliers they
        # made the window at least 1,180 px wide.
        buttons = QHBoxLayout()
        buttons.addWidget(self.edit_layers_button)
        buttons.addWidget(self.new_button)
        buttons.addStretch(1)
        for button in (self.undo_button, self.redo_button, self.save_button, self.load_button):
            buttons.addWidget(button)
        weights = QHBoxLayout()
        for widget in (self.pretrained, self.browse_button, self.clear_button, self.freeze):
            weights.addWidget(widget)
        weights.addSpacing(16)
        weights.addWidget(self.input_label, 1)
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setHorizontalSpacing(8)
        grid.addWidget(QLabel("Start from"), 0, 0)
        grid.addWidget(self.preset, 0, 1)
        grid.addLayout(row, 0, 2)
        grid.addLayout(buttons, 1, 1, 1, 2)
        grid.addWidget(self.description, 2, 1, 1, 2)
        grid.addWidget(QLabel("Weights"), 3, 0)
        grid.addLayout(weights, 3, 1, 1, 2)
        grid.setColumnStretch(2, 1)

    def _header(self, title: str) -> None:
        self.preset.addItem(title)
        item = self.preset.model().item(self.preset.count() - 1)
        item.setEnabled(False)
        font = item.font()
        font.setBold(True)
        item.setFont(font)

    def _spin(self, name: str, low: float, high: float, step: float) -> QDoubleSpinBox:
        spin = QDoubleSpinBox()
        spin.setRange(low, high)
        spin.setSingleStep(step)
        spin.setKeyboardTracking(False)
        spin.setToolTip(TIPS[name])
        spin.valueChanged.connect(lambda v: self.field_changed.emit(name, round(v, 4)))
        return spin

    def _preset_changed(self) -> None:
        name = self.preset.currentData()
        if name is not None:
            self.preset_chosen.emit(str(name))

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Pretrained weights", "", WEIGHT_FILES)
        if path:
            self.pretrained_chosen.emit(path)

    def show_spec(self, spec: ArchitectureSpec, preset: Preset | None) -> None:
        """Show ``spec`` (``preset`` is its registry entry, None for custom or unknown)."""
        widgets = [self.preset, self.freeze, *self.spins.values()]
        for widget in widgets:
            widget.blockSignals(True)
        self.preset.setCurrentIndex(self.preset.findData(spec.preset))
        for name, spin in self.spins.items():
            spin.setValue(getattr(spec, name))
        self.freeze.setChecked(spec.freeze_backbone)
        for widget in widgets:
            widget.blockSignals(False)
        if spec.is_custom:
            text = "Your own network, built from the layers below."
        else:
            text = preset.description if preset else f"There is no preset {spec.preset!r}."
        self.description.setText(text)
        usable = {
            "width": preset is not None and preset.supports_width,
            "depth": preset is not None and preset.supports_depth,
            "dropout": preset is not None,
        }
        for name, spin in self.spins.items():
            spin.setEnabled(usable[name])
            why = "Custom networks are built as their layers say; add a layer instead."
            if preset is not None and not usable[name]:
                why = f"{preset.name} {CANNOT[name]}"
            spin.setToolTip(TIPS[name] if usable[name] else why)
        editable = preset is not None and preset.editable
        self.edit_layers_button.setEnabled(editable)
        self.edit_layers_button.setToolTip(
            "Turn this preset into custom layers you can edit (undoable)."
            if editable
            else "Only cnn-lab presets are written as layers; torchvision's are built by code."
        )
        self.pretrained.setText(Path(spec.pretrained).name if spec.pretrained else "")
        self.pretrained.setToolTip(
            f"{spec.pretrained}\n\n{TIPS['pretrained']}" if spec.pretrained else TIPS["pretrained"]
        )
        self.clear_button.setEnabled(bool(spec.pretrained))
        self.freeze.setEnabled(bool(spec.pretrained))

    def set_undo_text(self, text: str) -> None:
        self._tip(self.undo_button, f"Undo {text} (Ctrl+Z)" if text else "Nothing to undo")

    def set_redo_text(self, text: str) -> None:
        self._tip(self.redo_button, f"Redo {text} (Ctrl+Y)" if text else "Nothing to redo")

    @staticmethod
    def _tip(button: QPushButton, text: str) -> None:
        # RuntimeError: the undo stack clears itself (and says so) while the window is torn
        # down at exit, possibly after the button is gone; nothing is left to show the tip.
        with contextlib.suppress(RuntimeError):
            button.setToolTip(text)

    def show_input(self, text: str) -> None:
        self.input_label.setText(text)
