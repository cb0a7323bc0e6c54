"""Classification scores from true and predicted labels: plain numpy, checkable by hand.

Precision of a class nobody predicted, and recall of a class with no images, are 0 rather
than undefined (scikit-learn's ``zero_division=0``), so a table never shows NaN; the
support column says when a row rests on nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class ClassScores:
    name: str
    precision: float
    recall: float
    f1: float
    support: int
    """Images of this class in the evaluated split."""


@dataclass(frozen=True)
class Scores:
    accuracy: float
    confusion: list[list[int]]
    """``confusion[true][predicted]``: rows are the images' classes, columns the guesses."""
    per_class: tuple[ClassScores, ...]
    macro_f1: float
    """The unweighted mean F1 over classes: every class counts the same."""
    weighted_f1: float
    """The mean F1 weighted by support."""

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "per_class": [asdict(c) for c in self.per_class]}


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    out = np.zeros_like(numerator, dtype=np.float64)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def score(labels: np.ndarray, predicted: np.ndarray, classes: Sequence[str]) -> Scores:
    """Accuracy, the confusion matrix, and precision, recall and F1 for each class."""
    k = len(classes)
    labels = np.asarray(labels, dtype=np.int64)
    predicted = np.asarray(predicted, dtype=np.int64)
    if labels.shape != predicted.shape:
        raise ValueError("labels and predictions differ in length")
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    hits = np.diag(confusion).astype(np.float64)
    support = confusion.sum(axis=1)
    precision = _ratio(hits, confusion.sum(axis=0).astype(np.float64))
    recall = _ratio(hits, support.astype(np.float64))
    f1 = _ratio(2 * precision * recall, precision + recall)
    total = int(support.sum())
    return Scores(
        accuracy=float(hits.sum() / total) if total else 0.0,
        confusion=confusion.tolist(),
        per_class=tuple(
            ClassScores(str(name), float(p), float(r), float(f), int(n))
            for name, p, r, f, n in zip(classes, precision, recall, f1, support, strict=True)
        ),
        macro_f1=float(f1.mean()) if k else 0.0,
        weighted_f1=float((f1 * support).sum() / total) if total else 0.0,
    )


__all__ = ["ClassScores", "Scores", "score"]
