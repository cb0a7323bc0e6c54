"""Live line charts over pyqtgraph: growing buffers, setData, peak downsampling, clip to view.

Appending a point costs an amortised O(1) copy into a pre-grown numpy buffer; the redraw
happens once per batch of events (about 10 Hz), not once per point, so a run of a million
steps stays smooth.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QVBoxLayout, QWidget

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf")


class Series:
    """A growing (x, y) buffer that doubles its capacity when full."""

    def __init__(self, capacity: int = 1024) -> None:
        self._x = np.empty(capacity, dtype=np.float64)
        self._y = np.empty(capacity, dtype=np.float64)
        self.size = 0

    def extend(self, xs: Sequence[float], ys: Sequence[float]) -> None:
        n = len(xs)
        if self.size + n > len(self._x):
            capacity = max(len(self._x) * 2, self.size + n)
            self._x = np.resize(self._x, capacity)
            self._y = np.resize(self._y, capacity)
        self._x[self.size : self.size + n] = xs
        self._y[self.size : self.size + n] = ys
        self.size += n

    @property
    def x(self) -> np.ndarray:
        return self._x[: self.size]

    @property
    def y(self) -> np.ndarray:
        return self._y[: self.size]

    def clear(self) -> None:
        self.size = 0


class LiveChart(QWidget):
    """One plot with named curves that grow as points arrive."""

    def __init__(
        self,
        title: str,
        *,
        x_label: str = "step",
        y_label: str = "",
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.plot = pg.PlotWidget(title=title)
        self.plot.setBackground(None)
        item = self.plot.getPlotItem()
        item.setDownsampling(auto=True, mode="peak")
        item.setClipToView(True)
        item.showGrid(x=True, y=True, alpha=0.2)
        item.setLabel("bottom", x_label)
        if y_label:
            item.setLabel("left", y_label)
        item.addLegend(offset=(-10, 10))
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot)
        self._series: dict[str, Series] = {}
        self._curves: dict[str, pg.PlotDataItem] = {}

    def curve_names(self) -> list[str]:
        return list(self._series)

    def points(self, name: str) -> int:
        """How many points a curve holds (0 if it does not exist)."""
        series = self._series.get(name)
        return series.size if series else 0

    def data(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        series = self._series[name]
        return series.x.copy(), series.y.copy()

    def append(
        self, name: str, xs: Sequence[float], ys: Sequence[float], *, redraw: bool = True
    ) -> None:
        if not len(xs):
            return
        if name not in self._series:
            color = PALETTE[len(self._series) % len(PALETTE)]
            symbol = "o" if len(xs) == 1 else None  # sparse (per-epoch) curves get markers
            self._series[name] = Series()
            self._curves[name] = self.plot.plot(
                name=name,
                pen=pg.mkPen(color, width=2),
                symbol=symbol,
                symbolSize=6,
                symbolBrush=color,
            )
        self._series[name].extend(xs, ys)
        if redraw:
            self.redraw(name)

    def set(self, name: str, xs: Sequence[float], ys: Sequence[float]) -> None:
        """Replace a curve's points (used when showing a stored run)."""
        if name in self._series:
            self._series[name].clear()
        self.append(name, xs, ys)

    def redraw(self, name: str | None = None) -> None:
        names = [name] if name else list(self._series)
        for n in names:
            series = self._series[n]
            self._curves[n].setData(series.x, series.y)

    def clear(self) -> None:
        for curve in self._curves.values():
            self.plot.removeItem(curve)
        legend = self.plot.getPlotItem().legend
        if legend is not None:
            legend.clear()
        self._series.clear()
        self._curves.clear()
