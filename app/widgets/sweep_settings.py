"""The Sweep panel's settings under its grid: strategy, pruner, trial budget, and the CPU."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QCheckBox, QComboBox, QFormLayout, QSpinBox, QWidget

STRATEGY_HELP = (
    "How the trials' values are chosen. grid: every combination of the values listed (the "
    "count is their product). random: a random draw of them for the number of trials set, "
    "often as good as a grid for far fewer trials. tpe: Optuna's TPE, which draws new trials "
    "near the best so far, and usually finds a good value in the fewest trials."
)


class SweepSettings(QWidget):
    """The settings as a form; ``changed`` fires on any edit (the estimate follows them)."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.strategy = QComboBox()
        self.strategy.addItems(["grid", "random", "tpe"])
        self.strategy.setToolTip(STRATEGY_HELP)
        self.pruner = QComboBox()
        self.pruner.addItems(["none", "median", "halving", "hyperband"])
        self.pruner.setToolTip("Stop hopeless trials early (judged on validation each epoch)")
        self.trials = QSpinBox()
        self.trials.setRange(0, 100_000)
        self.trials.setSpecialValueText("whole grid")
        self.trials.setToolTip("How many trials to run; a grid runs all its points at 0")
        self.cpu_too = QCheckBox("Also train one trial on the CPU")
        self.cpu_too.setToolTip(
            "Trials train at once, one per GPU (more when the memory estimate says they "
            "fit). This adds one on the CPU: more trials an hour, but it takes cores from "
            "the GPU trials' data loading. Without a GPU the trials train on the CPU anyway."
        )
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("Strategy", self.strategy)
        form.addRow("Pruner", self.pruner)
        form.addRow("Trials", self.trials)
        form.addRow("", self.cpu_too)
        for signal in (
            self.strategy.currentTextChanged,
            self.pruner.currentTextChanged,
            self.trials.valueChanged,
            self.cpu_too.toggled,
        ):
            signal.connect(lambda *_: self.changed.emit())

    def values(self) -> dict[str, str | int | None]:
        """The SearchSpec fields the form sets: strategy, pruner, trials (None: whole grid)."""
        return {
            "strategy": self.strategy.currentText(),
            "pruner": self.pruner.currentText(),
            "trials": self.trials.value() or None,
        }
