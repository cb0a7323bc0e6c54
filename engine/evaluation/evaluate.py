"""Evaluate a finished run on its held-out images: scores, confusion, the costliest mistakes.

The run's saved weights are loaded (safetensors, no pickle; models/trained.py) and its own
dataset spec rebuilds the same split, so "the test split" is exactly the images training
never saw. A run that held out no test images is evaluated on its validation split instead,
and the result says so (``split``), because a number without its split misleads.

Predictions are made as the training loop's evaluation makes them (same precision, the
same flip test-time augmentation when the run used it), so the accuracy here equals the
``test_accuracy`` the run recorded. The mistakes are the misclassified images with the
highest loss, the ones worth looking at first: mislabelled, ambiguous or truly hard.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, TypedDict, Unpack

import numpy as np
import torch
from torch import nn

from cnn_lab.engine.errors import Cancelled, UserError
from cnn_lab.engine.evaluation.scores import Scores, score
from cnn_lab.engine.store import RunRepository

Split = Literal["auto", "test", "val"]
DEFAULT_MISTAKES = 24


@dataclass(frozen=True)
class Mistake:
    """One misclassified image: where it is, what it is, what the model said, how sure."""

    index: int
    """Its row in the prepared dataset (for the image itself)."""
    name: str
    """The file (or sample#row) it came from."""
    true: str
    predicted: str
    loss: float
    confidence: float
    """The probability the model gave its (wrong) answer."""


@dataclass(frozen=True)
class Evaluation:
    run_id: int
    split: Literal["test", "val"]
    images: int
    loss: float
    scores: Scores
    mistakes: tuple[Mistake, ...] = field(default_factory=tuple)
    device: str = "cpu"
    note: str = ""
    """Why the split is not the test split, when it is not."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "split": self.split,
            "images": self.images,
            "loss": self.loss,
            "device": self.device,
            "note": self.note,
            **self.scores.to_dict(),
            "mistakes": [asdict(m) for m in self.mistakes],
        }

    def summary_lines(self) -> list[str]:
        s = self.scores
        lines = [
            f"Run {self.run_id} on its {self.split} split ({self.images} images): "
            f"accuracy {s.accuracy:.2%}, loss {self.loss:.4f}, macro F1 {s.macro_f1:.3f}."
        ]
        if self.note:
            lines.append(self.note)
        width = max((len(c.name) for c in s.per_class), default=5)
        lines.append(f"{'class':<{width}}  precision  recall     f1  support")
        lines += [
            f"{c.name:<{width}}  {c.precision:9.3f}  {c.recall:6.3f}  {c.f1:5.3f}  {c.support:7d}"
            for c in s.per_class
        ]
        if self.mistakes:
            lines.append("Costliest mistakes:")
            lines += [
                f"  {m.name}: {m.true} taken for {m.predicted} "
                f"({m.confidence:.0%}, loss {m.loss:.2f})"
                for m in self.mistakes[:10]
            ]
        return lines


class EvaluateOptions(TypedDict, total=False):
    """``evaluate_run``'s keyword options, for functions that pass them on unchanged."""

    split: Split
    mistakes: int
    device: str
    should_stop: Callable[[], bool]
    progress: Callable[[str, int, int], None]


def evaluate_run(
    store: RunRepository,
    run_id: int,
    *,
    split: Split = "auto",
    mistakes: int = DEFAULT_MISTAKES,
    device: str = "cpu",
    should_stop: Callable[[], bool] = lambda: False,
    progress: Callable[[str, int, int], None] = lambda *_: None,
) -> Evaluation:
    """Score run ``run_id`` on ``split`` ("auto": test if it held one out, else validation)."""
    from cnn_lab.engine.data.auto_preprocess import as_trained
    from cnn_lab.engine.data.training_data import build_training_data
    from cnn_lab.engine.models.trained import load_trained
    from cnn_lab.engine.train.devices import resolve_device

    trained = load_trained(store, run_id)
    spec = trained.spec
    where = resolve_device(device)
    shape = trained.shape
    data = build_training_data(
        # The size and channels the weights were trained at, never a fresh auto choice.
        as_trained(spec.dataset, (shape.channels, shape.height, shape.width)),
        device=where,
        batch_size=spec.train.batch_size,
        seed=spec.train.seed,
        channels_last=spec.train.channels_last,
        placement="host",
        should_stop=should_stop,
        progress=progress,
        architecture=spec.architecture,  # normalised as it trained (published weights' stats)
    )
    if tuple(data.prepared.classes) != tuple(trained.classes):
        raise UserError(
            f"Run {run_id}'s dataset now has the classes {list(data.prepared.classes)}, "
            f"but its weights know {trained.classes}.",
            hint="The data changed since training; evaluate on the data the run used.",
        )
    chosen, note = _choose(split, data.test is not None)
    loader = data.test if chosen == "test" else data.val
    assert loader is not None  # _choose picks test only when there is one
    if loader.images_count == 0:
        raise UserError(f"Run {run_id}'s {chosen} split is empty.", hint="Nothing to evaluate.")
    model = trained.model.to(where)
    losses, predicted, confidence = _predict(model, loader, spec.train, should_stop, progress)
    indices = np.asarray(loader.indices)
    labels = data.prepared.labels[indices].astype(np.int64)
    wrong = np.flatnonzero(predicted != labels)
    worst = wrong[np.argsort(-losses[wrong], kind="stable")][:mistakes]
    classes = list(trained.classes)
    return Evaluation(
        run_id=run_id,
        split=chosen,
        images=len(labels),
        loss=float(losses.mean()),
        scores=score(labels, predicted, classes),
        mistakes=tuple(
            Mistake(
                index=int(indices[i]),
                name=data.prepared.shown[int(indices[i])],
                true=classes[labels[i]],
                predicted=classes[predicted[i]],
                loss=float(losses[i]),
                confidence=float(confidence[i]),
            )
            for i in worst
        ),
        device=str(where),
        note=note,
    )


def evaluate_and_store(
    store: RunRepository, run_id: int, **options: Unpack[EvaluateOptions]
) -> Evaluation:
    """Evaluate run ``run_id`` (``options`` as ``evaluate_run`` takes them) and keep the result
    in its summary as ``evaluation``.

    One rule for ``cnn-lab evaluate`` and the Evaluate panel: whoever scores a run stores
    it the same way, so a run evaluated once, on a terminal or in the window, shows its
    result everywhere (reports too) without being scored again.
    """
    result = evaluate_run(store, run_id, **options)
    store.update_summary(run_id, {"evaluation": result.to_dict()})
    return result


def _choose(split: Split, has_test: bool) -> tuple[Literal["test", "val"], str]:
    if split == "test" and not has_test:
        raise UserError(
            "This run held out no test images.",
            hint="Evaluate on the validation split (--split val), or train with a test share.",
        )
    if split == "val" or (split == "auto" and not has_test):
        note = "" if split == "val" else "The run held out no test images: this is validation."
        return "val", note
    return "test", ""


def _predict(
    model: nn.Module,
    loader: Any,
    t: Any,
    should_stop: Callable[[], bool],
    progress: Callable[[str, int, int], None],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per image: the loss, the predicted class and its probability, in the loader's order."""
    from cnn_lab.engine.train.loop import eval_logits
    from cnn_lab.engine.train.options import autocast

    losses, predicted, confidence = [], [], []
    loader.set_epoch(0)
    total = len(loader)
    with torch.inference_mode():
        for done, batch in enumerate(loader):
            if should_stop():
                raise Cancelled("The evaluation was stopped.")
            with autocast(t, loader.device):
                logits = eval_logits(model, batch.x, t)
            per_image = nn.functional.cross_entropy(logits, batch.labels, reduction="none")
            probs = logits.softmax(1)
            top, guess = probs.max(1)
            losses.append(per_image.cpu().numpy())
            predicted.append(guess.cpu().numpy())
            confidence.append(top.cpu().numpy())
            progress("evaluating", done + 1, total)
    loss = np.concatenate(losses).astype(np.float64)
    return (
        np.where(np.isfinite(loss), loss, math.inf),
        np.concatenate(predicted),
        np.concatenate(confidence),
    )


__all__ = [
    "DEFAULT_MISTAKES",
    "Evaluation",
    "Mistake",
    "evaluate_and_store",
    "evaluate_run",
]
