"""AppState: what the person has chosen so far, shared by the panels.

Panels never talk to each other: each edits its part of the state and listens to
``changed``. The state builds the RunSpec that the JobController receives, so a spec is
always a frozen value, never a live widget.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal

from cnn_lab.app.store_link import StoreLink
from cnn_lab.engine.models import InputShape
from cnn_lab.engine.specs import ArchitectureSpec, DatasetSpec, RunSpec, TrainSpec

# What the networks are sized for until a dataset has been imported: the sample datasets.
DEFAULT_INPUT = InputShape(channels=3, height=32, width=32, classes=10)


class AppState(QObject):
    changed = Signal()
    db_changed = Signal(str)
    input_shape_changed = Signal()

    def __init__(self, db_path: str | Path, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._db_path = str(db_path)
        self.store = StoreLink(self._db_path, parent=self)
        """The window's one connection to the run store: panels read and write through it,
        off the GUI thread (app/store_link.py)."""
        self.dataset = DatasetSpec()
        self.architecture = ArchitectureSpec()
        self.train = TrainSpec()
        self.name = ""
        self.input_shape = DEFAULT_INPUT
        self.input_known = False  # True once a dataset import has said what the images are

    @property
    def db_path(self) -> str:
        """The run store's location: a SQLite file's path or a ``postgresql://`` address.

        Kept as a string, never a ``Path``, which would collapse an address's ``//``."""
        return self._db_path

    def set_db_path(self, path: str | Path) -> None:
        self._db_path = str(path)
        self.store.set_location(self._db_path)
        self.db_changed.emit(self._db_path)

    def update(
        self,
        *,
        dataset: DatasetSpec | None = None,
        architecture: ArchitectureSpec | None = None,
        train: TrainSpec | None = None,
    ) -> None:
        if dataset is not None:
            self.dataset = dataset
        if architecture is not None:
            self.architecture = architecture
        if train is not None:
            self.train = train
        self.changed.emit()

    def set_input_shape(self, shape: InputShape) -> None:
        """The imported dataset's channels, image size and classes, for sizing networks."""
        self.input_known = True
        if shape != self.input_shape:
            self.input_shape = shape
            self.input_shape_changed.emit()

    def run_spec(self) -> RunSpec:
        return RunSpec(
            name=self.name, dataset=self.dataset, architecture=self.architecture, train=self.train
        )
