"""The Tune panel's learning-rate box: range-test fields, the loss chart, and a rate to use.

After a test the picked rate starts at the suggestion, rounded to two significant digits; a
click on the chart moves it to the nearest nice rate (1, 1.5, 2, 3, 4, 5, 6 or 8 × 10^k).
The button applies exactly the number it shows, so "Use 3.2e-3" never sets 0.0031622776.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QPushButton, QSpinBox, QWidget

from cnn_lab.app.widgets.lr_curve_chart import LRCurveChart, format_rate, round_rate, snap_rate
from cnn_lab.app.widgets.rate_box import RateBox
from cnn_lab.app.widgets.tuner_section import TunerSection, note_label

ABOUT = (
    "LR range test: trains a fresh copy of the model for a few steps while the learning rate "
    "rises exponentially from start to end, and records the loss. The suggestion is where "
    "the smoothed loss falls fastest, safely before it bottoms out and diverges. Costs as "
    "many training steps as Steps (seconds to a minute); the copy is thrown away afterwards."
)
EMPTY_TEXT = (
    "No range test yet.\nRun trains a few steps while raising the learning rate and draws "
    "loss against rate here; then click the chart to pick a rate."
)


class LRSection(TunerSection):
    """The learning-rate range test's fields, chart and "Use" button."""

    kind = "lr"

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Learning rate", ABOUT, parent)
        self.start_lr = RateBox(1e-6)
        self.end_lr = RateBox(1.0)
        self.steps = QSpinBox()
        self.steps.setRange(10, 2000)
        self.steps.setValue(100)
        self.add_field("From", self.start_lr, "The smallest rate tried (the first step).")
        self.add_field("to", self.end_lr, "The largest rate tried (the last step).")
        self.add_field(
            "Steps",
            self.steps,
            "Training steps in the test: more steps give a smoother curve and take longer.",
        )
        self.chart = LRCurveChart(EMPTY_TEXT)
        self.chart.picked.connect(self.pick)
        self.message = note_label(style="")  # the tuner's own sentence: full contrast
        self.message.setVisible(False)
        self.pick_hint = note_label()
        self.use_button = QPushButton()
        self.use_button.setVisible(False)
        self.use_button.setToolTip("Put this rate into the Hyperparameters; the test is not rerun.")
        self.use_button.clicked.connect(self._use)
        use_row = QHBoxLayout()
        use_row.addWidget(self.pick_hint, 1)
        use_row.addWidget(self.use_button, 0, Qt.AlignmentFlag.AlignRight)
        self.body.addWidget(self.chart, 1)
        self.body.addWidget(self.message)
        self.body.addLayout(use_row)
        self.picked_lr: float | None = None
        self.result: dict[str, Any] | None = None

    def options(self) -> dict[str, Any] | None:
        start, end = self.start_lr.value(), self.end_lr.value()
        if start >= end:
            self.show_problem(
                f"The test needs a start rate below its end rate "
                f"(got {format_rate(start)} to {format_rate(end)})."
            )
            return None
        return {"start_lr": start, "end_lr": end, "steps": self.steps.value()}

    def _show_result(self, result: dict[str, Any]) -> None:
        self.result = result
        suggestion = result.get("suggestion")
        self.chart.set_result(
            result.get("lrs") or [],
            result.get("losses") or [],
            result.get("smoothed") or [],
            suggestion,
        )
        if not result.get("lrs"):
            self.chart.empty.setText("The test measured no points: see below.")
        message = result.get("message") or ""
        self.message.setText(message[:1].upper() + message[1:])  # the CLI writes it mid-line
        self.message.setVisible(bool(message))
        if suggestion is not None:  # its own line marks it: no second marker on top
            self._offer(round_rate(suggestion), marker=False)
        else:
            self.picked_lr = None
            self.chart.set_pick(None)
            self.use_button.setVisible(False)
            self.pick_hint.setText(
                "No clear suggestion: click the chart where the loss falls fastest to pick a rate."
                if self.chart.has_data
                else ""
            )

    def pick(self, rate: float) -> None:
        """Offer the nice rate nearest ``rate`` (a click: inside the tested range)."""
        self._offer(snap_rate(self.chart.clamp(rate)))

    def _offer(self, rate: float, *, marker: bool = True) -> None:
        self.picked_lr = rate
        self.chart.set_pick(rate if marker else None)
        self.use_button.setText(f"Use {format_rate(rate)} as the learning rate")
        self.use_button.setVisible(True)
        self.pick_hint.setText("Click the chart to pick another rate.")

    def _use(self) -> None:
        if self.picked_lr is not None:
            self.apply_requested.emit({"lr": self.picked_lr})
