"""The Tune panel's batch-size box: the largest batch that fits, how it was found, and a button.

On a GPU the finder probes real training steps and bisects on out-of-memory; on the CPU it
divides a memory budget by the architecture's memory estimate. The headline says which, so
"512" is never read as a measurement when it was an estimate.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QPushButton, QSpinBox, QWidget

from cnn_lab.app.widgets.tuner_section import (
    ADVICE_STYLE,
    HEADLINE_STYLE,
    TunerSection,
    note_label,
)

ABOUT = (
    "Batch-size finder: on a GPU it trains a step or two with ever larger batches, doubling "
    "until one runs out of memory, then bisects between the last that fit and the first that "
    "did not. On the CPU it divides a memory budget by the architecture's memory estimate "
    "per image instead. Costs a few training steps per probe (seconds on a GPU)."
)
EMPTY_TEXT = "No search yet: Run finds the largest batch that fits in the device's memory."
LR_WARNING = "A larger batch may want a larger learning rate: rerun the LR test after using it."


def _gib(n: int | None) -> str:
    return f"{n / 1024**3:.1f} GiB" if n else "?"


def _mib(n: int | None) -> str:
    return f"{n / 1024**2:.1f} MiB" if n else "?"


def headline(result: dict[str, Any]) -> str:
    """ "Largest batch that fits: 512 (probed on cuda:0)", or why there is none."""
    device = result.get("device") or "the device"
    batch = result.get("max_batch")
    if result.get("method") == "budget":
        how = f"within a memory budget of {_gib(result.get('budget_bytes'))} on {device}"
    else:
        how = f"probed on {device}"
    if batch is None:
        return f"No batch fits ({how})."
    return f"Largest batch that fits: {batch} ({how})"


def probe_line(probe: dict[str, Any]) -> str:
    """One probe, as listed after "Tried": "batch 512: fits (0.41 s, 1.2 GiB)"."""
    peak = probe.get("peak_bytes")
    verdict = "fits" if probe.get("ok") else "out of memory" if peak is None else "over budget"
    costs = []
    if isinstance(probe.get("seconds"), (int, float)):
        costs.append(f"{probe['seconds']:.2f} s")
    if peak:
        costs.append(_gib(peak) if peak >= 1024**3 else _mib(peak))
    return f"batch {probe.get('batch')}: {verdict}" + (f" ({', '.join(costs)})" if costs else "")


class BatchSizeSection(TunerSection):
    """The batch-size finder's limit field, result, probes and "Use batch N" button."""

    kind = "batch-size"

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Batch size", ABOUT, parent)
        self.limit = QSpinBox()
        self.limit.setRange(1, 65_536)
        self.limit.setValue(4096)
        self.add_field(
            "Up to",
            self.limit,
            "The largest batch worth trying: the search stops here even if more would fit.",
        )
        self.headline = note_label(EMPTY_TEXT)
        self.details = note_label(style="")  # the tuner's own sentence: full contrast
        self.probes = note_label()
        self.probes.setVisible(False)
        self.probes.setToolTip("Each batch size tried, in the order tried.")
        self.use_button = QPushButton()
        self.use_button.setVisible(False)
        self.use_button.setToolTip("Put this batch size into the Hyperparameters.")
        self.use_button.clicked.connect(self._use)
        self.warning = note_label(LR_WARNING, ADVICE_STYLE)
        self.warning.setVisible(False)
        use_row = QHBoxLayout()
        use_row.addWidget(self.warning, 1)
        use_row.addWidget(self.use_button, 0, Qt.AlignmentFlag.AlignRight)
        self.body.addWidget(self.headline)
        self.body.addWidget(self.details)
        self.body.addWidget(self.probes)
        self.body.addLayout(use_row)
        self.max_batch: int | None = None

    def options(self) -> dict[str, Any] | None:
        return {"limit": self.limit.value()}

    def _show_result(self, result: dict[str, Any]) -> None:
        self.max_batch = result.get("max_batch")
        found = self.max_batch is not None
        self.headline.setText(headline(result))
        self.headline.setStyleSheet(HEADLINE_STYLE if found else "")
        self.details.setText(" ".join(filter(None, [result.get("message"), _estimate(result)])))
        probes = [probe_line(p) for p in result.get("probes") or []]
        self.probes.setText("Tried " + "; ".join(probes) + "." if probes else "")
        self.probes.setVisible(bool(probes))
        self.use_button.setText(f"Use batch {self.max_batch}")
        self.use_button.setVisible(found)
        self.warning.setVisible(found)

    def _use(self) -> None:
        if self.max_batch is not None:
            self.apply_requested.emit({"batch_size": self.max_batch})


def _estimate(result: dict[str, Any]) -> str:
    """What the architecture's memory estimate said, when the finder used one."""
    estimate, per_image = result.get("estimate_batch"), result.get("per_image_bytes")
    if estimate is None and per_image is None:
        return ""
    parts = []
    if per_image:
        parts.append(f"about {_mib(per_image)} per image")
    if estimate is not None:
        parts.append(f"room for about {estimate}")
    return "The architecture's memory estimate: " + ", ".join(parts) + "."
