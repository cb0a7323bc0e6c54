"""Parallel coordinates: each finished trial as a line across one axis per parameter.

The last axis is the trial's value (accuracy or loss), and a line's colour says the same,
so the eye follows good lines back to the parameters that made them. Each axis is scaled
to its own 0..1: a numeric parameter linearly, or on a log scale when it spans more than a
factor of 20 (learning rates); a categorical one (an optimizer) spaces its choices evenly.
The extremes of each axis are written at its ends.
"""

from __future__ import annotations

import math
from typing import Any

import pyqtgraph as pg
from PySide6.QtWidgets import QVBoxLayout, QWidget

LOG_SPAN = 20.0
"""A positive numeric axis spanning more than this factor is drawn on a log scale."""


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def axis_positions(values: list[Any]) -> tuple[list[float], str, str]:
    """Each value's height on its axis (0..1), and the labels for the bottom and the top."""
    if values and all(_number(v) for v in values):
        low, high = min(values), max(values)
        log = low > 0 and high / low > LOG_SPAN
        f = math.log10 if log else float
        lo, hi = f(low), f(high)
        span = hi - lo
        heights = [0.5 if span == 0 else (f(v) - lo) / span for v in values]
        return heights, f"{low:.4g}", f"{high:.4g}"
    levels = sorted({str(v) for v in values})
    place = {
        level: (i / (len(levels) - 1) if len(levels) > 1 else 0.5) for i, level in enumerate(levels)
    }
    return (
        [place[str(v)] for v in values],
        levels[0] if levels else "",
        levels[-1] if levels else "",
    )


class ParallelCoordinates(QWidget):
    """One line per complete trial over the parameter axes and the value axis."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.plot = pg.PlotWidget(title="Parallel coordinates")
        self.plot.setBackground(None)
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.hideButtons()
        item = self.plot.getPlotItem()
        item.hideAxis("left")
        item.setYRange(-0.12, 1.12, padding=0)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot)
        self.lines: list[pg.PlotDataItem] = []
        self.axes: list[str] = []

    def set_trials(
        self,
        outcomes: list[dict[str, Any]],
        *,
        metric: str,
        maximise: bool,
        paths: list[str] | None = None,
    ) -> None:
        """Draw the complete trials of ``outcomes`` (``TrialOutcome.to_dict()`` each).

        ``paths`` orders the axes as the person listed the parameters (Optuna hands a
        trial's parameters back sorted by name); by default they come in that order.
        """
        self.plot.clear()
        self.lines = []
        done = [o for o in outcomes if o.get("value") is not None and o.get("params")]
        if paths is None:
            paths = list(dict.fromkeys(p for o in done for p in o["params"]))
        self.axes = [*paths, metric]
        if not done:
            self.plot.getPlotItem().getAxis("bottom").setTicks([[]])
            return
        columns = [[o["params"].get(p) for o in done] for p in paths]
        columns.append([float(o["value"]) for o in done])
        placed = [axis_positions(column) for column in columns]
        ticks = []
        for x, (path, (_, low, high)) in enumerate(zip(self.axes, placed, strict=True)):
            self.plot.addItem(pg.InfiniteLine(pos=x, angle=90, pen=pg.mkPen("#888", width=1)))
            for text, y, anchor in ((low, 0.0, (0.5, 0.0)), (high, 1.0, (0.5, 1.0))):
                label = pg.TextItem(text, color="#555", anchor=anchor)
                label.setPos(x, y - 0.02 if y == 0 else y + 0.02)
                self.plot.addItem(label)
            ticks.append((x, path))
        self.plot.getPlotItem().getAxis("bottom").setTicks([ticks])
        scores = placed[-1][0]
        colours = pg.colormap.get("viridis")
        xs = list(range(len(self.axes)))
        for i in range(len(done)):
            score = scores[i] if maximise else 1 - scores[i]
            pen = pg.mkPen(colours.map(score, mode="qcolor"), width=2)
            ys = [heights[i] for heights, _, _ in placed]
            self.lines.append(self.plot.plot(xs, ys, pen=pen))
        self.plot.getPlotItem().setXRange(-0.3, len(self.axes) - 0.7, padding=0)


__all__ = ["ParallelCoordinates", "axis_positions"]
