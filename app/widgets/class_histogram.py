"""A bar chart of images per class, class names along the bottom (pyqtgraph)."""

from __future__ import annotations

import math
from collections.abc import Mapping

import pyqtgraph as pg
from PySide6.QtGui import QFontMetrics, QResizeEvent
from PySide6.QtWidgets import QVBoxLayout, QWidget

from cnn_lab.app.widgets.charts import PALETTE

BAR_COLOUR = PALETTE[0]
EMPTY_COLOUR = PALETTE[3]
"""Classes with no usable image get a small red stub, so they do not vanish from the chart."""
MAX_TICKS = 24
"""More names than this overlap; then every k-th class is named (all are in the tooltip)."""
MAX_NAME = 12


class ClassHistogram(QWidget):
    def __init__(self, title: str = "Images per class", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.plot = pg.PlotWidget(title=title or None)
        self.plot.setBackground(None)
        self.plot.setMenuEnabled(False)
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.hideButtons()
        item = self.plot.getPlotItem()
        item.showGrid(y=True, alpha=0.2)
        item.setLabel("left", "images")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot)
        self.bars: pg.BarGraphItem | None = None
        self._names: list[str] = []
        self._heights: list[int] = []

    def set_counts(self, counts: Mapping[str, int]) -> None:
        """Draw one bar per class, in the order given."""
        self.clear()
        self._names = list(counts)
        self._heights = [int(n) for n in counts.values()]
        if not self._names:
            return
        tallest = max(self._heights) or 1
        stub = tallest * 0.01
        brushes = [pg.mkBrush(BAR_COLOUR if n > 0 else EMPTY_COLOUR) for n in self._heights]
        self.bars = pg.BarGraphItem(
            x=list(range(len(self._names))),
            height=[n if n > 0 else stub for n in self._heights],
            width=0.8,
            brushes=brushes,
            pen=pg.mkPen(None),
        )
        self.plot.addItem(self.bars)
        self._update_ticks()
        self.plot.setXRange(-0.6, len(self._names) - 0.4, padding=0)
        self.plot.setYRange(0, tallest * 1.05, padding=0)
        self.plot.setToolTip(
            "\n".join(f"{name}: {n:,}" for name, n in zip(self._names, self._heights, strict=True))
        )

    def _update_ticks(self) -> None:
        """Name every k-th bar, k chosen so the names fit side by side at the current width."""
        if not self._names:
            return
        axis = self.plot.getAxis("bottom")
        metrics = QFontMetrics(axis.style.get("tickFont") or self.font())
        widest = max(metrics.horizontalAdvance(_short(n)) for n in self._names) + 8
        room = max(self.plot.width() - 60, 1) / len(self._names)  # 60: the left axis
        step = max(1, math.ceil(len(self._names) / MAX_TICKS), math.ceil(widest / room))
        ticks = [(i, _short(name)) for i, name in enumerate(self._names) if i % step == 0]
        axis.setTicks([ticks, []])

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._update_ticks()

    def clear(self) -> None:
        if self.bars is not None:
            self.plot.removeItem(self.bars)
            self.bars = None
        self._names, self._heights = [], []
        self.plot.getAxis("bottom").setTicks(None)
        self.plot.setToolTip("")

    def names(self) -> list[str]:
        return list(self._names)

    def heights(self) -> list[int]:
        """The image count of each bar (an empty class's stub counts as 0)."""
        return list(self._heights)


def _short(name: str) -> str:
    return name if len(name) <= MAX_NAME else name[: MAX_NAME - 1] + "…"
