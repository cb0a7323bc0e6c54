"""A confusion matrix drawn as a heatmap: true classes down the side, predictions across.

Colour is normalised per row (the share of that class's images that landed in the cell), so
a rare class's confusions are as visible as a common one's; the cell text keeps the raw
count. The diagonal (right answers) and the rest (mistakes) get different hues, so a glance
says where the model goes wrong. Hovering a cell names it in words.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from PySide6.QtCore import QEvent, QPoint, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFontMetrics, QHelpEvent, QPainter, QPaintEvent
from PySide6.QtWidgets import QSizePolicy, QToolTip, QWidget

from cnn_lab.app.widgets.charts import PALETTE

RIGHT_COLOUR = QColor(PALETTE[0])
WRONG_COLOUR = QColor(PALETTE[3])
NAME_WIDTH = 120
"""Longest class name drawn, in pixels; longer ones are elided (the tooltip has them whole)."""
PREFERRED_CELL = 32
MARGIN = 6


class ConfusionMatrix(QWidget):
    """``set_matrix(classes, counts)`` with ``counts[true][predicted]``."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.classes: list[str] = []
        self.counts: list[list[int]] = []
        self._row_totals: list[int] = []
        self.setMouseTracking(True)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(160, 160)

    def set_matrix(self, classes: Sequence[str], counts: Sequence[Sequence[int]]) -> None:
        if len(counts) != len(classes) or any(len(row) != len(classes) for row in counts):
            raise ValueError("a confusion matrix needs one row and one column per class")
        self.classes = [str(c) for c in classes]
        self.counts = [[int(n) for n in row] for row in counts]
        self._row_totals = [sum(row) for row in self.counts]
        self.updateGeometry()
        self.update()

    def clear(self) -> None:
        self.set_matrix([], [])

    def total(self) -> int:
        """How many images the matrix counts."""
        return sum(self._row_totals)

    def share(self, row: int, column: int) -> float:
        """The fraction of class ``row``'s images that were predicted as ``column``."""
        total = self._row_totals[row]
        return self.counts[row][column] / total if total else 0.0

    def tooltip_text(self, row: int, column: int) -> str:
        return (
            f"true {self.classes[row]} predicted as {self.classes[column]}: "
            f"{self.counts[row][column]} ({self.share(row, column):.0%})"
        )

    # ----------------------------------------------------------------- geometry

    def _name_width(self) -> int:
        metrics = QFontMetrics(self.font())
        widest = max((metrics.horizontalAdvance(c) for c in self.classes), default=0)
        return min(widest + 2, NAME_WIDTH) + MARGIN  # 2: elidedText's rounding

    def _grid(self) -> tuple[float, float, float]:
        """Left and top edge of the cells, and the side of one cell."""
        title = QFontMetrics(self.font()).height() + MARGIN
        names = self._name_width()
        left = top = title + names
        k = max(len(self.classes), 1)
        side = min((self.width() - left - MARGIN) / k, (self.height() - top - MARGIN) / k)
        return left, top, max(side, 1.0)

    def cell_at(self, pos: QPoint) -> tuple[int, int] | None:
        """The (true, predicted) cell under ``pos``, or None off the grid."""
        if not self.classes:
            return None
        left, top, side = self._grid()
        column, row = int((pos.x() - left) // side), int((pos.y() - top) // side)
        k = len(self.classes)
        if pos.x() < left or pos.y() < top or row >= k or column >= k:
            return None
        return row, column

    def cell_rect(self, row: int, column: int) -> QRectF:
        left, top, side = self._grid()
        return QRectF(left + column * side, top + row * side, side, side)

    def sizeHint(self) -> QSize:
        extra = QFontMetrics(self.font()).height() + MARGIN + self._name_width() + MARGIN
        side = extra + PREFERRED_CELL * max(len(self.classes), 1)
        return QSize(side, side)

    # ----------------------------------------------------------------- drawing

    def paintEvent(self, event: QPaintEvent) -> None:
        if not self.classes:
            return
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        metrics = QFontMetrics(self.font())
        left, top, side = self._grid()
        k = len(self.classes)
        base = self.palette().base().color()
        text = self.palette().text().color()
        show_counts = side >= metrics.height() and side >= metrics.horizontalAdvance("000")
        for row in range(k):
            for column in range(k):
                share = self.share(row, column)
                hue = RIGHT_COLOUR if row == column else WRONG_COLOUR
                rect = self.cell_rect(row, column)
                painter.fillRect(rect, _blend(base, hue, share))
                if show_counts and self.counts[row][column]:
                    painter.setPen(QColor("white") if share > 0.5 else text)
                    painter.drawText(
                        rect, Qt.AlignmentFlag.AlignCenter, str(self.counts[row][column])
                    )
        painter.setPen(self.palette().mid().color())
        painter.drawRect(QRectF(left, top, side * k, side * k))
        painter.setPen(text)
        self._draw_names(painter, metrics, left, top, side)
        painter.end()

    def _draw_names(
        self, painter: QPainter, metrics: QFontMetrics, left: float, top: float, side: float
    ) -> None:
        k = len(self.classes)
        # Name every n-th class when the cells are thinner than a line of text.
        step = max(1, math.ceil(metrics.height() / side))
        names = self._name_width() - MARGIN
        for i, name in enumerate(self.classes):
            if i % step:
                continue
            shown = metrics.elidedText(name, Qt.TextElideMode.ElideRight, names)
            y = top + i * side
            painter.drawText(
                QRectF(left - names - MARGIN, y, names, side),
                Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                shown,
            )
            painter.save()  # predicted names run upwards above their columns
            painter.translate(left + i * side, top - MARGIN)
            painter.rotate(-90)
            painter.drawText(
                QRectF(0, 0, names, side),
                Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                shown,
            )
            painter.restore()
        title = metrics.height()
        painter.drawText(
            QRectF(left, 0, side * k, title), Qt.AlignmentFlag.AlignCenter, "predicted"
        )
        painter.save()
        painter.translate(0, top + side * k)
        painter.rotate(-90)
        painter.drawText(QRectF(0, 0, side * k, title), Qt.AlignmentFlag.AlignCenter, "true")
        painter.restore()

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ToolTip and isinstance(event, QHelpEvent):
            cell = self.cell_at(event.pos())
            if cell is None:
                QToolTip.hideText()
            else:
                QToolTip.showText(event.globalPos(), self.tooltip_text(*cell), self)
            return True
        return super().event(event)


def _blend(base: QColor, hue: QColor, amount: float) -> QColor:
    """``base`` moved ``amount`` (0..1) of the way towards ``hue``."""
    amount = min(max(amount, 0.0), 1.0)
    return QColor(
        round(base.red() + (hue.red() - base.red()) * amount),
        round(base.green() + (hue.green() - base.green()) * amount),
        round(base.blue() + (hue.blue() - base.blue()) * amount),
    )


__all__ = ["ConfusionMatrix"]
