"""Scoring a split: mean loss and accuracy, as validation, the test split and evaluation see it."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from cnn_lab.engine.data.loader import BatchLoader
from cnn_lab.engine.specs import TrainSpec
from cnn_lab.engine.train.options import autocast


def eval_logits(model: nn.Module, x: torch.Tensor, t: TrainSpec) -> torch.Tensor:
    """Logits as evaluation scores them: fp32, and with ``tta_flip`` the log of the mean of
    the image's and its mirror's predicted distributions (call under ``autocast``)."""
    logits = model(x).float()
    if t.tta_flip:
        flipped = model(x.flip(3)).float()
        probs = (logits.softmax(1) + flipped.softmax(1)) / 2
        logits = probs.clamp_min(1e-12).log()
    return logits


def evaluate(
    model: nn.Module,
    loader: BatchLoader,
    t: TrainSpec,
    should_stop: Callable[[], bool],
) -> tuple[float, float]:
    """Mean loss and accuracy on a split; NaNs if stopped half-way.

    With ``tta_flip`` each image is also seen mirrored and the two predicted distributions
    are averaged (a cheap, reliable gain for natural images).
    """
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), device=loader.device)
    correct = torch.zeros((), device=loader.device, dtype=torch.long)
    loader.set_epoch(0)
    with torch.inference_mode():
        for batch in loader:
            with autocast(t, loader.device):
                logits = eval_logits(model, batch.x, t)
            loss_sum += nn.functional.cross_entropy(logits, batch.labels, reduction="sum")
            correct += (logits.argmax(1) == batch.labels).sum()
            if should_stop():
                model.train(was_training)
                return math.nan, math.nan
    model.train(was_training)
    n = max(loader.images_count, 1)
    return float(loss_sum) / n, float(correct) / n
