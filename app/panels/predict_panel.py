"""The Predict panel: drop images (or folders) on a trained run and see what it thinks.

Each file becomes a row: a thumbnail, the file, and the run's top classes with their
probabilities, or the reason a file could not be read (a broken file is a row, never the end
of the batch). The predictions can be saved as CSV, the same file ``cnn-lab predict --csv``
writes.

Preprocessing is the engine's (engine/evaluation/predict.py): the run's resize policy, and
its training split's mean and standard deviation, so a training image gets the answer
evaluation gave it. Building that Predictor costs a dataset read and loading the weights,
so it is kept between drops and rebuilt only when another run is chosen. Every class's
probability is kept, so changing "Top" only redraws the rows.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QColor, QDragEnterEvent, QDropEvent, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from cnn_lab.app.bridge.task import Task
from cnn_lab.app.models import predict_form as form
from cnn_lab.app.models.evaluation_readiness import RunReading, ask_run
from cnn_lab.app.models.predict_work import THUMBNAIL, Predicted, predict_with_thumbnails
from cnn_lab.app.state import AppState
from cnn_lab.app.widgets.empty_state import EmptyState
from cnn_lab.app.widgets.image_gallery import thumbnail
from cnn_lab.app.widgets.task_controls import Outcome, TaskControls
from cnn_lab.engine.data.decode import IMAGE_SUFFIXES

ERROR_COLOUR = QColor("#c62828")
TABLE_COLUMNS = ("Image", "File", "Top classes")
IMAGE_FILTER = "Images (" + " ".join(f"*{s}" for s in sorted(IMAGE_SUFFIXES)) + ")"


class PredictPanel(QWidget):
    title = "Predict"
    predicted = Signal(int)
    """Rows were added (their count), for whoever wants to know."""

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.run_id: int | None = None
        self.predictions: list[Any] = []
        """engine Predictions shown, every class ranked (``shown_predictions`` cuts to top)."""
        self._thumbnails: list[QPixmap | None] = []
        self._predictor: Any = None
        self._predictor_run: int | None = None
        self._pending: list[str] = []
        self._readiness = form.predict_readiness(RunReading(None))
        """What the run as last read allows, and the empty state's words for it."""
        self.setAcceptDrops(True)

        self.controls = TaskControls(
            self, cancelled_text="Prediction cancelled.", stage_in_status=True
        )
        self.status = self.controls.status
        self.progress = self.controls.progress
        self.cancel_button = self.controls.cancel_button
        self.top = QSpinBox()
        self.top.setRange(1, 100)
        self.top.setValue(form.DEFAULT_TOP)
        self.top.setToolTip("How many of the most likely classes to show and save per image.")
        self.add_images_button = QPushButton("Add images…")
        self.add_folder_button = QPushButton("Add folder…")
        self.clear_button = QPushButton("Clear")
        self.save_button = QPushButton("Save CSV…")
        self.save_button.setToolTip(
            "One row per image: the file, then class and probability pairs, then any error."
        )
        self.table = QTableWidget(0, len(TABLE_COLUMNS))
        self.table.setHorizontalHeaderLabels(TABLE_COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(THUMBNAIL + 6)
        self.table.setIconSize(QSize(THUMBNAIL, THUMBNAIL))
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setAlternatingRowColors(True)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Fixed)
        header.resizeSection(0, THUMBNAIL + 12)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Interactive)
        header.resizeSection(1, 320)
        header.setStretchLastSection(True)
        self.empty_state = EmptyState(replaces=[self.table])

        top = QHBoxLayout()
        top.addWidget(self.status, 1)
        top.addWidget(self.progress)
        top.addWidget(self.cancel_button)
        top.addWidget(QLabel("Top:"))
        top.addWidget(self.top)
        top.addWidget(self.add_images_button)
        top.addWidget(self.add_folder_button)
        top.addWidget(self.clear_button)
        top.addWidget(self.save_button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.empty_state, 1)

        self.add_images_button.clicked.connect(self._choose_images)
        self.add_folder_button.clicked.connect(self._choose_folder)
        self.clear_button.clicked.connect(self.clear)
        self.save_button.clicked.connect(self._choose_csv)
        self.cancel_button.clicked.connect(self.cancel)
        self.top.valueChanged.connect(lambda _k: self._fill_table())
        state.db_changed.connect(lambda _path: self.set_run(None))
        self.set_run(None)

    @property
    def predictor(self) -> Any:
        """The chosen run's engine Predictor, kept between drops (None until first used)."""
        return self._predictor if self._predictor_run == self.run_id else None

    @property
    def task(self) -> Task | None:
        """The prediction running now (None when idle)."""
        return self.controls.task

    # ----------------------------------------------------------------- choosing a run

    def set_run(self, run_id: int | None) -> None:
        """Predict with ``run_id`` from now on; another run clears the rows of the last one.

        The rows go because they are that run's answers; the cached Predictor goes with them.
        """
        if run_id != self.run_id:
            self.controls.drop()
            self._pending = []
            self._predictor = self._predictor_run = None
            self.run_id = run_id
            self.clear()
        self._check_run()

    def _check_run(self) -> None:
        ask_run(self.state.store.call, self.run_id, self._take_reading, f"predict-{id(self)}")

    def _take_reading(self, reading: RunReading) -> None:
        if reading.run_id != self.run_id:
            return  # another run was chosen while the store answered
        self._readiness = form.predict_readiness(reading)
        # A usable run's invitation would hide what a running or finished batch says.
        if not self._readiness.usable or (self.task is None and not self.predictions):
            self.status.say(self._readiness.message, error=self._readiness.error)
        self._update_controls()

    # ----------------------------------------------------------------- predicting

    def predict_paths(self, paths: list[str]) -> Task | None:
        """Predict the files (and folders' images) in the background; rows are appended.

        While a prediction runs, more paths wait and follow it (the Predictor is not shared
        between threads); the Task returned is then the one already running.
        """
        paths = [str(p) for p in paths]
        if not paths or self.run_id is None or not self._readiness.usable:
            return None
        if self.task is not None:
            self._pending += paths
            return self.task
        run_id = self.run_id
        predictor = self._predictor if self._predictor_run == run_id else None
        work = partial(predict_with_thumbnails, self.state.db_path, run_id, predictor, paths)
        task = Task(work, name="predict", parent=self)
        loaded = predictor is not None
        self.controls.follow(
            task,
            status=f"Predicting with run {run_id}…"
            if loaded
            else f"Loading run {run_id} and its data's scaling…",
            stage="Predicting" if loaded else "Loading the run",
            finished=self._on_predicted,
            ended=self._after_task,
        )
        self._update_controls()
        return task.start()

    def cancel(self) -> None:
        """Stop the running prediction, and drop the paths waiting for it."""
        self._pending = []
        self.controls.cancel()

    def _on_predicted(self, result: Predicted) -> None:
        self._predictor, self._predictor_run = result.predictor, result.run_id
        self.predictions += result.predictions
        self._thumbnails += [
            None if image is None else thumbnail(image, THUMBNAIL) for image in result.thumbnails
        ]
        self._fill_table()
        self.status.say(form.predicted_text(result.run_id, result.predictions))
        self.predicted.emit(len(result.predictions))

    def _after_task(self, outcome: Outcome) -> None:
        """Start on the paths that arrived while the last prediction ran (none after a
        failure: they would fail the same way)."""
        self._update_controls()
        pending, self._pending = self._pending, []
        if pending and outcome != "failed":
            self.predict_paths(pending)

    # ----------------------------------------------------------------- the rows

    def shown_predictions(self) -> list[Any]:
        """The predictions as shown and saved: each cut to the chosen top classes."""
        return form.shown(self.predictions, self.top.value())

    def clear(self) -> None:
        self.predictions, self._thumbnails = [], []
        self._fill_table()
        self._update_controls()

    def _fill_table(self) -> None:
        shown = self.shown_predictions()
        self.table.setRowCount(len(shown))
        for row, (p, pixmap) in enumerate(zip(shown, self._thumbnails, strict=True)):
            image = QTableWidgetItem()
            if pixmap is not None:
                image.setData(Qt.ItemDataRole.DecorationRole, pixmap)
            self.table.setItem(row, 0, image)
            name = QTableWidgetItem(Path(p.image).name)
            name.setToolTip(p.image)
            self.table.setItem(row, 1, name)
            answer = QTableWidgetItem(form.answer_text(p))
            if p.error:
                answer.setForeground(ERROR_COLOUR)
            answer.setToolTip(answer.text())
            self.table.setItem(row, 2, answer)

    def save_csv(self, path: str) -> bool:
        """Write the shown predictions as CSV; say where, or why not, in the status line."""
        from cnn_lab.engine.evaluation.predict import write_csv

        try:
            write_csv(self.shown_predictions(), path)
        except OSError as exc:
            self.status.say(f"Could not write {path}: {exc.strerror or exc}.", error=True)
            return False
        self.status.say(f"Saved {len(self.predictions):,} predictions to {path}.")
        return True

    # ----------------------------------------------------------------- files in

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if self._readiness.usable and _local_paths(event):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = _local_paths(event)
        if paths and self._readiness.usable:
            event.acceptProposedAction()
            self.predict_paths(paths)
        else:
            event.ignore()

    def _choose_images(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Images to predict", "", IMAGE_FILTER)
        if paths:
            self.predict_paths(paths)

    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "A folder of images to predict")
        if folder:
            self.predict_paths([folder])

    def _choose_csv(self) -> None:
        name = f"predictions-run-{self.run_id}.csv"
        path, _ = QFileDialog.getSaveFileName(self, "Save predictions", name, "CSV (*.csv)")
        if path:
            self.save_csv(path)

    def _update_controls(self) -> None:
        busy = self.task is not None
        for button in (self.add_images_button, self.add_folder_button):
            button.setEnabled(self._readiness.usable)
        self.clear_button.setEnabled(bool(self.predictions) and not busy)
        self.save_button.setEnabled(bool(self.predictions))
        self.empty_state.set_message(*self._readiness.empty_text(form.PREDICTING if busy else None))
        self.empty_state.set_empty(not self.predictions)

    def is_empty(self) -> bool:
        """Whether the panel shows its empty state (no rows) instead of the table."""
        return self.empty_state.is_shown()


def _local_paths(event: QDragEnterEvent | QDropEvent) -> list[str]:
    mime = event.mimeData()
    if not mime.hasUrls():
        return []
    return [url.toLocalFile() for url in mime.urls() if url.isLocalFile()]


if __name__ == "__main__":
    from cnn_lab.app.panels._standalone import run_from_argv, run_standalone

    def _standalone_panel(state: AppState) -> PredictPanel:
        panel = PredictPanel(state)
        panel.set_run(run_from_argv())
        return panel

    raise SystemExit(run_standalone(_standalone_panel))
