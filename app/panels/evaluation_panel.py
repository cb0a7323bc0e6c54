"""The Evaluate panel: how a finished run does on images it never trained on.

It shows the accuracy and loss on the run's test split (or its validation split), precision,
recall and F1 per class, the confusion matrix, and the misclassified images with the highest
loss, the ones worth looking at first (mislabelled, ambiguous or truly hard).

The engine does the scoring (engine/evaluation/evaluate.py) and the result is kept in the
run's summary as ``evaluation``, as ``cnn-lab evaluate`` keeps it; so a run evaluated once,
here or on a terminal, shows its result at once, and "Evaluate again" is a choice, not a
wait. Evaluating loads torch, the weights and the dataset, so it runs in a background Task;
the pictures of the mistakes come from the dataset's decoded cache, also in the background.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from typing import Any

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from cnn_lab.app.bridge.task import Task
from cnn_lab.app.models import evaluation_form as form
from cnn_lab.app.models.evaluation_readiness import RunReading, ask_run
from cnn_lab.app.models.evaluation_work import (
    Evaluated,
    evaluate_run_and_images,
    load_mistake_images,
)
from cnn_lab.app.state import AppState
from cnn_lab.app.widgets.class_scores_table import ClassScoresTable
from cnn_lab.app.widgets.confusion_matrix import ConfusionMatrix
from cnn_lab.app.widgets.empty_state import EmptyState
from cnn_lab.app.widgets.image_gallery import ImageGallery
from cnn_lab.app.widgets.plain_label import plain_label
from cnn_lab.app.widgets.task_controls import TaskControls


class EvaluationPanel(QWidget):
    title = "Evaluate"
    evaluated = Signal(int)
    """A run's evaluation was stored in its summary (the window may refresh what shows it)."""

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.run_id: int | None = None
        self.evaluation: dict[str, Any] | None = None
        self.images_task: Task | None = None
        self.mistake_limit = form.MISTAKES
        self._readiness = form.evaluation_readiness(RunReading(None))
        """What the run as last read allows, and the empty state's words for it."""

        self.controls = TaskControls(self, cancelled_text="Evaluation cancelled.")
        self.status = self.controls.status
        self.progress = self.controls.progress
        self.cancel_button = self.controls.cancel_button
        self.split = QComboBox()
        for label, value in form.SPLITS.items():
            self.split.addItem(label, value)
        self.split.setToolTip(
            "The images to score. The test split is what the run never saw, not even to pick "
            "its best epoch; a run that held none out can be scored on its validation split."
        )
        self.evaluate_button = QPushButton("Evaluate")

        self.summary = plain_label()
        self.table = ClassScoresTable()
        self.matrix = ConfusionMatrix()
        self.gallery_label = plain_label()
        self.gallery = ImageGallery()
        gallery_scroll = QScrollArea()
        gallery_scroll.setWidgetResizable(True)
        gallery_scroll.setWidget(self.gallery)

        top = QHBoxLayout()
        top.addWidget(self.status, 1)
        top.addWidget(self.progress)
        top.addWidget(QLabel("Split:"))
        top.addWidget(self.split)
        top.addWidget(self.evaluate_button)
        top.addWidget(self.cancel_button)
        scores = QSplitter(Qt.Orientation.Horizontal)
        scores.addWidget(self.table)
        scores.addWidget(self.matrix)
        scores.setSizes([350, 450])
        mistakes = QWidget()
        mistakes_layout = QVBoxLayout(mistakes)
        mistakes_layout.setContentsMargins(0, 0, 0, 0)
        mistakes_layout.addWidget(self.gallery_label)
        mistakes_layout.addWidget(gallery_scroll, 1)
        body = QSplitter(Qt.Orientation.Vertical)
        body.addWidget(scores)
        body.addWidget(mistakes)
        body.setSizes([400, 300])
        self.results = QWidget()
        results_layout = QVBoxLayout(self.results)
        results_layout.setContentsMargins(0, 0, 0, 0)
        results_layout.addWidget(self.summary)
        results_layout.addWidget(body, 1)
        self.empty_state = EmptyState(replaces=[self.results])
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.results, 1)
        layout.addWidget(self.empty_state, 1)

        self.evaluate_button.clicked.connect(lambda: self.evaluate())
        self.cancel_button.clicked.connect(self.cancel)
        state.db_changed.connect(lambda _path: self.set_run(None))
        self.empty_state.set_empty(True)
        self.set_run(None)

    @property
    def task(self) -> Task | None:
        """The evaluation running now (None when idle)."""
        return self.controls.task

    # ----------------------------------------------------------------- choosing a run

    def set_run(self, run_id: int | None) -> None:
        """Show ``run_id``'s stored evaluation, or offer to evaluate it; None: nothing chosen.

        Choosing another run stops an evaluation in progress: its result would show nowhere.
        The same run again only re-reads it (it may have finished training since).
        """
        if run_id != self.run_id:
            self._cancel_tasks()
            self.run_id = run_id
            self._show_evaluation(None)
        self._show_run()

    def _show_run(self) -> None:
        ask_run(self.state.store.call, self.run_id, self._take_reading, f"evaluate-{id(self)}")

    def _take_reading(self, reading: RunReading) -> None:
        if reading.run_id != self.run_id:
            return  # another run was chosen while the store answered
        self._readiness = form.evaluation_readiness(reading)
        stored = form.stored_evaluation(reading)
        if self.task is None:  # while evaluating, the progress line says how it goes
            self.status.say(self._readiness.message, error=self._readiness.error)
            if isinstance(stored, dict) and stored != self.evaluation:
                self._show_evaluation(stored)
        self._update_controls()

    # ----------------------------------------------------------------- evaluating

    def evaluate(self, split: str | None = None) -> Task | None:
        """Evaluate the chosen run in the background on ``split`` (default: the chooser's)."""
        if self.task is not None:
            return self.task
        if self.run_id is None or not self._readiness.usable:
            return None
        run_id = self.run_id
        chosen = split or str(self.split.currentData())
        work = partial(
            evaluate_run_and_images, self.state.db_path, run_id, chosen, self.mistake_limit
        )
        task = Task(work, name="evaluate", parent=self)
        self.controls.follow(
            task,
            status=f"Evaluating run {run_id}…",
            stage="Loading the run",
            finished=self._on_evaluated,
            ended=lambda _outcome: self._update_controls(),
        )
        self._update_controls()
        return task.start()

    def cancel(self) -> None:
        """Stop the evaluation running now (the window asks so when it closes)."""
        self.controls.cancel()

    def _on_evaluated(self, result: Evaluated) -> None:
        self._show_evaluation(result.evaluation, result.images)
        self.status.say(form.evaluated_text(result.evaluation))
        self.evaluated.emit(result.run_id)

    def _cancel_tasks(self) -> None:
        self.controls.drop()
        if self.images_task is not None:
            self.images_task.cancel()
        self.images_task = None

    # ----------------------------------------------------------------- showing

    def _show_evaluation(
        self, data: dict[str, Any] | None, images: list[np.ndarray | None] | None = None
    ) -> None:
        """Fill the scores, matrix and gallery from a stored ``Evaluation.to_dict()``."""
        if self.images_task is not None:
            self.images_task.cancel()
            self.images_task = None
        self.evaluation = data
        self.empty_state.set_empty(data is None)
        if data is None:
            self.table.setRowCount(0)
            self.matrix.clear()
            self.gallery.clear()
            return
        try:
            per_class = data["per_class"]
            classes = [str(c["name"]) for c in per_class]
            self.summary.setText(form.summary_text(data))
            self.table.set_rows(per_class)
            self.matrix.set_matrix(classes, data["confusion"])
            mistakes = list(data.get("mistakes", []))
            self.gallery.set_items(
                [form.caption(m) for m in mistakes], [form.mistake_tooltip(m) for m in mistakes]
            )
        except (KeyError, TypeError, ValueError):
            self.evaluation = None
            self._readiness = replace(self._readiness, why_empty=form.BAD_STORED)
            self._update_empty_state()
            self.empty_state.set_empty(True)
            self.status.say(
                f"Run {self.run_id}'s stored evaluation cannot be read; evaluate it again.",
                error=True,
            )
            return
        self.gallery_label.setText(form.gallery_heading(len(mistakes)))
        if images is not None:
            self.gallery.set_images(images)
        elif mistakes and self.run_id is not None:
            self._load_images(self.run_id, data)

    def _load_images(self, run_id: int, data: dict[str, Any]) -> None:
        work = partial(load_mistake_images, self.state.db_path, run_id, data)
        task = Task(work, name="mistake images", parent=self)
        self.images_task = task
        task.connect_outcomes(
            finished=partial(self._on_images, task),
            failed=partial(self._on_images_failed, task),
        )
        task.start()

    def _on_images(self, task: Task, images: list[np.ndarray | None]) -> None:
        if task is self.images_task:
            self.images_task = None
            self.gallery.set_images(images)

    def _on_images_failed(self, task: Task, message: str) -> None:
        if task is self.images_task:
            self.images_task = None
            self.gallery_label.setText(
                f"{self.gallery_label.text()} Their pictures could not be loaded: {message}"
            )

    def is_empty(self) -> bool:
        """Whether the panel shows its empty state (no evaluation to show) instead of results."""
        return self.empty_state.is_shown()

    def _update_empty_state(self) -> None:
        """Say why there is nothing to show and what to do (the run as last read)."""
        busy = form.EVALUATING if self.task is not None else None
        self.empty_state.set_message(*self._readiness.empty_text(busy))

    def _update_controls(self) -> None:
        busy = self.task is not None
        self._update_empty_state()
        self.split.setEnabled(not busy)
        self.evaluate_button.setVisible(self.run_id is not None)
        self.evaluate_button.setEnabled(self._readiness.usable and not busy)
        if self.run_id is not None:
            self.evaluate_button.setText(
                form.button_text(self.run_id, evaluated=self.evaluation is not None)
            )


if __name__ == "__main__":
    from cnn_lab.app.panels._standalone import run_from_argv, run_standalone

    def _standalone_panel(state: AppState) -> EvaluationPanel:
        panel = EvaluationPanel(state)
        panel.set_run(run_from_argv())
        return panel

    raise SystemExit(run_standalone(_standalone_panel))
