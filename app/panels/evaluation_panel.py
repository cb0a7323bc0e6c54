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

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from cnn_lab.app.bridge.task import Task
from cnn_lab.app.state import AppState
from cnn_lab.app.widgets.confusion_matrix import ConfusionMatrix
from cnn_lab.app.widgets.empty_state import EmptyState
from cnn_lab.app.widgets.image_gallery import ImageGallery
from cnn_lab.app.widgets.plain_label import plain_label
from cnn_lab.app.widgets.task_progress import TaskProgress
from cnn_lab.engine.errors import UserError
from cnn_lab.engine.store import RunStore, artifact_kinds
from cnn_lab.engine.store import status as st

# What the split chooser offers: label → the engine's ``split`` argument.
SPLITS = {
    "Test (validation if none held out)": "auto",
    "Test": "test",
    "Validation": "val",
}
DEVICE = "auto"
"""A GPU when there is one: scoring is inference only, light beside a training job."""
MISTAKES = 24
"""Costliest mistakes kept and shown: two screenfuls of tiles at most."""
ERROR_STYLE = "color: #c62828;"
TABLE_COLUMNS = ("Class", "Precision", "Recall", "F1", "Support")
WHAT_IT_SHOWS = (
    "the accuracy and loss, precision, recall and F1 per class, the confusion matrix, and the "
    "misclassified images with the highest loss"
)
NO_RUN = (
    "No run selected",
    f"Evaluate scores a finished run on images it never trained on: {WHAT_IT_SHOWS}. "
    "Select a completed run in Runs to evaluate it.",
)
STILL_ACTIVE = (
    "Run {run_id} is still {status}",
    "Only a finished run can be evaluated: wait for it to end (the Monitor follows it), or "
    "select a completed run in Runs.",
)
NO_WEIGHTS = (
    "Run {run_id} has no trained weights",
    "It ended before it saved any, so there is nothing to score. Select a completed run in "
    "Runs, or resume this one from Runs if it stopped early.",
)
UNREADABLE = ("Run {run_id} cannot be read", "Select another run in Runs.")
NOT_EVALUATED = (
    "Run {run_id} has not been evaluated yet",
    "Press Evaluate to score it on its test split, the images it never saw (or on its "
    f"validation split): {WHAT_IT_SHOWS}. It takes seconds on a small test split, longer "
    "on a large one, and the result is kept with the run.",
)
EVALUATING = (
    "Evaluating run {run_id}…",
    "The scores, the confusion matrix and the costliest mistakes appear here when it is done; "
    "the bar above says how far it is and how long is left.",
)
BAD_STORED = (
    "Run {run_id}'s stored evaluation cannot be read",
    "Evaluate it again to replace it.",
)


@dataclass(frozen=True)
class Evaluated:
    """What the background evaluation hands the GUI thread: plain data only."""

    run_id: int
    evaluation: dict[str, Any]
    """``Evaluation.to_dict()``, exactly as stored in the run's summary."""
    images: list[np.ndarray | None]


def evaluate_and_store(
    db_path: str,
    run_id: int,
    split: str,
    mistakes: int,
    progress: Callable[[str, int, int], None],
    should_stop: Callable[[], bool],
) -> Evaluated:
    """Score the run, keep the result in its summary, and fetch the mistakes' pictures."""
    from cnn_lab.engine.evaluation.evaluate import evaluate_run

    with RunStore.open(db_path) as store:
        result = evaluate_run(
            store,
            run_id,
            split=split,  # type: ignore[arg-type]  # one of SPLITS' values
            mistakes=mistakes,
            device=DEVICE,
            should_stop=should_stop,
            progress=progress,
        )
        data = result.to_dict()
        store.update_summary(run_id, {"evaluation": data})
    images = load_mistake_images(db_path, run_id, data, progress, should_stop)
    return Evaluated(run_id, data, images)


def load_mistake_images(
    db_path: str,
    run_id: int,
    evaluation: dict[str, Any],
    progress: Callable[[str, int, int], None],
    should_stop: Callable[[], bool],
) -> list[np.ndarray | None]:
    """The pictures of the evaluation's mistakes, from the run's dataset (None: gone)."""
    from cnn_lab.engine.data.auto_preprocess import as_trained
    from cnn_lab.engine.evaluation.mistake_images import mistake_images
    from cnn_lab.engine.specs import RunSpec

    rows = [(int(m["index"]), str(m["name"])) for m in evaluation.get("mistakes", [])]
    with RunStore.open(db_path) as store:
        record = store.get_run(run_id)
    # At the size the run trained at (recorded), not at what auto would choose today.
    dataset = as_trained(
        RunSpec.from_json(record.spec_json).dataset, record.summary.get("input_shape")
    )
    return mistake_images(dataset, rows, should_stop=should_stop, progress=progress)


class _NumberItem(QTableWidgetItem):
    """A cell that sorts by its number, not by its text."""

    def __init__(self, value: float, text: str) -> None:
        super().__init__(text)
        self.value = value
        self.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)

    def __lt__(self, other: QTableWidgetItem) -> bool:
        if isinstance(other, _NumberItem):
            return self.value < other.value
        return super().__lt__(other)


class EvaluationPanel(QWidget):
    title = "Evaluate"
    evaluated = Signal(int)
    """A run's evaluation was stored in its summary (the window may refresh what shows it)."""

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.run_id: int | None = None
        self.evaluation: dict[str, Any] | None = None
        self.task: Task | None = None
        self.images_task: Task | None = None
        self.mistake_limit = MISTAKES
        self._can_evaluate = False
        self._why_empty = NO_RUN
        """The empty state's heading and text while no evaluation shows (formatted per run)."""
        self._run_status = ""

        self.status = plain_label()
        self.split = QComboBox()
        for label, value in SPLITS.items():
            self.split.addItem(label, value)
        self.split.setToolTip(
            "The images to score. The test split is what the run never saw, not even to pick "
            "its best epoch; a run that held none out can be scored on its validation split."
        )
        self.evaluate_button = QPushButton("Evaluate")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setVisible(False)
        self.progress = TaskProgress()

        self.summary = plain_label()
        self.table = QTableWidget(0, len(TABLE_COLUMNS))
        self.table.setHorizontalHeaderLabels(TABLE_COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setAlternatingRowColors(True)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        # The engine's class order until the person clicks a header (then their order stays).
        self.table.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
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
        message, error, stored = self._read_run()
        if self.task is None:  # while evaluating, the progress line says how it goes
            self._set_status(message, error=error)
            if isinstance(stored, dict) and stored != self.evaluation:
                self._show_evaluation(stored)
        self._update_controls()

    def _read_run(self) -> tuple[str, bool, Any]:
        """The run's state as a sentence (and whether it is an error), and its stored result.

        Sets whether the run can be evaluated: finished (or stopped) with saved weights.
        """
        run_id = self.run_id
        self._can_evaluate = False
        self._run_status = ""
        if run_id is None:
            self._why_empty = NO_RUN
            return "Select a run to evaluate it.", False, None
        try:
            with self.state.open_store() as store:
                record = store.get_run(run_id)
                has_weights = store.has_artifact(run_id, artifact_kinds.WEIGHTS)
        except UserError as exc:
            self._why_empty = UNREADABLE
            return str(exc), True, None
        stored = record.summary.get("evaluation")
        self._run_status = record.status
        if record.status in st.ACTIVE:
            self._why_empty = STILL_ACTIVE
            message = f"Run {run_id} is still {record.status}: evaluate it once it has finished."
        elif not has_weights:
            self._why_empty = NO_WEIGHTS
            message = f"Run {run_id} has no trained weights to evaluate."
        else:
            self._can_evaluate = True
            self._why_empty = NOT_EVALUATED
            message = (
                f"Run {run_id}'s stored evaluation."
                if isinstance(stored, dict)
                else f"Run {run_id} has not been evaluated yet."
            )
        return message, False, stored

    # ----------------------------------------------------------------- evaluating

    def evaluate(self, split: str | None = None) -> Task | None:
        """Evaluate the chosen run in the background on ``split`` (default: the chooser's)."""
        if self.task is not None:
            return self.task
        if self.run_id is None or not self._can_evaluate:
            return None
        run_id = self.run_id
        chosen = split or str(self.split.currentData())
        work = partial(evaluate_and_store, self.state.db_path, run_id, chosen, self.mistake_limit)
        task = Task(work, name="evaluate", parent=self)
        self.task = task
        task.connect_outcomes(
            progress=partial(self._on_progress, task),
            finished=partial(self._on_evaluated, task),
            failed=partial(self._on_failed, task),
            cancelled=partial(self._on_cancelled, task),
        )
        self._set_status(f"Evaluating run {run_id}…")
        self.progress.start("Loading the run")
        self._update_controls()
        return task.start()

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()
            self._set_status("Cancelling…")
            self.cancel_button.setEnabled(False)

    def _on_progress(self, task: Task, stage: str, done: int, total: int) -> None:
        if task is not self.task:
            return
        # The bar's label says the stage, "N of M" and the time left; the status line stays.
        self.progress.update_progress(stage[:1].upper() + stage[1:], done, total)

    def _on_evaluated(self, task: Task, result: Evaluated) -> None:
        if task is not self.task:
            return
        self.task = None
        data = result.evaluation
        self._show_evaluation(data, result.images)
        self._set_status(
            f"Run {result.run_id} evaluated on its {data['split']} split "
            f"({data['images']:,} images); the result is kept with the run."
        )
        self._update_controls()
        self.evaluated.emit(result.run_id)

    def _on_failed(self, task: Task, message: str) -> None:
        if task is not self.task:
            return
        self.task = None
        self._set_status(message, error=True)
        self._update_controls()

    def _on_cancelled(self, task: Task) -> None:
        if task is not self.task:
            return
        self.task = None
        self._set_status("Evaluation cancelled.")
        self._update_controls()

    def _cancel_tasks(self) -> None:
        for task in (self.task, self.images_task):
            if task is not None:
                task.cancel()
        self.task = self.images_task = None

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
            self.summary.setText(_summary_text(data))
            self._fill_table(per_class)
            self.matrix.set_matrix(classes, data["confusion"])
            mistakes = list(data.get("mistakes", []))
            self.gallery.set_items(
                [_caption(m) for m in mistakes], [_mistake_tooltip(m) for m in mistakes]
            )
        except (KeyError, TypeError, ValueError):
            self.evaluation = None
            self._why_empty = BAD_STORED
            self._update_empty_state()
            self.empty_state.set_empty(True)
            self._set_status(
                f"Run {self.run_id}'s stored evaluation cannot be read; evaluate it again.",
                error=True,
            )
            return
        self.gallery_label.setText(_gallery_heading(len(mistakes)))
        if images is not None:
            self.gallery.set_images(images)
        elif mistakes and self.run_id is not None:
            self._load_images(self.run_id, data)

    def _fill_table(self, per_class: list[dict[str, Any]]) -> None:
        self.table.setSortingEnabled(False)
        self.table.setRowCount(len(per_class))
        for row, c in enumerate(per_class):
            self.table.setItem(row, 0, QTableWidgetItem(str(c["name"])))
            for column, key in enumerate(("precision", "recall", "f1"), start=1):
                value = float(c[key])
                self.table.setItem(row, column, _NumberItem(value, f"{value:.3f}"))
            support = int(c["support"])
            self.table.setItem(row, 4, _NumberItem(support, f"{support:,}"))
        self.table.setSortingEnabled(True)

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

    def _set_status(self, text: str, *, error: bool = False) -> None:
        self.status.setText(text)
        self.status.setStyleSheet(ERROR_STYLE if error else "")

    def is_empty(self) -> bool:
        """Whether the panel shows its empty state (no evaluation to show) instead of results."""
        return self.empty_state.is_shown()

    def _update_empty_state(self) -> None:
        """Say why there is nothing to show and what to do (the run as last read)."""
        title, text = EVALUATING if self.task is not None else self._why_empty
        values = {"run_id": self.run_id, "status": self._run_status}
        self.empty_state.set_message(title.format(**values), text.format(**values))

    def _update_controls(self) -> None:
        busy = self.task is not None
        if not busy:
            self.progress.finish()
        self._update_empty_state()
        self.cancel_button.setVisible(busy)
        self.cancel_button.setEnabled(busy)
        self.split.setEnabled(not busy)
        self.evaluate_button.setVisible(self.run_id is not None)
        self.evaluate_button.setEnabled(self._can_evaluate and not busy)
        if self.run_id is not None:
            again = self.evaluation is not None
            self.evaluate_button.setText(
                "Evaluate again" if again else f"Evaluate run {self.run_id}"
            )


def _summary_text(data: dict[str, Any]) -> str:
    text = (
        f"Run {data['run_id']} on its {data['split']} split ({int(data['images']):,} images): "
        f"accuracy {float(data['accuracy']):.2%}, loss {float(data['loss']):.4f}, "
        f"macro F1 {float(data['macro_f1']):.3f}, weighted F1 {float(data['weighted_f1']):.3f}."
    )
    return f"{text} {data['note']}" if data.get("note") else text


def _caption(mistake: dict[str, Any]) -> str:
    return f"{mistake['true']} → {mistake['predicted']} ({float(mistake['confidence']):.0%})"


def _mistake_tooltip(mistake: dict[str, Any]) -> str:
    return (
        f"{mistake['name']}\nlabelled {mistake['true']}, predicted {mistake['predicted']} "
        f"with {float(mistake['confidence']):.1%}\nloss {float(mistake['loss']):.3f}"
    )


def _gallery_heading(shown: int) -> str:
    if shown == 0:
        return "No mistakes: every image was classified correctly."
    return (
        f"The {shown} misclassified images with the highest loss "
        f"(true → predicted, confidence); hover one for its file."
    )


if __name__ == "__main__":
    from cnn_lab.app.panels._standalone import run_from_argv, run_standalone

    def _standalone_panel(state: AppState) -> EvaluationPanel:
        panel = EvaluationPanel(state)
        panel.set_run(run_from_argv())
        return panel

    raise SystemExit(run_standalone(_standalone_panel))
