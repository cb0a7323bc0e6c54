"""The Evaluate panel's rules: which run can be scored, and the words that show a result.

A run can be evaluated once it has ended (a running one is still changing its weights) and
only if it saved weights. What the panel writes about a stored ``Evaluation.to_dict()`` (the
summary line, a mistake's caption and tooltip, the gallery's heading) is here too, so the
words can be tested without a window.
"""

from __future__ import annotations

from typing import Any

from cnn_lab.app.models.evaluation_readiness import (
    EmptyText,
    Readiness,
    RunReading,
    answer,
    unreadable,
)
from cnn_lab.engine.store import status as st

SPLITS = {
    "Test (validation if none held out)": "auto",
    "Test": "test",
    "Validation": "val",
}
"""What the split chooser offers: label → the engine's ``split`` argument."""
MISTAKES = 24
"""Costliest mistakes kept and shown: two screenfuls of tiles at most."""
WHAT_IT_SHOWS = (
    "the accuracy and loss, precision, recall and F1 per class, the confusion matrix, and the "
    "misclassified images with the highest loss"
)
NO_RUN: EmptyText = (
    "No run selected",
    f"Evaluate scores a finished run on images it never trained on: {WHAT_IT_SHOWS}. "
    "Select a completed run in Runs to evaluate it.",
)
STILL_ACTIVE: EmptyText = (
    "Run {run_id} is still {status}",
    "Only a finished run can be evaluated: wait for it to end (the Monitor follows it), or "
    "select a completed run in Runs.",
)
NO_WEIGHTS: EmptyText = (
    "Run {run_id} has no trained weights",
    "It ended before it saved any, so there is nothing to score. Select a completed run in "
    "Runs, or resume this one from Runs if it stopped early.",
)
NOT_EVALUATED: EmptyText = (
    "Run {run_id} has not been evaluated yet",
    "Press Evaluate to score it on its test split, the images it never saw (or on its "
    f"validation split): {WHAT_IT_SHOWS}. It takes seconds on a small test split, longer "
    "on a large one, and the result is kept with the run.",
)
EVALUATING: EmptyText = (
    "Evaluating run {run_id}…",
    "The scores, the confusion matrix and the costliest mistakes appear here when it is done; "
    "the bar above says how far it is and how long is left.",
)
BAD_STORED: EmptyText = (
    "Run {run_id}'s stored evaluation cannot be read",
    "Evaluate it again to replace it.",
)


def evaluation_readiness(reading: RunReading) -> Readiness:
    """Whether the run can be evaluated (ended, with saved weights), and what to say."""
    run_id, status = reading.run_id, reading.status
    if run_id is None:
        return Readiness("Select a run to evaluate it.", NO_RUN)
    if reading.error:
        return unreadable(reading)
    if status in st.ACTIVE:
        message = f"Run {run_id} is still {status}: evaluate it once it has finished."
        return answer(reading, message, STILL_ACTIVE)
    if not reading.has_weights:
        message = f"Run {run_id} has no trained weights to evaluate."
        return answer(reading, message, NO_WEIGHTS)
    message = (
        f"Run {run_id}'s stored evaluation."
        if isinstance(stored_evaluation(reading), dict)
        else f"Run {run_id} has not been evaluated yet."
    )
    return answer(reading, message, NOT_EVALUATED, usable=True)


def stored_evaluation(reading: RunReading) -> Any:
    """The evaluation kept in the run's summary (a dict when there is one; checked on show)."""
    return reading.summary.get("evaluation")


def evaluated_text(data: dict[str, Any]) -> str:
    """The status line once an evaluation has been made and stored."""
    return (
        f"Run {data['run_id']} evaluated on its {data['split']} split "
        f"({data['images']:,} images); the result is kept with the run."
    )


def summary_text(data: dict[str, Any]) -> str:
    """The line above the scores: split, size, accuracy, loss, F1s, and any note."""
    text = (
        f"Run {data['run_id']} on its {data['split']} split ({int(data['images']):,} images): "
        f"accuracy {float(data['accuracy']):.2%}, loss {float(data['loss']):.4f}, "
        f"macro F1 {float(data['macro_f1']):.3f}, weighted F1 {float(data['weighted_f1']):.3f}."
    )
    return f"{text} {data['note']}" if data.get("note") else text


def caption(mistake: dict[str, Any]) -> str:
    """A mistake's tile caption: true → predicted (confidence)."""
    return f"{mistake['true']} → {mistake['predicted']} ({float(mistake['confidence']):.0%})"


def mistake_tooltip(mistake: dict[str, Any]) -> str:
    return (
        f"{mistake['name']}\nlabelled {mistake['true']}, predicted {mistake['predicted']} "
        f"with {float(mistake['confidence']):.1%}\nloss {float(mistake['loss']):.3f}"
    )


def gallery_heading(shown: int) -> str:
    if shown == 0:
        return "No mistakes: every image was classified correctly."
    return (
        f"The {shown} misclassified images with the highest loss "
        f"(true → predicted, confidence); hover one for its file."
    )


def button_text(run_id: int, evaluated: bool) -> str:
    """The Evaluate button's words: a stored result makes it a second evaluation."""
    return "Evaluate again" if evaluated else f"Evaluate run {run_id}"


__all__ = [
    "BAD_STORED",
    "EVALUATING",
    "MISTAKES",
    "NOT_EVALUATED",
    "NO_RUN",
    "NO_WEIGHTS",
    "SPLITS",
    "STILL_ACTIVE",
    "button_text",
    "caption",
    "evaluated_text",
    "evaluation_readiness",
    "gallery_heading",
    "mistake_tooltip",
    "stored_evaluation",
    "summary_text",
]
