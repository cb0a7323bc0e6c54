"""A grid of example images, one row per class, drawn from a uint8 NHWC array."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QGridLayout, QLabel, QWidget


def to_pixmap(image: np.ndarray, scale: int = 1) -> QPixmap:
    """A QPixmap of one H x W x 3 uint8 image, enlarged by ``scale`` without smoothing."""
    rgb = np.ascontiguousarray(image[..., :3])
    if scale > 1:
        rgb = np.ascontiguousarray(rgb.repeat(scale, axis=0).repeat(scale, axis=1))
    h, w, _ = rgb.shape
    qimage = QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888)
    return QPixmap.fromImage(qimage.copy())  # copy: the numpy buffer is temporary


class ClassImageGrid(QWidget):
    """Shows up to ``per_class`` images of each class with the class name and count."""

    def __init__(self, per_class: int = 8, scale: int = 2, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.per_class = per_class
        self.scale = scale
        self._layout = QGridLayout(self)
        self._layout.setSpacing(4)
        self.rows = 0

    def show_images(self, images: np.ndarray, labels: np.ndarray, classes: tuple[str, ...]) -> None:
        while self._layout.count():
            item = self._layout.takeAt(0)
            if item.widget():
                item.widget().deleteLater()
        self.rows = 0
        for class_index, name in enumerate(classes):
            members = np.flatnonzero(labels == class_index)
            caption = QLabel(f"{name}\n{len(members)} images")
            caption.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self._layout.addWidget(caption, class_index, 0)
            for column, index in enumerate(members[: self.per_class], start=1):
                cell = QLabel()
                cell.setPixmap(to_pixmap(images[index], self.scale))
                self._layout.addWidget(cell, class_index, column)
            self.rows += 1
