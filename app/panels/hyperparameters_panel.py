"""The Hyperparameters panel: the training recipe and the device."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from cnn_lab.app.state import AppState
from cnn_lab.engine.monitor.nvml import gpu_inventory
from cnn_lab.engine.specs import TrainSpec
from cnn_lab.engine.train.optimizers import optimizer_info, optimizer_names
from cnn_lab.engine.train.schedules import schedule_info, schedule_names


class HyperparametersPanel(QWidget):
    title = "Hyperparameters"

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        spec = state.train

        self.epochs = QSpinBox()
        self.epochs.setRange(1, 100_000)
        self.epochs.setValue(spec.epochs)
        self.batch_size = QSpinBox()
        self.batch_size.setRange(1, 65_536)
        self.batch_size.setValue(spec.batch_size)
        self.batch_size.setToolTip(
            "Images per step. Larger batches use the hardware better (more images per second) "
            "but need more memory and often a larger learning rate."
        )
        self.lr = QDoubleSpinBox()
        self.lr.setDecimals(6)
        self.lr.setRange(1e-6, 10.0)
        self.lr.setSingleStep(0.0005)
        self.lr.setValue(spec.lr)
        self.lr.setToolTip("Step size of the optimizer: too high diverges, too low crawls.")
        self.optimizer = QComboBox()
        for name in optimizer_names():
            self.optimizer.addItem(optimizer_info(name).label, name)
        self.optimizer.setCurrentIndex(max(self.optimizer.findData(spec.optimizer), 0))
        self.schedule = QComboBox()
        for name in schedule_names():
            self.schedule.addItem(schedule_info(name).label, name)
        self.schedule.setCurrentIndex(max(self.schedule.findData(spec.schedule), 0))
        self.schedule.setToolTip("How the learning rate changes over the run.")
        self.momentum = QDoubleSpinBox()
        self.momentum.setRange(0.0, 0.999)
        self.momentum.setSingleStep(0.05)
        self.momentum.setValue(spec.momentum)
        self.weight_decay = QDoubleSpinBox()
        self.weight_decay.setDecimals(6)
        self.weight_decay.setRange(0.0, 1.0)
        self.weight_decay.setSingleStep(0.0001)
        self.weight_decay.setValue(spec.weight_decay)
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.seed.setValue(spec.seed)

        inventory = gpu_inventory()
        self.device = QComboBox()
        self.device.addItem("Automatic (GPU if present)", "auto")
        self.device.addItem("CPU", "cpu")
        for gpu in inventory.gpus:
            self.device.addItem(f"cuda:{gpu.index}: {gpu.name}", f"cuda:{gpu.index}")
        self.channels_last = QCheckBox("Channels-last memory layout")
        self.channels_last.setChecked(spec.channels_last)
        self.channels_last.setToolTip(
            "Store images and weights as NHWC. Convolutions run faster this way on most CPUs and "
            "on tensor-core GPUs (see benchmarks/channels_last.py)."
        )
        self.gpu_status = QLabel(inventory.message)
        self.gpu_status.setWordWrap(True)

        self.form = QFormLayout()
        self.form.addRow("Epochs", self.epochs)
        self.form.addRow("Batch size", self.batch_size)
        self.form.addRow("Learning rate", self.lr)
        self.form.addRow("Optimizer", self.optimizer)
        self.form.addRow("Schedule", self.schedule)
        self.form.addRow("Momentum", self.momentum)
        self.form.addRow("Weight decay", self.weight_decay)
        self.form.addRow("Seed", self.seed)
        recipe = QGroupBox("Recipe")
        recipe.setLayout(self.form)
        device_form = QFormLayout()
        device_form.addRow("Device", self.device)
        device_form.addRow("", self.gpu_status)
        device_form.addRow("", self.channels_last)
        device_box = QGroupBox("Hardware")
        device_box.setLayout(device_form)
        for box in (recipe, device_box):
            box.setMaximumWidth(520)
        layout = QVBoxLayout(self)
        layout.addWidget(recipe)
        layout.addWidget(device_box)
        layout.addStretch(1)

        for spin in (self.epochs, self.batch_size, self.seed):
            spin.valueChanged.connect(self._push)
        for dspin in (self.lr, self.momentum, self.weight_decay):
            dspin.valueChanged.connect(self._push)
        self.optimizer.currentIndexChanged.connect(self._push)
        self.schedule.currentIndexChanged.connect(self._push)
        self.device.currentIndexChanged.connect(self._push)
        self.channels_last.toggled.connect(self._push)
        self._push()

    def _push(self) -> None:
        optimizer = self.optimizer.currentData()
        # Registry metadata decides which fields mean something for this optimizer.
        self.form.setRowVisible(self.momentum, optimizer_info(optimizer).uses_momentum)
        self.state.update(
            train=TrainSpec(
                epochs=self.epochs.value(),
                batch_size=self.batch_size.value(),
                lr=self.lr.value(),
                optimizer=optimizer,
                schedule=self.schedule.currentData(),
                momentum=self.momentum.value(),
                weight_decay=self.weight_decay.value(),
                device=self.device.currentData(),
                seed=self.seed.value(),
                channels_last=self.channels_last.isChecked(),
            )
        )


if __name__ == "__main__":
    from cnn_lab.app.panels._standalone import run_standalone

    raise SystemExit(run_standalone(HyperparametersPanel))
