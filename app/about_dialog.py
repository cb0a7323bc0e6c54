"""The About box: versions of cnn-lab, Python, PyTorch, CUDA, cuDNN and the GPU driver, and
where cnn-lab keeps its data, with a button that copies it all for a bug report.

The versions need PyTorch, which the window never loads at start, so they are read in a
background Task and fill in when ready (about 2 s the first time on a CPU machine).
"""

from __future__ import annotations

from typing import Any

from PySide6 import __version__ as pyside_version
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from cnn_lab.app.bridge.task import Task
from cnn_lab.engine import __version__
from cnn_lab.engine.about import data_locations


def _versions(_progress: Any, _should_stop: Any) -> list[tuple[str, str]]:
    from cnn_lab.engine.about import versions

    return versions()


class AboutDialog(QDialog):
    def __init__(self, db_path: str, settings_file: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("About cnn-lab")
        self.setMinimumWidth(620)
        self.rows: dict[str, str] = {}
        title = QLabel(
            f"<h2>cnn-lab {__version__}</h2>A desktop experiment manager for convolutional "
            "neural networks: import images, build networks, train, tune and compare runs."
        )
        title.setWordWrap(True)
        self.versions = QFormLayout()
        self.loading = QLabel("Reading the versions of PyTorch and CUDA…")
        self.versions.addRow(self.loading)
        versions_box = QGroupBox("Versions")
        versions_box.setLayout(self.versions)
        places = QFormLayout()
        locations = [*data_locations(db_path), ("Settings file", settings_file)]
        for name, where in locations:
            label = QLabel(where)
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            label.setWordWrap(True)
            places.addRow(f"{name}:", label)
            self.rows[name] = where
        places_box = QGroupBox("Where cnn-lab keeps its data")
        places_box.setLayout(places)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.copy_button = buttons.addButton("Copy", QDialogButtonBox.ButtonRole.ActionRole)
        self.copy_button.setToolTip("Copy the versions and folders, e.g. for a bug report")
        self.copy_button.clicked.connect(self.copy)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(title)
        layout.addWidget(versions_box)
        layout.addWidget(places_box)
        layout.addWidget(buttons)
        self._add_version("Qt for Python", pyside_version)
        self.task = Task(_versions, name="about", parent=self)
        self.task.connect_outcomes(finished=self._show_versions, failed=self._versions_failed)
        self.task.start()

    def _add_version(self, name: str, value: str) -> None:
        label = QLabel(value)
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        label.setWordWrap(True)
        self.versions.addRow(f"{name}:", label)
        self.rows[name] = value

    def _show_versions(self, rows: list[tuple[str, str]]) -> None:
        self.loading.setVisible(False)
        for name, value in rows:
            self._add_version(name, value)

    def _versions_failed(self, message: str) -> None:
        self.loading.setText(f"Could not read the versions: {message}")

    def text(self) -> str:
        """Everything shown, one ``name: value`` a line."""
        return "\n".join(f"{name}: {value}" for name, value in self.rows.items())

    def copy(self) -> None:
        QGuiApplication.clipboard().setText(f"cnn-lab {__version__}\n{self.text()}")
