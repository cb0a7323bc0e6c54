"""A gallery of captioned image tiles, for pictures that come one by one rather than per class.

ClassImageGrid (image_grid.py) lays images out one row per class; a list of mistakes or of
predictions has no such rows, so the tiles here simply fill a fixed number of columns. The
captions can be shown before the pictures (which are often loaded in the background): a
tile waits with a grey square until ``set_images`` fills it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QGridLayout, QLabel, QVBoxLayout, QWidget

from cnn_lab.app.widgets.image_grid import to_pixmap
from cnn_lab.app.widgets.plain_label import plain_label

TILE = 96
"""Side of a tile's picture in pixels: small images are enlarged to it, big ones shrunk."""
CAPTION_LINES = 2
CAPTION_EXTRA = 40
"""A caption may be this much wider than its picture."""


def thumbnail(image: np.ndarray, side: int = TILE) -> QPixmap:
    """``image`` (uint8 H×W×C) fitted into ``side`` pixels; small ones keep sharp pixels."""
    height, width = image.shape[:2]
    scale = max(1, side // max(height, width, 1))
    pixmap = to_pixmap(image, scale)
    if max(pixmap.width(), pixmap.height()) > side:
        pixmap = pixmap.scaled(
            side,
            side,
            Qt.AspectRatioMode.KeepAspectRatio,
            Qt.TransformationMode.SmoothTransformation,
        )
    return pixmap


class ImageGallery(QWidget):
    """Tiles of (picture, caption), ``columns`` to a row, in the order given."""

    def __init__(self, columns: int = 6, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.columns = columns
        self._layout = QGridLayout(self)
        self._layout.setSpacing(8)
        self._layout.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.pictures: list[QLabel] = []
        self.captions: list[QLabel] = []

    def count(self) -> int:
        return len(self.pictures)

    def clear(self) -> None:
        while self._layout.count():
            item = self._layout.takeAt(0)
            if item.widget():
                item.widget().deleteLater()
        self.pictures, self.captions = [], []

    def set_items(self, captions: Sequence[str], tooltips: Sequence[str] = ()) -> None:
        """One tile per caption, pictures still empty; ``tooltips`` name each tile in full."""
        self.clear()
        for i, caption in enumerate(captions):
            tile = QWidget()
            column = QVBoxLayout(tile)
            column.setContentsMargins(0, 0, 0, 0)
            column.setSpacing(2)
            picture = QLabel()
            picture.setFixedSize(TILE, TILE)
            picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
            picture.setStyleSheet("background: palette(midlight);")
            text = plain_label(caption, selectable=False)
            text.setAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
            # A fixed tile: wrapped labels size themselves late, and rows would overlap.
            lines = text.fontMetrics().lineSpacing() * CAPTION_LINES
            text.setFixedSize(TILE + CAPTION_EXTRA, lines)
            tile.setFixedSize(TILE + CAPTION_EXTRA, TILE + column.spacing() + lines)
            column.addWidget(picture, 0, Qt.AlignmentFlag.AlignHCenter)
            column.addWidget(text)
            if i < len(tooltips):
                tile.setToolTip(tooltips[i])
            self._layout.addWidget(tile, i // self.columns, i % self.columns)
            self.pictures.append(picture)
            self.captions.append(text)

    def set_images(self, images: Sequence[np.ndarray | None]) -> None:
        """Fill the tiles in order; None leaves a tile's grey square (its picture is gone)."""
        for picture, image in zip(self.pictures, images, strict=False):
            if image is not None:
                picture.setStyleSheet("")
                picture.setPixmap(thumbnail(image))

    def shown_images(self) -> int:
        """How many tiles have a picture."""
        return sum(not p.pixmap().isNull() for p in self.pictures)


__all__ = ["TILE", "ImageGallery", "thumbnail"]
