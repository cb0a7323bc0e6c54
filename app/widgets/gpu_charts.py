"""Per-GPU charts (utilisation, memory, temperature, power), one curve per GPU.

They fill from the ``gpu{i}.<metric>`` keys of system samples, so they draw whatever GPUs a
run saw, live or stored, even on a machine that has no GPU now. Where the machine has no
NVIDIA driver and the run has no GPU samples, the area says so in one sentence instead of
showing empty axes. A GPU that stops answering simply stops appearing in the samples: its
curves end there and a line says when; nothing else changes.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QGridLayout, QVBoxLayout, QWidget

from cnn_lab.app.widgets.charts import DENSE_WIDTH, PALETTE, LiveChart
from cnn_lab.app.widgets.plain_label import plain_label

NO_GPU_SUFFIX = "The CPU and memory figures below are what this run can show."
GPU_KEY = re.compile(r"^gpu(\d+)\.(\w+)$")
MIB_PER_GIB = 1024.0


@dataclass(frozen=True)
class GpuCurve:
    """Where one NVML metric is drawn: which chart, the curve's suffix, its look and unit."""

    chart: str
    suffix: str = ""
    dashed: bool = False
    scale: float = 1.0


# NVML metric (the part after "gpu{i}.") -> its curve; metrics not listed are not charted
GPU_CURVES: dict[str, GpuCurve] = {
    "util_percent": GpuCurve("util_chart"),
    "mem_used_mb": GpuCurve("memory_chart", " used", scale=1 / MIB_PER_GIB),
    "mem_total_mb": GpuCurve("memory_chart", " total", dashed=True, scale=1 / MIB_PER_GIB),
    "temp_c": GpuCurve("temp_chart"),
    "power_w": GpuCurve("power_chart"),
    "power_limit_w": GpuCurve("power_chart", " limit", dashed=True),
}

# NVML clocks-event ("throttle") reason bits worth a word; idle and app clocks are not news
THROTTLE_REASONS: dict[int, str] = {
    0x4: "power cap",
    0x8: "hardware slowdown",
    0x20: "thermal (software)",
    0x40: "thermal (hardware)",
    0x80: "power brake",
}


def throttle_text(bits: int) -> str:
    """The throttle reasons of a bitmask, as words ("" when nothing slows the clocks)."""
    return ", ".join(name for bit, name in THROTTLE_REASONS.items() if bits & bit)


def gpu_curve_name(index: int, metric: str) -> str:
    """The legend name of a GPU metric's curve, e.g. ``"GPU 1 limit"``."""
    return f"GPU {index}{GPU_CURVES[metric].suffix}"


Sample = tuple[float, dict[str, float]]


class GpuCharts(QWidget):
    """Four charts of every GPU seen in the samples, or one sentence when there is none."""

    showing_changed = Signal(bool)
    """True when the charts appear, False when the sentence replaces them."""

    def __init__(
        self, no_gpu_message: str, *, machine_has_gpu: bool, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.machine_has_gpu = machine_has_gpu
        self.util_chart = LiveChart("GPU utilisation", x_label="seconds", y_label="%")
        self.memory_chart = LiveChart("GPU memory", x_label="seconds", y_label="GiB")
        self.temp_chart = LiveChart("GPU temperature", x_label="seconds", y_label="°C")
        self.power_chart = LiveChart("GPU power", x_label="seconds", y_label="W")
        self.util_chart.plot.setYRange(0, 100)
        self.grid_widget = QWidget()
        grid = QGridLayout(self.grid_widget)
        grid.setContentsMargins(0, 0, 0, 0)
        for i, chart in enumerate(self.charts()):
            chart.setMinimumHeight(160)
            grid.addWidget(chart, i // 2, i % 2)

        self.message_label = plain_label(f"{no_gpu_message} {NO_GPU_SUFFIX}")
        self.message_label.setObjectName("no-gpu-message")
        self.message_label.setStyleSheet("padding: 8px 4px;")
        self.status_label = plain_label()
        self.status_label.setStyleSheet("color: palette(mid);")

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.message_label)
        layout.addWidget(self.status_label)
        layout.addWidget(self.grid_widget, 1)
        self._showing = False
        self._seen: dict[int, float] = {}  # GPU index -> x of its latest sample
        self._stopped: dict[int, float] = {}  # GPU index -> x where it stopped answering
        self._details: dict[int, str] = {}
        self.reset()

    def charts(self) -> list[LiveChart]:
        return [self.util_chart, self.memory_chart, self.temp_chart, self.power_chart]

    def reset(self) -> None:
        """Empty charts; shown if this machine has a GPU, else the sentence."""
        for chart in self.charts():
            chart.clear()
        self._seen.clear()
        self._stopped.clear()
        self._details.clear()
        self.status_label.setText("")
        self.status_label.setVisible(False)
        self._show_charts(self.machine_has_gpu)

    @property
    def showing_charts(self) -> bool:
        return self._showing

    @property
    def message(self) -> str:
        """The sentence shown instead of the charts ("" while the charts are shown)."""
        return "" if self.showing_charts else self.message_label.text()

    def gpu_indices(self) -> list[int]:
        """The GPUs seen so far, in index order."""
        return sorted(self._seen)

    def stopped_gpus(self) -> list[int]:
        """GPUs that answered once and then stopped appearing in the samples."""
        return sorted(self._stopped)

    def _show_charts(self, show: bool) -> None:
        """Charts, or the sentence alone (so the area shrinks to one line of text)."""
        if show == self._showing and self.grid_widget.isVisibleTo(self) == show:
            return
        self._showing = show
        self.grid_widget.setVisible(show)
        self.message_label.setVisible(not show)
        self.showing_changed.emit(show)

    # ------------------------------------------------------------------ data

    def add_samples(self, samples: Sequence[Sample]) -> None:
        """Append a batch of ``(x, values)`` samples; each chart redraws once."""
        batches: dict[str, dict[str, tuple[list[float], list[float]]]] = defaultdict(
            lambda: defaultdict(lambda: ([], []))
        )
        for x, values in samples:
            present = self._add_one(x, values, batches)
            self._note_stopped(x, present, values)
        if not batches:
            return
        self._show_charts(True)
        for chart_name, batch in batches.items():
            getattr(self, chart_name).append_batch(batch)
        self._update_status()

    def _add_one(
        self,
        x: float,
        values: dict[str, float],
        batches: dict[str, dict[str, tuple[list[float], list[float]]]],
    ) -> set[int]:
        present: set[int] = set()
        for key, value in values.items():
            match = GPU_KEY.match(key)
            if match is None:
                continue
            index, metric = int(match.group(1)), match.group(2)
            present.add(index)
            if metric == "throttle_reasons":
                self._details[index] = throttle_text(int(value))
            curve = GPU_CURVES.get(metric)
            if curve is None:
                continue
            name = gpu_curve_name(index, metric)
            chart: LiveChart = getattr(self, curve.chart)
            if name not in chart.curve_names():
                color = PALETTE[index % len(PALETTE)]
                chart.add_curve(name, color=color, dashed=curve.dashed, width=DENSE_WIDTH)
            xs, ys = batches[curve.chart][name]
            xs.append(x)
            ys.append(value * curve.scale)
        for index in present:
            self._seen[index] = x
            self._stopped.pop(index, None)  # answering again (it was only slow once)
        return present

    def _note_stopped(self, x: float, present: set[int], values: dict[str, float]) -> None:
        """A sample without a GPU that used to appear: it stopped answering at its last x."""
        if not values:
            return
        for index, last_x in self._seen.items():
            if index not in present and index not in self._stopped:
                self._stopped[index] = last_x

    def _update_status(self) -> None:
        parts = []
        for index in self.gpu_indices():
            if index in self._stopped:
                parts.append(
                    f"GPU {index} stopped answering at {self._stopped[index]:.0f} s; "
                    "its charts end there."
                )
            elif self._details.get(index):
                parts.append(f"GPU {index} clocks held back by: {self._details[index]}.")
        self.status_label.setText("  ".join(parts))
        self.status_label.setVisible(bool(parts))
