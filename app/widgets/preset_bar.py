"""The Architecture panel's top rows: where the network starts from, and its weights.

"Start from" lists cnn-lab's presets, then torchvision's, then your own: custom layers, a
timm model (when timm is installed) and your own module, with the chosen one's description
under it; width, depth and dropout scale a preset (each disabled, with a tooltip saying why,
where the network cannot use it). The weights row (app/widgets/weights_row.py) picks random,
published or file weights and can freeze the backbone. The bar only reports what the person
asks for; the panel turns it into undoable edits and calls ``show_spec`` back.
"""

from __future__ import annotations

import contextlib

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QWidget,
)

from cnn_lab.app.models import network_sources as sources
from cnn_lab.app.widgets.weights_row import WeightsRow
from cnn_lab.engine.models.registry import Preset, all_presets
from cnn_lab.engine.specs import CUSTOM, ArchitectureSpec
from cnn_lab.engine.specs.architecture import MODULE, TIMM

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
SOURCES = (TIMM, MODULE)
"""Entries that open a dialog instead of choosing a network at once."""


class PresetBar(QWidget):
    """Preset, multipliers, Edit as layers / New empty network, undo/redo/save/load, weights."""

    preset_chosen = Signal(str)
    field_changed = Signal(str, object)  # "width" | "depth" | "dropout" | "freeze_backbone"
    source_requested = Signal(str)  # TIMM | MODULE: the panel opens its dialog

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
        if sources.timm_available():
            self._source_item(TIMM, sources.TIMM_TIP)
        self._source_item(MODULE, sources.MODULE_TIP)
        self._shown = ArchitectureSpec()
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
        self.weights = WeightsRow()
        self.freeze = self.weights.freeze
        self.input_label = QLabel()
        self.input_label.setStyleSheet("color: palette(placeholder-text);")
        self.input_label.setWordWrap(True)  # long on a narrow window: wrap, never widen it
        self._lay_out()
        self.preset.currentIndexChanged.connect(self._preset_changed)
        self.preset.activated.connect(self._activated)
        self.weights.freeze_toggled.connect(
            lambda on: self.field_changed.emit("freeze_backbone", on)
        )

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
        weights.addWidget(self.weights)
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

    def _source_item(self, kind: str, tip: str) -> None:
        self.preset.addItem("   " + sources.entry_text(ArchitectureSpec(), kind), kind)
        self.preset.setItemData(self.preset.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)

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
        if name in SOURCES:
            self.source_requested.emit(str(name))
        elif name is not None:
            self.preset_chosen.emit(str(name))

    def _activated(self, index: int) -> None:
        """Choosing the timm or module entry that is already current opens its dialog again."""
        name = self.preset.itemData(index)
        if name in SOURCES and name == self._shown.preset:
            self.source_requested.emit(str(name))

    def show_spec(self, spec: ArchitectureSpec, preset: Preset | None) -> None:
        """Show ``spec`` (``preset`` is its registry entry, None for custom or unknown)."""
        self._shown = spec
        widgets = [self.preset, *self.spins.values()]
        for widget in widgets:
            widget.blockSignals(True)
        for kind in SOURCES:
            index = self.preset.findData(kind)
            if index >= 0:
                self.preset.setItemText(index, "   " + sources.entry_text(spec, kind))
        self.preset.setCurrentIndex(self.preset.findData(spec.preset))
        for name, spin in self.spins.items():
            spin.setValue(getattr(spec, name))
        for widget in widgets:
            widget.blockSignals(False)
        self.description.setText(sources.description(spec, preset))
        usable = {
            "width": preset is not None and preset.supports_width,
            "depth": preset is not None and preset.supports_depth,
            "dropout": preset is not None or spec.preset == TIMM,
        }
        for name, spin in self.spins.items():
            spin.setEnabled(usable[name])
            why = "Custom networks are built as their layers say; add a layer instead."
            if spec.preset in SOURCES:
                why = f"A {spec.preset} network is built as its own code says."
            elif preset is not None and not usable[name]:
                why = f"{preset.name} {CANNOT[name]}"
            spin.setToolTip(TIPS[name] if usable[name] else why)
        editable = preset is not None and preset.editable
        self.edit_layers_button.setEnabled(editable)
        self.edit_layers_button.setToolTip(
            "Turn this preset into custom layers you can edit (undoable)."
            if editable
            else "Only cnn-lab presets are written as layers; torchvision's are built by code."
        )
        self.weights.show_spec(spec)

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
