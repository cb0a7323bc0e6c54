"""The Data panel: pick a dataset, see its classes and examples, set the split."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from cnn_lab.app.bridge.background import run_in_background
from cnn_lab.app.state import AppState
from cnn_lab.app.widgets.image_grid import ClassImageGrid
from cnn_lab.engine.data.imageset import ImageSet
from cnn_lab.engine.data.samples import load_sample, sample_description, sample_names
from cnn_lab.engine.specs import DatasetSpec


class DataPanel(QWidget):
    """Shows the chosen dataset's classes, counts and a grid of examples."""

    title = "Data"

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.images: ImageSet | None = None

        self.source = QComboBox()
        for name in sample_names():
            self.source.addItem(f"Sample: {name}", f"sample:{name}")
            self.source.setItemData(self.source.count() - 1, sample_description(name), 3)
        self.description = QLabel()
        self.description.setWordWrap(True)
        self.limit = QSpinBox()
        self.limit.setRange(0, 10_000_000)
        self.limit.setSpecialValueText("all images")
        self.limit.setSingleStep(500)
        self.limit.setToolTip("Train on a stratified subset: quicker trials, lower accuracy.")
        self.val_fraction = QDoubleSpinBox()
        self.val_fraction.setRange(0.05, 0.5)
        self.val_fraction.setSingleStep(0.05)
        self.val_fraction.setValue(state.dataset.val_fraction)
        self.val_fraction.setToolTip("Share of each class held out to measure validation accuracy.")
        self.summary = QLabel("Loading…")
        self.grid = ClassImageGrid(per_class=12, scale=2)

        form = QFormLayout()
        form.addRow("Dataset", self.source)
        form.addRow("", self.description)
        form.addRow("Use at most", self.limit)
        form.addRow("Validation share", self.val_fraction)
        form.addRow("Contents", self.summary)
        settings = QGroupBox("Dataset")
        settings.setLayout(form)
        settings.setMaximumWidth(420)

        scroll = QScrollArea()
        scroll.setWidget(self.grid)
        scroll.setWidgetResizable(True)
        examples = QGroupBox("Examples per class")
        examples_layout = QVBoxLayout(examples)
        examples_layout.addWidget(scroll)

        layout = QHBoxLayout(self)
        left = QVBoxLayout()
        left.addWidget(settings)
        left.addStretch(1)
        layout.addLayout(left)
        layout.addWidget(examples, 1)

        self.source.currentIndexChanged.connect(self._on_source_changed)
        self.limit.valueChanged.connect(self._push)
        self.val_fraction.valueChanged.connect(self._push)
        self._on_source_changed()

    def _push(self) -> None:
        limit = self.limit.value() or None
        if limit is not None:
            limit = max(limit, 20)
        self.state.update(
            dataset=DatasetSpec(
                source=self.source.currentData(),
                limit=limit,
                val_fraction=round(self.val_fraction.value(), 4),
            )
        )

    def _on_source_changed(self) -> None:
        source = self.source.currentData()
        name = source.split(":", 1)[1]
        self.description.setText(sample_description(name))
        self.summary.setText("Generating…")
        self._push()
        run_in_background(lambda: load_sample(name), self._show, self._failed)

    def _show(self, images: ImageSet) -> None:
        self.images = images
        h, w, c = images.images.shape[1:]
        self.summary.setText(
            f"{len(images):,} images, {len(images.classes)} classes, {w}×{h} pixels, {c} channels"
        )
        self.grid.show_images(images.images, images.labels, images.classes)

    def _failed(self, message: str) -> None:
        self.summary.setText(f"Could not load the dataset: {message.splitlines()[0]}")


if __name__ == "__main__":
    from cnn_lab.app.panels._standalone import run_standalone

    raise SystemExit(run_standalone(DataPanel))
