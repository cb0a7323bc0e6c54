"""The Predict panel's rules: which run can predict, and the words for its rows and status.

A run can predict as soon as it has saved weights, even while it is still training (its
best weights so far); one without them cannot. The rows keep every class ranked, so the
"Top" box only cuts them (``shown``) and never predicts again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from cnn_lab.app.models.evaluation_readiness import (
    EmptyText,
    Readiness,
    RunReading,
    answer,
    unreadable,
)
from cnn_lab.engine.store import status as st

DEFAULT_TOP = 3
NO_RUN: EmptyText = (
    "No run selected",
    "Predict shows what a trained run makes of your own images: each image gets a row with "
    "its thumbnail and the run's most likely classes, which you can save as CSV. Select a "
    "completed run in Runs, then drop images here.",
)
STILL_ACTIVE: EmptyText = (
    "Run {run_id} is still {status}",
    "It can predict once it has saved its weights: wait for it to finish (the Monitor "
    "follows it), or select a completed run in Runs.",
)
NO_WEIGHTS: EmptyText = (
    "Run {run_id} has no trained weights",
    "It ended before it saved any, so it cannot predict. Select a completed run in Runs.",
)
READY: EmptyText = (
    "Drop images here",
    "Drop image files or folders on this panel, or use Add images… or Add folder…, to see "
    "what run {run_id} makes of them: each image gets a row with its thumbnail and the run's "
    "top classes with their probabilities. The first images take a few seconds more (the run "
    "is loaded once); a file that cannot be read gets a row that says why.",
)
PREDICTING: EmptyText = (
    "Predicting with run {run_id}…",
    "The rows appear here when it is done; the bar above says how far it is and how long is left.",
)


def predict_readiness(reading: RunReading) -> Readiness:
    """Whether the run can predict (it has saved weights), and what to say."""
    run_id, status = reading.run_id, reading.status
    if run_id is None:
        return Readiness("Select a trained run to predict with it.", NO_RUN)
    if reading.error:
        return unreadable(reading)
    if status in st.ACTIVE and not reading.has_weights:
        message = f"Run {run_id} is still {status}: it can predict once it has saved its weights."
        return answer(reading, message, STILL_ACTIVE)
    if not reading.has_weights:
        message = f"Run {run_id} has no trained weights to predict with."
        return answer(reading, message, NO_WEIGHTS)
    message = f"Drop images to see what run {run_id} makes of them."
    return answer(reading, message, READY, usable=True)


def shown(predictions: Sequence[Any], top: int) -> list[Any]:
    """Engine Predictions as shown and saved: each cut to its ``top`` classes."""
    return [replace(p, top=p.top[:top]) for p in predictions]


def answer_text(prediction: Any) -> str:
    """A row's answer: its classes with their probabilities, or why the file was not read."""
    if prediction.error:
        return f"Not read: {prediction.error}"
    return "   ".join(f"{cls} {probability:.1%}" for cls, probability in prediction.top)


def predicted_text(run_id: int, predictions: Sequence[Any]) -> str:
    """The status line after a batch: how many were predicted, and how many not read."""
    unreadable_count = sum(bool(p.error) for p in predictions)
    text = f"Run {run_id} predicted {len(predictions) - unreadable_count:,} images"
    if unreadable_count:
        text += f"; {unreadable_count:,} could not be read (see their rows)"
    return text + "."


__all__ = [
    "DEFAULT_TOP",
    "NO_RUN",
    "NO_WEIGHTS",
    "PREDICTING",
    "READY",
    "STILL_ACTIVE",
    "answer_text",
    "predict_readiness",
    "predicted_text",
    "shown",
]
