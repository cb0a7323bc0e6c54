"""The first-run card: with no runs in the database, offer a sample and a preset, and one click
trains them; plus the guided tour, a few steps that walk through the panels.

The card only asks; the window does the work (it owns the panels and the job queue). It shows
while the database has no runs, until the person hides it (remembered in the settings) or a
run starts. Help ▸ Welcome brings it back.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from cnn_lab.engine.data.samples import sample_description, sample_names

DEFAULT_SAMPLE = "shapes"
DEFAULT_PRESET = "small_cnn"

CARD_STYLE = (
    "#welcome-card, #tour-bar { border: 1px solid palette(highlight); border-radius: 6px; "
    "background: palette(base); }"
)


def _cnn_lab_presets() -> list[tuple[str, str]]:
    """(name, description) of cnn-lab's own presets: small, and quick on a CPU."""
    from cnn_lab.engine.models.registry import all_presets

    return [(p.name, p.description) for p in all_presets() if p.family == "cnn-lab"]


class WelcomeCard(QFrame):
    train_requested = Signal(str, str)  # sample name, preset name
    tour_requested = Signal()
    import_requested = Signal()
    hide_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("welcome-card")
        self.setStyleSheet(CARD_STYLE)
        title = QLabel("<b>Welcome to cnn-lab.</b> This run database has no runs yet.")
        text = QLabel(
            "Train a first network on a built-in sample (generated here, nothing is "
            "downloaded): it takes about a minute on a CPU, and every panel fills in as it "
            "trains. Or import your own images: drop a folder of class folders, a .zip or "
            ".tar archive, or a CSV anywhere on this window."
        )
        text.setWordWrap(True)
        self.sample = QComboBox()
        for name in sample_names():
            self.sample.addItem(f"Sample: {name}", name)
            self.sample.setItemData(
                self.sample.count() - 1, sample_description(name), Qt.ItemDataRole.ToolTipRole
            )
        self.sample.setCurrentIndex(max(0, self.sample.findData(DEFAULT_SAMPLE)))
        self.sample.setToolTip("The built-in dataset to train on (hover an item for what it is)")
        self.preset = QComboBox()
        for name, description in _cnn_lab_presets():
            self.preset.addItem(name, name)
            self.preset.setItemData(
                self.preset.count() - 1, description, Qt.ItemDataRole.ToolTipRole
            )
        self.preset.setCurrentIndex(max(0, self.preset.findData(DEFAULT_PRESET)))
        self.preset.setToolTip(
            "The network: small_cnn trains fastest; the larger presets reach higher accuracy "
            "and take longer per epoch"
        )
        self.train_button = QPushButton("Train the sample")
        self.train_button.setDefault(True)
        self.train_button.setToolTip(
            "Choose the sample and the preset in Data and Architecture, keep the "
            "Hyperparameters as they are, and train (Run ▸ Train)"
        )
        self.import_button = QPushButton("Import my images…")
        self.tour_button = QPushButton("Take the tour")
        self.hide_button = QPushButton("Hide")
        self.hide_button.setToolTip("Hide this card (Help ▸ Welcome shows it again)")
        self.train_button.clicked.connect(
            lambda: self.train_requested.emit(self.sample.currentData(), self.preset.currentData())
        )
        self.import_button.clicked.connect(self.import_requested)
        self.tour_button.clicked.connect(self.tour_requested)
        self.hide_button.clicked.connect(self.hide_requested)

        row = QHBoxLayout()
        row.addWidget(QLabel("Dataset:"))
        row.addWidget(self.sample)
        row.addWidget(QLabel("Network:"))
        row.addWidget(self.preset)
        row.addWidget(self.train_button)
        row.addSpacing(16)
        row.addWidget(self.import_button)
        row.addWidget(self.tour_button)
        row.addStretch(1)
        row.addWidget(self.hide_button)
        layout = QVBoxLayout(self)
        layout.addWidget(title)
        layout.addWidget(text)
        layout.addLayout(row)


@dataclass(frozen=True)
class TourStep:
    panel: str  # a key of MainWindow.panels
    title: str
    text: str


TOUR: tuple[TourStep, ...] = (
    TourStep(
        "data",
        "Data",
        "Pick a sample or drop your own images here. cnn-lab checks them (corrupt files, "
        "duplicates, class imbalance) before training, and shows the split and augmentation.",
    ),
    TourStep(
        "architecture",
        "Architecture",
        "Start from a preset or build from layers. Shapes, parameters, FLOPs and memory update "
        "as you edit; Edit ▸ Undo takes back any change.",
    ),
    TourStep(
        "hyperparameters",
        "Hyperparameters",
        "The training recipe. Hover any option: its tooltip says what it does to speed and to "
        "accuracy. 'Fast defaults' picks precision and memory format for this machine.",
    ),
    TourStep(
        "tune",
        "Tune",
        "Find a learning rate and the largest batch that fits before a long run, and let the "
        "speed advisor measure what makes a step faster on your hardware.",
    ),
    TourStep(
        "sweep",
        "Sweep",
        "Search many settings at once: grid, random or Bayesian, with pruning of poor trials "
        "and k-fold cross-validation; trials share the GPUs or the CPU.",
    ),
    TourStep(
        "monitor",
        "Monitor",
        "Press Train (Ctrl+Return). Loss, accuracy, throughput and GPU use stream here, and a "
        "verdict says what slows the run and what to change.",
    ),
    TourStep(
        "runs",
        "Runs",
        "Every run is saved in the run database. Search, tag, note, archive, resume, export "
        "and write reports here.",
    ),
    TourStep(
        "compare",
        "Compare",
        "Select two or more runs in Runs and press Compare: curves overlay and the settings "
        "that differ are listed.",
    ),
    TourStep(
        "evaluate",
        "Evaluate",
        "Per-class scores, the confusion matrix and the worst mistakes of the run selected in "
        "Runs.",
    ),
    TourStep(
        "predict",
        "Predict",
        "Drop images on a trained run to see its top classes; save the table as CSV.",
    ),
)


class TourBar(QFrame):
    """One step of the tour at a time, above the panels; the window switches the tab."""

    step_shown = Signal(str)  # the panel key of the step now shown
    ended = Signal()

    def __init__(self, steps: tuple[TourStep, ...] = TOUR, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("tour-bar")
        self.setStyleSheet(CARD_STYLE)
        self.steps = steps
        self.index = 0
        self.heading = QLabel()
        self.text = QLabel()
        self.text.setWordWrap(True)
        self.back_button = QPushButton("Back")
        self.next_button = QPushButton("Next")
        self.close_button = QPushButton("End the tour")
        self.back_button.clicked.connect(lambda: self.show_step(self.index - 1))
        self.next_button.clicked.connect(self._next)
        self.close_button.clicked.connect(self.end)
        words = QVBoxLayout()
        words.addWidget(self.heading)
        words.addWidget(self.text)
        layout = QHBoxLayout(self)
        layout.addLayout(words, 1)
        layout.addWidget(self.back_button)
        layout.addWidget(self.next_button)
        layout.addWidget(self.close_button)
        self.setVisible(False)

    def start(self) -> None:
        self.setVisible(True)
        self.show_step(0)

    def show_step(self, index: int) -> None:
        self.index = max(0, min(index, len(self.steps) - 1))
        step = self.steps[self.index]
        count = len(self.steps)
        self.heading.setText(f"<b>Tour, step {self.index + 1} of {count}: {step.title}</b>")
        self.text.setText(step.text)
        self.back_button.setEnabled(self.index > 0)
        last = self.index == len(self.steps) - 1
        self.next_button.setText("Done" if last else "Next")
        self.step_shown.emit(step.panel)

    def _next(self) -> None:
        if self.index == len(self.steps) - 1:
            self.end()
        else:
            self.show_step(self.index + 1)

    def end(self) -> None:
        self.setVisible(False)
        self.ended.emit()
