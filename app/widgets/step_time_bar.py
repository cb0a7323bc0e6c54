"""A stacked bar of where a training step's time goes: data, copy, compute, other.

One glance answers "is my GPU waiting?": a wide data segment means the loader is the
bottleneck, a wide copy segment the host-to-device transfer, a wide compute segment means the
model itself is the cost (the good case). Painted by hand rather than with a plot, because it
is one bar that changes a few times a second and must read at a small size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFontMetrics, QPainter, QPaintEvent
from PySide6.QtWidgets import QSizePolicy, QWidget

# segment name -> (colour, what it is); the order is the bar's order, left to right
SEGMENTS: dict[str, tuple[str, str]] = {
    "data": ("#e67e22", "waiting for the loader"),
    "copy": ("#8e44ad", "host-to-device copy"),
    "compute": ("#2e86de", "forward, backward and optimizer step"),
    "other": ("#95a5a6", "recording, events and the rest"),
}

BAR_HEIGHT = 22
LEGEND_ROW = 20


@dataclass(frozen=True)
class Segment:
    """One part of the step: its mean milliseconds and its share of the step."""

    name: str
    ms: float
    percent: float


def format_ms(ms: float) -> str:
    """Milliseconds with as many decimals as a person can use at that size."""
    if ms >= 100:
        return f"{ms:,.0f} ms"
    if ms >= 10:
        return f"{ms:.1f} ms"
    return f"{ms:.2f} ms"


class StepTimeBar(QWidget):
    """Shows the latest step-time split as a stacked bar with a legend of ms and %."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._segments: list[Segment] = []
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setMinimumWidth(220)
        self.setToolTip(
            "Mean time per optimizer step over the last window of steps:\n"
            + "\n".join(f"{name}: {what}" for name, (_, what) in SEGMENTS.items())
        )

    def set_times(self, data_ms: float, copy_ms: float, compute_ms: float, other_ms: float) -> None:
        """Show one split; negative or non-finite parts (clock noise) count as zero."""
        values = dict(zip(SEGMENTS, (data_ms, copy_ms, compute_ms, other_ms), strict=True))
        clean = {k: v if math.isfinite(v) and v > 0 else 0.0 for k, v in values.items()}
        total = sum(clean.values())
        self._segments = [
            Segment(name, ms, 100.0 * ms / total if total > 0 else 0.0)
            for name, ms in clean.items()
        ]
        self.update()

    def clear(self) -> None:
        self._segments = []
        self.update()

    def segments(self) -> list[Segment]:
        """The split shown now, in bar order (empty before the first timing)."""
        return list(self._segments)

    def total_ms(self) -> float:
        return sum(s.ms for s in self._segments)

    def legend_lines(self) -> list[str]:
        """The legend as text, one line per segment: ``"data 3.10 ms (12%)"``."""
        return [f"{s.name} {format_ms(s.ms)} ({s.percent:.0f}%)" for s in self._segments]

    # ------------------------------------------------------------------ painting

    def sizeHint(self) -> QSize:
        return QSize(320, BAR_HEIGHT + 8 + 2 * LEGEND_ROW)

    def minimumSizeHint(self) -> QSize:
        return QSize(220, BAR_HEIGHT + 8 + 2 * LEGEND_ROW)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        width = self.width()
        bar = QRectF(0.5, 0.5, width - 1.0, BAR_HEIGHT)
        mid = self.palette().mid().color()
        if not self._segments or self.total_ms() <= 0:
            painter.setPen(mid)
            painter.drawRoundedRect(bar, 3, 3)
            painter.drawText(bar, Qt.AlignmentFlag.AlignCenter, "no step timing yet")
            painter.end()
            return
        x = bar.left()
        for segment in self._segments:
            w = bar.width() * segment.percent / 100.0
            if w <= 0:
                continue
            painter.fillRect(
                QRectF(x, bar.top(), w, bar.height()), QColor(SEGMENTS[segment.name][0])
            )
            x += w
        painter.setPen(mid)
        painter.drawRect(bar)
        self._paint_legend(painter, BAR_HEIGHT + 8)
        painter.end()

    def _paint_legend(self, painter: QPainter, top: int) -> None:
        """Two columns of ``■ name ms (%)``, so four entries fit a narrow side panel."""
        metrics = QFontMetrics(self.font())
        column = self.width() / 2
        painter.setPen(self.palette().windowText().color())
        for i, (segment, text) in enumerate(zip(self._segments, self.legend_lines(), strict=True)):
            x = (i % 2) * column
            y = top + (i // 2) * LEGEND_ROW
            painter.fillRect(QRectF(x, y + 4, 10, 10), QColor(SEGMENTS[segment.name][0]))
            elided = metrics.elidedText(text, Qt.TextElideMode.ElideRight, int(column - 18))
            painter.drawText(
                QRectF(x + 15, y, column - 15, LEGEND_ROW - 2),
                Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop,
                elided,
            )
