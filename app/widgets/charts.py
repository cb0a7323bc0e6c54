"""Live line charts over pyqtgraph: growing buffers, setData, peak downsampling, clip to view.

Appending a point costs an amortised O(1) copy into a pre-grown numpy buffer; the redraw
happens once per batch of events (about 10 Hz), not once per point, so a run of a million
steps stays smooth.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import QVBoxLayout, QWidget

DENSE_WIDTH = 1
"""Pen width for curves with a point per step or per sample: Qt's raster engine draws 1-px
lines by a fast path, and a 2-px pen made painting a live chart about half as fast again."""

# legend corner -> pyqtgraph's offset (negative x or y anchors it to the right or bottom)
LEGEND_OFFSETS: dict[str, tuple[int, int]] = {
    "top-right": (-10, 10),
    "bottom-right": (-10, -10),
    "top-left": (10, 10),
    "bottom-left": (10, -10),
}

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
    """One plot with named curves that grow as points arrive.

    A chart that is not visible (another tab is shown) only grows its buffers and marks the
    curves dirty; they are handed to pyqtgraph when the chart is shown again, so a panel with
    a dozen charts costs the GUI thread only what is on screen.
    """

    def __init__(
        self,
        title: str,
        *,
        x_label: str = "step",
        y_label: str = "",
        legend_at: str = "top-right",
        parent: QWidget | None = None,
    ) -> None:
        """``legend_at`` is the corner the curves leave free: "top-right" for falling
        curves (loss), "bottom-right" for rising ones (accuracy)."""
        super().__init__(parent)
        self.plot = pg.PlotWidget(title=title)
        self.plot.setBackground(None)
        item = self.plot.getPlotItem()
        item.setDownsampling(auto=True, mode="peak")
        item.setClipToView(True)
        item.showGrid(x=True, y=True, alpha=0.2)
        for side in ("left", "bottom"):
            # Grid lines at the major ticks only: pyqtgraph's default also draws them at two
            # minor levels, which made the axes most of a live chart's paint time.
            item.getAxis(side).setStyle(maxTickLevel=0)
            item.getAxis(side).setTickDensity(1.6)
        item.setLabel("bottom", x_label)
        if y_label:
            item.setLabel("left", y_label)
        # a translucent backing keeps the legend readable where it covers a curve
        backing = self.palette().window().color()
        backing.setAlpha(210)
        item.addLegend(offset=LEGEND_OFFSETS[legend_at], brush=pg.mkBrush(backing))
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot)
        self._series: dict[str, Series] = {}
        self._curves: dict[str, pg.PlotDataItem] = {}
        self._dirty: set[str] = set()

    def curve_names(self) -> list[str]:
        return list(self._series)

    def points(self, name: str) -> int:
        """How many points a curve holds (0 if it does not exist)."""
        series = self._series.get(name)
        return series.size if series else 0

    def drawn(self, name: str) -> int:
        """How many points pyqtgraph holds for a curve: behind ``points`` while hidden."""
        curve = self._curves.get(name)
        x = curve.getData()[0] if curve is not None else None
        return 0 if x is None else len(x)

    def data(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        series = self._series[name]
        return series.x.copy(), series.y.copy()

    def last(self, name: str) -> tuple[float, float] | None:
        """A curve's latest (x, y), or None if it has no points."""
        series = self._series.get(name)
        if not series or not series.size:
            return None
        return float(series.x[-1]), float(series.y[-1])

    def add_curve(
        self,
        name: str,
        *,
        color: str | None = None,
        dashed: bool = False,
        markers: bool = False,
        width: float = 2,
    ) -> None:
        """Create an empty curve with its look fixed now (does nothing if it exists).

        Related curves share a colour (a GPU's memory used and its total, the total dashed),
        which ``append``'s automatic palette cannot know.
        """
        if name in self._series:
            return
        color = color or PALETTE[len(self._series) % len(PALETTE)]
        style = Qt.PenStyle.DashLine if dashed else Qt.PenStyle.SolidLine
        pen = pg.mkPen(color, width=width, style=style)
        self._series[name] = Series()
        self._curves[name] = self.plot.plot(
            name=name,
            pen=pen,
            symbol="o" if markers else None,
            symbolSize=6,
            symbolBrush=color,
            symbolPen=color,
        )

    def append(
        self, name: str, xs: Sequence[float], ys: Sequence[float], *, redraw: bool = True
    ) -> None:
        if not len(xs):
            return
        if name not in self._series:
            # sparse (per-epoch) curves get markers so a single point is visible
            self.add_curve(name, markers=len(xs) == 1)
        self._series[name].extend(xs, ys)
        if redraw:
            self.redraw(name)

    def append_batch(self, batch: Mapping[str, tuple[Sequence[float], Sequence[float]]]) -> None:
        """Append to several curves, then redraw each of them once."""
        for name, (xs, ys) in batch.items():
            self.append(name, xs, ys, redraw=False)
        self.redraw_curves([name for name in batch if name in self._series])

    def set(self, name: str, xs: Sequence[float], ys: Sequence[float]) -> None:
        """Replace a curve's points (used when showing a stored run)."""
        if name in self._series:
            self._series[name].clear()
        self.append(name, xs, ys)

    def redraw(self, name: str | None = None) -> None:
        self.redraw_curves([name] if name else list(self._series))

    def redraw_curves(self, names: Sequence[str]) -> None:
        """Hand the curves' buffers to pyqtgraph now, or when the chart is next shown."""
        if not self.isVisible():
            self._dirty.update(names)
            return
        for n in names:
            series = self._series[n]
            self._curves[n].setData(series.x, series.y)
            self._dirty.discard(n)
        view = self.plot.getPlotItem().getViewBox()
        if names and any(view.autoRangeEnabled()):
            # Fit the range now, not in the paint: pyqtgraph fits it while painting and then
            # paints a second time for the new range, which doubled every live redraw.
            view.updateAutoRange()
            view.updateMatrix()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if self._dirty:
            self.redraw_curves([n for n in self._dirty if n in self._series])

    def clear(self) -> None:
        for curve in self._curves.values():
            self.plot.removeItem(curve)
        legend = self.plot.getPlotItem().legend
        if legend is not None:
            legend.clear()
        self._series.clear()
        self._curves.clear()
        self._dirty.clear()
