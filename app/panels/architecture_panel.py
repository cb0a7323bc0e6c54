"""The Architecture panel: choose a preset network and scale it."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from cnn_lab.app.state import AppState
from cnn_lab.engine.models import get_preset, preset_names
from cnn_lab.engine.specs import ArchitectureSpec


class ArchitecturePanel(QWidget):
    title = "Architecture"

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.preset = QComboBox()
        for name in preset_names():
            self.preset.addItem(name, name)
        self.preset.setCurrentIndex(max(self.preset.findData(state.architecture.preset), 0))
        self.description = QLabel()
        self.description.setWordWrap(True)
        self.width_multiplier = QDoubleSpinBox()
        self.width_multiplier.setRange(0.25, 8.0)
        self.width_multiplier.setSingleStep(0.25)
        self.width_multiplier.setValue(state.architecture.width)
        self.width_multiplier.setToolTip(
            "Scales every layer's channels. Wider nets learn more and train slower "
            "(compute grows with the square of the width)."
        )
        self.dropout = QDoubleSpinBox()
        self.dropout.setRange(0.0, 0.9)
        self.dropout.setSingleStep(0.05)
        self.dropout.setValue(state.architecture.dropout)
        self.dropout.setToolTip("Dropout before the classifier: fights overfitting on small data.")

        form = QFormLayout()
        form.addRow("Preset", self.preset)
        form.addRow("", self.description)
        form.addRow("Width multiplier", self.width_multiplier)
        form.addRow("Dropout", self.dropout)
        box = QGroupBox("Network")
        box.setLayout(form)
        box.setMaximumWidth(520)
        layout = QVBoxLayout(self)
        layout.addWidget(box)
        layout.addStretch(1)

        self.preset.currentIndexChanged.connect(self._push)
        self.width_multiplier.valueChanged.connect(self._push)
        self.dropout.valueChanged.connect(self._push)
        self._push()

    def _push(self) -> None:
        name = self.preset.currentData()
        self.description.setText(get_preset(name).description)
        self.state.update(
            architecture=ArchitectureSpec(
                preset=name,
                width=round(self.width_multiplier.value(), 4),
                dropout=round(self.dropout.value(), 4),
            )
        )


if __name__ == "__main__":
    from cnn_lab.app.panels._standalone import run_standalone

    raise SystemExit(run_standalone(ArchitecturePanel))
