"""The LR range test's chart: loss against learning rate, with a rate you pick by clicking.

The x axis is logarithmic, because the test raises the rate exponentially: pyqtgraph's log
mode draws the data given in rates, but everything placed in the view (the vertical lines,
a click's position) lives in log10(rate). The raw loss is drawn faint and the smoothed
loss bold, since the smoothed curve is what the suggestion is read from and the raw one is
only there to show how noisy it was.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPoint, QPointF, Qt, Signal
from PySide6.QtWidgets import QLabel, QStackedLayout, QWidget

from cnn_lab.app.widgets.charts import PALETTE

RAW_PEN = pg.mkPen((128, 128, 128, 110), width=1)
SMOOTH_PEN = pg.mkPen(PALETTE[0], width=2.5)
SUGGESTION_PEN = pg.mkPen(PALETTE[2], width=2, style=Qt.PenStyle.DashLine)
PICK_PEN = pg.mkPen(PALETTE[3], width=2)
HEADROOM = 1.6
"""The y axis shows losses up to this times the starting loss: the descent and the start of
the divergence, not the explosion that follows and would flatten everything else."""


def round_rate(rate: float) -> float:
    """``rate`` to two significant digits, the precision a range test can justify."""
    return float(f"{rate:.1e}")


NICE_MANTISSAS = (1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0)
"""The rates a click snaps to, per decade: what people type (1e-3, 3e-3, 5e-3)."""


def snap_rate(rate: float) -> float:
    """The nice rate nearest ``rate`` on a log scale.

    A pixel on the chart spans a few percent of rate, so a click can only mean "about
    here"; snapping makes the same click give the same round number every time.
    """
    exponent = math.floor(math.log10(rate))
    mantissa = rate / 10**exponent
    best = min(NICE_MANTISSAS, key=lambda m: abs(math.log10(m / mantissa)))
    return float(f"{best * 10**exponent:.12g}")


def format_rate(rate: float) -> str:
    """A rate as people write them: 3.2e-3, 1e-2, 2 (two significant digits at most)."""
    mantissa, exponent = f"{rate:.1e}".split("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    return mantissa if int(exponent) == 0 else f"{mantissa}e{int(exponent)}"


def _floats(values: Sequence[float | None]) -> np.ndarray:
    """JSON results carry None for losses that were not finite; the chart wants NaN gaps."""
    return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)


class _RateAxis(pg.AxisItem):
    """Log-axis ticks written like the rates elsewhere (1e-4, 1e-3), not 0.0001 beside 10⁻⁵."""

    def logTickStrings(self, values: list[float], scale: float, spacing: float) -> list[str]:
        return [format_rate(10.0**v * scale) for v in values]


class LRCurveChart(QWidget):
    """Raw and smoothed loss against rate, the suggestion, and a picked rate.

    ``picked(rate)`` is emitted when the person clicks in the plot (or drags the picked
    marker); the rate is clamped to the tested range. The owner decides what to do with it
    and calls ``set_pick`` to move the marker.
    """

    picked = Signal(float)

    def __init__(self, empty_text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.plot = pg.PlotWidget(axisItems={"bottom": _RateAxis("bottom")})
        self.plot.setBackground(None)
        self.plot.setMinimumHeight(220)
        item = self.plot.getPlotItem()
        item.setLogMode(x=True, y=False)
        item.showGrid(x=True, y=True, alpha=0.2)
        item.setLabel("bottom", "learning rate")
        item.setLabel("left", "loss")
        item.addLegend(offset=(10, -10))  # bottom left: the curve starts high
        self.raw_curve = item.plot(name="loss", pen=RAW_PEN)
        self.smooth_curve = item.plot(name="smoothed", pen=SMOOTH_PEN)
        self.suggestion_line = self._line(SUGGESTION_PEN, movable=False, position=0.92)
        self.pick_line = self._line(PICK_PEN, movable=True, position=0.08)
        self.pick_line.sigPositionChangeFinished.connect(self._dragged)
        self.plot.scene().sigMouseClicked.connect(self._clicked)
        self._range: tuple[float, float] | None = None  # tested rates, low to high

        self.empty = QLabel(empty_text)
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setWordWrap(True)
        self.empty.setStyleSheet("color: palette(mid); border: 1px dashed palette(mid);")
        self.empty.setMinimumHeight(220)
        self._stack = QStackedLayout(self)
        self._stack.setContentsMargins(0, 0, 0, 0)
        self._stack.addWidget(self.empty)
        self._stack.addWidget(self.plot)

    def _line(self, pen: object, *, movable: bool, position: float) -> pg.InfiniteLine:
        line = pg.InfiniteLine(
            angle=90,
            movable=movable,
            pen=pen,
            label="",
            labelOpts={"position": position, "color": pen.color(), "movable": False},  # type: ignore[attr-defined]
        )
        line.setVisible(False)
        line.setZValue(10)
        self.plot.getPlotItem().addItem(line, ignoreBounds=True)
        return line

    # ------------------------------------------------------------------ data

    @property
    def has_data(self) -> bool:
        return self._range is not None

    def set_result(
        self,
        lrs: Sequence[float],
        losses: Sequence[float | None],
        smoothed: Sequence[float | None],
        suggestion: float | None,
    ) -> None:
        """Show a test's curves; the picked marker is hidden until ``set_pick``."""
        x = np.asarray(lrs, dtype=np.float64)
        raw, smooth = _floats(losses), _floats(smoothed)
        self.raw_curve.setData(x, raw, connect="finite")
        self.smooth_curve.setData(x, smooth, connect="finite")
        self.pick_line.setVisible(False)
        self._range = (float(x.min()), float(x.max())) if len(x) else None
        self._stack.setCurrentWidget(self.plot if len(x) else self.empty)
        if suggestion is not None and len(x):
            # Visible first: a hidden line's label ignores new text.
            self.suggestion_line.setVisible(True)
            self.suggestion_line.setPos(math.log10(suggestion))
            self.suggestion_line.label.setFormat(f"suggested {format_rate(suggestion)}")
        else:
            self.suggestion_line.setVisible(False)
        if len(x):
            self._fit_view(x, raw, smooth)

    def _fit_view(self, x: np.ndarray, raw: np.ndarray, smooth: np.ndarray) -> None:
        item = self.plot.getPlotItem()
        item.setXRange(math.log10(x.min()), math.log10(x.max()), padding=0.02)
        finite = np.concatenate([raw[np.isfinite(raw)], smooth[np.isfinite(smooth)]])
        if not len(finite):
            return
        low = float(finite.min())
        start = smooth[np.isfinite(smooth)]
        reference = float(start[0]) if len(start) else float(finite.max())
        high = min(float(finite.max()), max(reference, low) * HEADROOM)
        if high <= low:
            high = low + max(abs(low) * 0.1, 1e-3)
        item.setYRange(low, high, padding=0.05)

    def set_pick(self, rate: float | None) -> None:
        """Move the picked marker to ``rate`` (None hides it)."""
        if rate is None:
            self.pick_line.setVisible(False)
            return
        self.pick_line.setVisible(True)
        self.pick_line.setPos(math.log10(rate))
        self.pick_line.label.setFormat(f"picked {format_rate(rate)}")

    def clamp(self, rate: float) -> float:
        """``rate`` moved inside the tested range: the curve says nothing beyond it."""
        if self._range is None:
            return rate
        low, high = self._range
        return min(max(rate, low), high)

    # ------------------------------------------------------------------ clicks

    def widget_pos(self, rate: float, loss: float | None = None) -> QPoint:
        """Where in ``self.plot`` (widget pixels) the point (rate, loss) is drawn.

        The inverse of what a click does; tests use it to click at a known rate.
        """
        view = self.plot.getPlotItem().getViewBox()
        if loss is None:
            (_, _), (low, high) = view.viewRange()
            loss = (low + high) / 2
        scene = view.mapViewToScene(QPointF(math.log10(rate), loss))
        return self.plot.mapFromScene(scene)

    def rate_at(self, scene_pos: QPointF) -> float | None:
        """The tested rate under a scene position, or None outside the plot's view box."""
        view = self.plot.getPlotItem().getViewBox()
        if self._range is None or not view.sceneBoundingRect().contains(scene_pos):
            return None
        return self.clamp(10 ** view.mapSceneToView(scene_pos).x())

    def _clicked(self, event: object) -> None:
        if event.button() != Qt.MouseButton.LeftButton:  # type: ignore[attr-defined]
            return  # the right button opens pyqtgraph's menu
        rate = self.rate_at(event.scenePos())  # type: ignore[attr-defined]
        if rate is not None:
            self.picked.emit(rate)

    def _dragged(self) -> None:
        if self._range is not None:
            self.picked.emit(self.clamp(10 ** self.pick_line.value()))
