"""The block diagram: one box per top-level layer, in reading order, arrows between them.

Boxes flow left to right and wrap onto the next row like text, so a 30-layer network fits
the width of the window instead of a long horizontal scroll. Each box is coloured by its
layer category and shows its label and output shape; blocks with a shortcut get a dashed
bypass arrow over them; the layer in error is outlined red. Clicking a box selects the layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontMetrics,
    QMouseEvent,
    QPainter,
    QPainterPath,
    QPaintEvent,
    QPalette,
    QPen,
    QPolygonF,
    QResizeEvent,
)
from PySide6.QtWidgets import QSizePolicy, QWidget

from cnn_lab.app.widgets.layer_list import layer_label
from cnn_lab.engine.models.layers.registry import find_layer_kind
from cnn_lab.engine.specs.layer_edits import Layers
from cnn_lab.engine.util.formatting import format_shape

COLOURS = {
    "Input": "#e4e7eb",
    "Convolution": "#cfe2ff",
    "Normalisation": "#d8f0d0",
    "Activation": "#fff0c2",
    "Pooling": "#e6dbff",
    "Blocks": "#ffd9cc",
    "Regularisation": "#e9e9e9",
    "Classifier": "#ccf0ec",
}
OTHER_COLOUR = "#e8eaf0"
BYPASS_KINDS = {"residual", "basic_block", "bottleneck"}  # layer kinds with a shortcut
BYPASS_UNITS = {"BasicBlock", "Bottleneck"}  # torchvision's
MARGIN, GAP, ROW_GAP, BOX_H, ARC = 22, 30, 34, 54, 14
MIN_W, MAX_W = 104, 230

# torchvision's module class names, for colouring the units of a preset built by code.
_UNIT_CATEGORIES = (
    ("conv", "Convolution"),
    ("norm", "Normalisation"),
    ("pool", "Pooling"),
    ("block", "Blocks"),
    ("bottleneck", "Blocks"),
    ("residual", "Blocks"),
    ("sequential", "Blocks"),
    ("linear", "Classifier"),
    ("dropout", "Regularisation"),
    ("relu", "Activation"),
    ("silu", "Activation"),
    ("swish", "Activation"),
    ("gelu", "Activation"),
)


def unit_category(module_kind: str) -> str:
    """The palette category a torch module class looks like ("BasicBlock" → "Blocks")."""
    lowered = module_kind.lower()
    return next((cat for key, cat in _UNIT_CATEGORIES if key in lowered), "")


@dataclass(frozen=True)
class Block:
    """What one box shows."""

    label: str
    shape: str = ""
    category: str = ""
    bypass: bool = False
    inner: str = ""
    """A short line listing a block's inner layers ("conv · bn · relu")."""


class BlockDiagram(QWidget):
    """Paints the network as boxes; ``block_clicked(index)`` for a click on a layer's box."""

    block_clicked = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.blocks: list[Block] = []
        self.error_index: int | None = None
        self.selected_index: int | None = None
        self._rects: list[QRectF] = []
        self._height = 2 * MARGIN + BOX_H
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Minimum)
        self.setMouseTracking(False)

    def set_blocks(
        self, blocks: list[Block], error: int | None = None, selected: int | None = None
    ) -> None:
        """Show ``blocks`` (index 0 is the input); ``error``/``selected`` index into them."""
        self.blocks = list(blocks)
        self.error_index, self.selected_index = error, selected
        self._relayout(self.width())
        self.update()

    def show_network(
        self, input_shape: tuple[int, ...], layers: Layers, rows: Sequence[Any],
        error: int | None = None, selected: int | None = None,
    ) -> None:  # fmt: skip
        """Draw ``layers`` (or, for a preset built by code, the summary ``rows``).

        ``rows`` are the summary's rows when they belong to these layers (one per layer),
        else empty; ``error`` and ``selected`` are top-level layer indices.
        """
        blocks = [Block("Input", format_shape(input_shape), "Input")]
        for i, layer in enumerate(layers):
            kind = find_layer_kind(layer.kind)
            shape = format_shape(rows[i].output_shape) if len(rows) == len(layers) else ""
            inner = " · ".join(layer_label(x).split(",")[0] for x in layer.layers)
            category = kind.category if kind else ""
            bypass = layer.kind in BYPASS_KINDS
            blocks.append(Block(layer_label(layer), shape, category, bypass, inner))
        if not layers:
            for r in rows:
                bypass = r.kind in BYPASS_UNITS
                category = unit_category(r.kind)
                blocks.append(Block(r.name, format_shape(r.output_shape), category, bypass, r.kind))
        self.set_blocks(blocks, _after_input(error), _after_input(selected))

    def _box_width(self, block: Block) -> float:
        bold = QFont(self.font())
        bold.setBold(True)
        metrics = QFontMetrics(self.font())
        text = max(
            QFontMetrics(bold).horizontalAdvance(block.label),
            metrics.horizontalAdvance(block.shape),
            metrics.horizontalAdvance(block.inner) * 0.9,
        )
        return float(min(MAX_W, max(MIN_W, text + 20)))

    def _relayout(self, width: int) -> None:
        self._rects = []
        x, y = float(MARGIN), float(MARGIN + ARC)
        usable = max(width - MARGIN, MIN_W + 2 * MARGIN)
        for block in self.blocks:
            w = self._box_width(block)
            if self._rects and x + w > usable:
                x, y = float(MARGIN), y + BOX_H + ROW_GAP + ARC
            self._rects.append(QRectF(x, y, w, BOX_H))
            x += w + GAP
        self._height = int(y + BOX_H + MARGIN)
        self.setMinimumHeight(self._height)
        self.updateGeometry()

    def box_rect(self, index: int) -> QRectF | None:
        """Where box ``index`` is drawn (for scrolling it into view)."""
        return self._rects[index] if 0 <= index < len(self._rects) else None

    def sizeHint(self) -> QSize:
        return QSize(640, self._height)

    def resizeEvent(self, event: QResizeEvent) -> None:
        if event.size().width() != event.oldSize().width():
            self._relayout(event.size().width())
        super().resizeEvent(event)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        for i, rect in enumerate(self._rects):
            if rect.contains(event.position()):
                self.block_clicked.emit(i)
                return
        super().mousePressEvent(event)

    # ----------------------------------------------------------------- painting

    def paintEvent(self, _event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        text_colour = QColor("#1d2330")
        line = QPen(self.palette().color(QPalette.ColorRole.Mid), 1.4)
        for i in range(1, len(self._rects)):
            self._connect(painter, self._rects[i - 1], self._rects[i], line)
        for i, (block, rect) in enumerate(zip(self.blocks, self._rects, strict=True)):
            if block.bypass:
                self._bypass(painter, rect, line)
            self._box(painter, i, block, rect, text_colour)
        painter.end()

    def _box(self, painter: QPainter, i: int, block: Block, rect: QRectF, ink: QColor) -> None:
        fill = QColor(COLOURS.get(block.category, OTHER_COLOUR))
        if i == self.error_index:
            pen = QPen(QColor("#d62828"), 2.6)
        elif i == self.selected_index:
            pen = QPen(self.palette().color(QPalette.ColorRole.Highlight), 2.2)
        else:
            pen = QPen(fill.darker(135), 1.0)
        painter.setPen(pen)
        painter.setBrush(fill)
        painter.drawRoundedRect(rect, 7, 7)
        painter.setPen(ink)
        inner = rect.adjusted(8, 4, -8, -4)
        lines = [
            (text, n) for n, text in enumerate((block.label, block.inner, block.shape)) if text
        ]
        font = painter.font()
        step = inner.height() / len(lines)
        for n, (text, role) in enumerate(lines):
            part = QFont(font)
            part.setBold(role == 0)
            if role == 1:  # the inner layers, smaller
                part.setPointSizeF(font.pointSizeF() * 0.85)
            painter.setFont(part)
            shown = QFontMetrics(part).elidedText(
                text, Qt.TextElideMode.ElideRight, int(inner.width())
            )
            row = QRectF(inner.left(), inner.top() + n * step, inner.width(), step)
            painter.drawText(row, Qt.AlignmentFlag.AlignCenter, shown)
        painter.setFont(font)

    def _connect(self, painter: QPainter, a: QRectF, b: QRectF, pen: QPen) -> None:
        painter.setPen(pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        if abs(a.top() - b.top()) < 1:
            start, end = QPointF(a.right(), a.center().y()), QPointF(b.left(), b.center().y())
            painter.drawLine(start, end)
        else:  # wrap onto the next row: down, back left, down into the next box
            mid = a.bottom() + ROW_GAP / 2
            path = QPainterPath(QPointF(a.center().x(), a.bottom()))
            path.lineTo(a.center().x(), mid)
            path.lineTo(b.center().x(), mid)
            path.lineTo(b.center().x(), b.top())
            painter.drawPath(path)
            end = QPointF(b.center().x(), b.top())
            _arrow_head(painter, end, QPointF(0, 1), pen.color())
            return
        _arrow_head(painter, end, QPointF(1, 0), pen.color())

    def _bypass(self, painter: QPainter, rect: QRectF, pen: QPen) -> None:
        """The shortcut: out of the box's top left, over it, back in at its top right.

        Drawn on the box itself rather than from the arrows around it, so it reads the same
        for a block that starts or ends a row.
        """
        dashed = QPen(pen)
        dashed.setStyle(Qt.PenStyle.DashLine)
        painter.setPen(dashed)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        top = rect.top() - ARC + 3
        left, right = rect.left() + 12, rect.right() - 12
        path = QPainterPath(QPointF(left, rect.top()))
        path.lineTo(left, top + 4)
        path.quadTo(left, top, left + 4, top)
        path.lineTo(right - 4, top)
        path.quadTo(right, top, right, top + 4)
        path.lineTo(right, rect.top() - 5)
        painter.drawPath(path)
        _arrow_head(painter, QPointF(right, rect.top()), QPointF(0, 1), pen.color())


def _after_input(index: int | None) -> int | None:
    """A layer's box index: box 0 is the input."""
    return None if index is None else index + 1


def _arrow_head(painter: QPainter, tip: QPointF, direction: QPointF, colour: QColor) -> None:
    """A small filled triangle at ``tip`` pointing along ``direction`` (a unit axis)."""
    back = QPointF(tip.x() - 7 * direction.x(), tip.y() - 7 * direction.y())
    side = QPointF(-direction.y() * 4, direction.x() * 4)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(colour)
    painter.drawPolygon(QPolygonF([tip, back + side, back - side]))
