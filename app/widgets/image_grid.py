"""A grid of example images, one row per class, drawn from a uint8 NHWC array."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QGridLayout, QLabel, QWidget


def to_pixmap(image: np.ndarray, scale: int = 1) -> QPixmap:
    """A QPixmap of one H x W x 3 (or H x W x 1, grey) uint8 image, enlarged by ``scale``.

    Enlarged without smoothing, so each pixel stays a visible square.
    """
    pixels = np.asarray(image)
    if pixels.ndim == 3 and pixels.shape[-1] == 1:
        pixels = pixels[..., 0]
    grey = pixels.ndim == 2
    pixels = np.ascontiguousarray(pixels if grey else pixels[..., :3])
    if scale > 1:
        pixels = np.ascontiguousarray(pixels.repeat(scale, axis=0).repeat(scale, axis=1))
    h, w = pixels.shape[:2]
    if grey:
        qimage = QImage(pixels.data, w, h, w, QImage.Format.Format_Grayscale8)
    else:
        qimage = QImage(pixels.data, w, h, 3 * w, QImage.Format.Format_RGB888)
    return QPixmap.fromImage(qimage.copy())  # copy: the numpy buffer is temporary


class ClassImageGrid(QWidget):
    """Shows up to ``per_class`` images of each class with the class name and count.

    ``max_side``, if given, shrinks (smoothly) any cell larger than that many pixels, so big
    images do not push the grid off the screen.
    """

    def __init__(
        self,
        per_class: int = 8,
        scale: int = 2,
        parent: QWidget | None = None,
        *,
        max_side: int | None = None,
    ) -> None:
        super().__init__(parent)
        self.per_class = per_class
        self.scale = scale
        self.max_side = max_side
        self._layout = QGridLayout(self)
        self._layout.setSpacing(4)
        self._layout.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.rows = 0
        self.cells: list[QLabel] = []

    def clear(self) -> None:
        while self._layout.count():
            item = self._layout.takeAt(0)
            if item.widget():
                item.widget().deleteLater()
        self.rows = 0
        self.cells = []

    def show_images(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        classes: tuple[str, ...],
        counts: Sequence[int] | None = None,
    ) -> None:
        """Show each class's first images; ``counts`` overrides the per-class counts shown."""
        self.clear()
        for class_index, name in enumerate(classes):
            members = np.flatnonzero(labels == class_index)
            count = len(members) if counts is None else counts[class_index]
            caption = QLabel(f"{name}\n{count:,} images")
            caption.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self._layout.addWidget(caption, class_index, 0)
            for column, index in enumerate(members[: self.per_class], start=1):
                cell = QLabel()
                cell.setPixmap(self._pixmap(images[index]))
                self._layout.addWidget(cell, class_index, column)
                self.cells.append(cell)
            self.rows += 1

    def pixmaps(self) -> list[QPixmap]:
        """The pixmaps shown, row by row (class by class)."""
        return [cell.pixmap() for cell in self.cells]

    def _pixmap(self, image: np.ndarray) -> QPixmap:
        pixmap = to_pixmap(image, self.scale)
        if self.max_side and max(pixmap.width(), pixmap.height()) > self.max_side:
            pixmap = pixmap.scaled(
                self.max_side,
                self.max_side,
                Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.SmoothTransformation,
            )
        return pixmap
