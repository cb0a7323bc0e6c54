"""CPU and memory charts of a run, from its system samples (psutil keys).

The curves are chosen to answer "is the host the bottleneck?": all cores together, the
busiest single core (a Python thread pinned at 100 % hides in a 16-core average), and the
run's own process tree (the job and its loader workers), all in percent of the whole CPU.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from PySide6.QtWidgets import QBoxLayout, QVBoxLayout, QWidget

from cnn_lab.app.widgets.charts import DENSE_WIDTH, PALETTE, LiveChart
from cnn_lab.app.widgets.plain_label import plain_label

CORE_KEY = re.compile(r"^cpu\.core\d+\.percent$")
MIB_PER_GIB = 1024.0

Values = dict[str, float]
Sample = tuple[float, Values]


def core_percents(values: Values) -> list[float]:
    return [v for k, v in values.items() if CORE_KEY.match(k)]


def busiest_core(values: Values) -> float | None:
    cores = core_percents(values)
    return max(cores) if cores else None


def run_cpu_share(values: Values) -> float | None:
    """The run's processes in percent of all cores (psutil reports percent of one core)."""
    cores = len(core_percents(values))
    proc = values.get("proc.cpu_percent")
    return None if proc is None or not cores else proc / cores


def ram_total_gib(values: Values) -> float | None:
    used, percent = values.get("ram.used_mb"), values.get("ram.percent")
    if used is None or not percent:
        return None
    return used / (percent / 100.0) / MIB_PER_GIB


def _gib(key: str) -> Callable[[Values], float | None]:
    def read(values: Values) -> float | None:
        value = values.get(key)
        return None if value is None else value / MIB_PER_GIB

    return read


@dataclass(frozen=True)
class SystemCurve:
    """One curve: which chart, its legend name, how to read it from a sample, and its look."""

    chart: str
    name: str
    read: Callable[[Values], float | None]
    color: str
    dashed: bool = False
    tooltip: str = ""


SYSTEM_CURVES: tuple[SystemCurve, ...] = (
    SystemCurve("cpu_chart", "all cores", lambda v: v.get("cpu.percent"), PALETTE[0]),
    SystemCurve("cpu_chart", "busiest core", busiest_core, PALETTE[3]),
    SystemCurve("cpu_chart", "this run", run_cpu_share, PALETTE[2]),
    SystemCurve("memory_chart", "RAM used", _gib("ram.used_mb"), PALETTE[0]),
    SystemCurve("memory_chart", "RAM total", ram_total_gib, PALETTE[0], dashed=True),
    SystemCurve("memory_chart", "this run", _gib("proc.rss_mb"), PALETTE[2]),
)
"""Every curve the CPU and memory charts draw; the keys a sample lacks simply add no point."""

# Which samples' keys a stored run must load to draw SYSTEM_CURVES (cores are found apart).
SYSTEM_KEYS = ("cpu.percent", "ram.used_mb", "ram.percent", "proc.cpu_percent", "proc.rss_mb")


def summary_text(values: Values) -> str:
    """The latest readings in one line, so the figures read without hovering a chart."""
    parts = []
    if "cpu.percent" in values:
        parts.append(f"CPU {values['cpu.percent']:.0f}%")
    busiest = busiest_core(values)
    if busiest is not None:
        parts.append(f"busiest core {busiest:.0f}%")
    share = run_cpu_share(values)
    if share is not None:
        parts.append(f"this run {share:.0f}% of the CPU")
    total = ram_total_gib(values)
    if "ram.used_mb" in values:
        used = values["ram.used_mb"] / MIB_PER_GIB
        parts.append(f"RAM {used:.1f}" + (f" / {total:.1f} GiB" if total else " GiB"))
    if "proc.rss_mb" in values:
        parts.append(f"run {values['proc.rss_mb'] / MIB_PER_GIB:.2f} GiB")
    return " · ".join(parts)


class SystemCharts(QWidget):
    """The CPU chart and the memory chart side by side, with the latest figures above."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.cpu_chart = LiveChart("CPU", x_label="seconds", y_label="% of all cores")
        self.memory_chart = LiveChart("Memory", x_label="seconds", y_label="GiB")
        self.cpu_chart.plot.setYRange(0, 100)
        self.summary_label = plain_label()
        self.summary_label.setToolTip(
            "busiest core: the most loaded single core (one busy Python thread shows here).\n"
            "this run: the training process and its loader workers."
        )
        self._row = QBoxLayout(QBoxLayout.Direction.LeftToRight)
        self._row.setContentsMargins(0, 0, 0, 0)
        for chart in self.charts():
            chart.setMinimumHeight(160)
            self._row.addWidget(chart)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.summary_label)
        layout.addLayout(self._row, 1)

    def set_stacked(self, stacked: bool) -> None:
        """CPU above memory (a column beside the GPU charts) or side by side (no GPU)."""
        self._row.setDirection(
            QBoxLayout.Direction.TopToBottom if stacked else QBoxLayout.Direction.LeftToRight
        )

    def charts(self) -> list[LiveChart]:
        return [self.cpu_chart, self.memory_chart]

    def reset(self) -> None:
        for chart in self.charts():
            chart.clear()
        self.summary_label.setText("")

    def add_samples(self, samples: Sequence[Sample]) -> None:
        """Append a batch of ``(x, values)`` samples; each chart redraws once."""
        batches: dict[str, dict[str, tuple[list[float], list[float]]]] = defaultdict(dict)
        for x, values in samples:
            for curve in SYSTEM_CURVES:
                y = curve.read(values)
                if y is None:
                    continue
                chart: LiveChart = getattr(self, curve.chart)
                if curve.name not in chart.curve_names():
                    chart.add_curve(
                        curve.name, color=curve.color, dashed=curve.dashed, width=DENSE_WIDTH
                    )
                xs, ys = batches[curve.chart].setdefault(curve.name, ([], []))
                xs.append(x)
                ys.append(y)
        for chart_name, batch in batches.items():
            getattr(self, chart_name).append_batch(batch)
        if samples:
            self.summary_label.setText(summary_text(samples[-1][1]))
