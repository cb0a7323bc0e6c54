"""AppState: what the person has chosen so far, shared by the panels.

Panels never talk to each other: each edits its part of the state and listens to
``changed``. The state builds the RunSpec that the JobController receives, so a spec is
always a frozen value, never a live widget.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal

from cnn_lab.engine.specs import ArchitectureSpec, DatasetSpec, RunSpec, TrainSpec
from cnn_lab.engine.store import RunStore


class AppState(QObject):
    changed = Signal()
    db_changed = Signal(str)

    def __init__(self, db_path: str | Path, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._db_path = str(db_path)
        self.dataset = DatasetSpec()
        self.architecture = ArchitectureSpec()
        self.train = TrainSpec()
        self.name = ""

    @property
    def db_path(self) -> str:
        return self._db_path

    def set_db_path(self, path: str | Path) -> None:
        self._db_path = str(path)
        self.db_changed.emit(self._db_path)

    def open_store(self) -> RunStore:
        return RunStore.open(self._db_path)

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

    def run_spec(self) -> RunSpec:
        return RunSpec(
            name=self.name, dataset=self.dataset, architecture=self.architecture, train=self.train
        )
