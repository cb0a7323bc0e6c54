"""Render resources/cnn-lab.svg to the PNG sizes the .desktop entry and the installers use.

Run with the project's venv: ``python packaging/render_icons.py`` (works headless: it sets
QT_QPA_PLATFORM=offscreen unless a platform is already chosen).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

RESOURCES = Path(__file__).resolve().parent.parent / "resources"
SVG = RESOURCES / "cnn-lab.svg"
SIZES = (48, 128, 256)


def png_path(size: int) -> Path:
    return RESOURCES / f"cnn-lab-{size}.png"


def main() -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    _app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])
    renderer = QSvgRenderer(str(SVG))
    if not renderer.isValid():
        sys.stderr.write(f"cannot read {SVG}\n")
        return 1
    for size in SIZES:
        image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
        image.fill(Qt.GlobalColor.transparent)
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        renderer.render(painter)
        painter.end()
        if not image.save(str(png_path(size)), "PNG"):
            sys.stderr.write(f"cannot write {png_path(size)}\n")
            return 1
        print(png_path(size))
    return 0


if __name__ == "__main__":
    sys.exit(main())
