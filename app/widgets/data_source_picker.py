"""The Data panel's source box: the samples and recent sources, what the chosen one holds, and
the buttons that open a folder or a file.

It only offers sources; the panel imports them. ``opened`` carries a path the person picked
in a file dialog, which the panel treats like a drop or a source typed elsewhere.
"""

from __future__ import annotations

from PySide6.QtCore import QMimeData, Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from cnn_lab.app.models.data_form import (
    HELP,
    SAMPLE_PREFIX,
    is_sample,
    shown_source,
    source_description,
)
from cnn_lab.app.recent_sources import load_recent_sources
from cnn_lab.engine.data.samples import sample_description, sample_names

FILE_FILTER = (
    "Datasets (*.zip *.tar *.tar.gz *.tgz *.tar.bz2 *.tbz2 *.tar.xz *.txz *.csv *.tsv *.npz);;"
    "Archives (*.zip *.tar *.tar.gz *.tgz *.tar.bz2 *.tbz2 *.tar.xz *.txz);;"
    "CSV of path,label (*.csv *.tsv);;NumPy arrays (*.npz);;All files (*)"
)


def dropped_path(mime: QMimeData) -> str:
    """The local path of the first thing dragged onto the panel; empty for anything else."""
    urls = mime.urls() if mime.hasUrls() else []
    return urls[0].toLocalFile() if urls and urls[0].isLocalFile() else ""


class SourcePicker(QGroupBox):
    """The source combo (samples first, then opened paths), its description and Open buttons."""

    opened = Signal(str)
    """A folder or file chosen in a dialog."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Source (or drop a folder or file on this panel)", parent)
        self.combo = QComboBox()
        self.combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self.combo.setMinimumContentsLength(20)
        self.combo.setToolTip(HELP["source"])
        for name in sample_names():
            self.combo.addItem(f"Sample: {name}", f"{SAMPLE_PREFIX}{name}")
            self.combo.setItemData(
                self.combo.count() - 1, sample_description(name), Qt.ItemDataRole.ToolTipRole
            )
        for source in load_recent_sources():
            self.add_source(source)
        self.description = QLabel()
        self.description.setWordWrap(True)
        self.description.setStyleSheet("color: palette(mid);")
        self.open_folder_button = QPushButton("Open folder…")
        self.open_folder_button.setToolTip("A folder with one sub-folder of images per class")
        self.open_folder_button.clicked.connect(self._choose_folder)
        self.open_file_button = QPushButton("Open file…")
        self.open_file_button.setToolTip(
            "A zip or tar archive of class folders, a CSV of path,label, or a NumPy .npz"
        )
        self.open_file_button.clicked.connect(self._choose_file)
        buttons = QHBoxLayout()
        buttons.addWidget(self.open_folder_button)
        buttons.addWidget(self.open_file_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.combo)
        layout.addWidget(self.description)
        layout.addLayout(buttons)

    def current(self) -> str:
        return self.combo.currentData() or ""

    def add_source(self, source: str, position: int | None = None) -> int:
        """Add a non-sample source to the combo (after the samples); returns its index."""
        first_path = len(sample_names())
        if self.combo.count() == first_path and not is_sample(source):
            self.combo.insertSeparator(first_path)
        index = self.combo.count() if position is None else position
        self.combo.insertItem(index, shown_source(source), source)
        self.combo.setItemData(index, source, Qt.ItemDataRole.ToolTipRole)
        return index

    def index_of(self, source: str) -> int:
        """The combo index of ``source``, added (first after the samples) if it is not there."""
        index = self.combo.findData(source)
        if index < 0:
            index = self.add_source(source, position=len(sample_names()) + 1)
        return index

    def select_quietly(self, source: str) -> None:
        """Show ``source`` chosen without a change signal (the caller acts on it itself)."""
        self.combo.blockSignals(True)
        self.combo.setCurrentIndex(self.combo.findData(source))
        self.combo.blockSignals(False)

    def go_back(self, good: str, failed: str | None) -> None:
        """Choose ``good`` again, quietly, after ``failed`` did not import; the failed source
        leaves the combo unless it is a sample or a recent source."""
        index = self.combo.currentIndex()
        self.combo.blockSignals(True)
        self.combo.setCurrentIndex(self.combo.findData(good))
        if failed not in load_recent_sources() and not is_sample(str(failed)):
            self.combo.removeItem(index)
        self.combo.blockSignals(False)

    def show_description(self) -> None:
        text = source_description(self.current())
        self.description.setText(text)
        self.description.setToolTip(text)

    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a folder of class folders")
        if folder:
            self.opened.emit(folder)

    def _choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a dataset file", "", FILE_FILTER)
        if path:
            self.opened.emit(path)
