"""One optimizer step: micro-batches forward and backward, then the update. No bookkeeping.

Gradient accumulation is exact: every micro-batch's mean loss is weighted by its share of
the images in its accumulation window, across all data-parallel ranks, so a window that is
short (the last one of an epoch, or one ending in a small last batch) is the mean over the
images it really has, as one big batch would be. Under DDP the gradients are all-reduced once
per window: every micro-batch but the last runs under ``no_sync()``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

from cnn_lab.engine.data.loader import Batch
from cnn_lab.engine.specs import TrainSpec
from cnn_lab.engine.train.options import autocast


@dataclass(frozen=True)
class Windows:
    """Which global batches make up each accumulation window, and how many images it has."""

    images: int
    """Images in the split (all ranks together)."""
    batch_size: int
    """The global batch size."""
    accumulation: int

    @property
    def batches(self) -> int:
        return -(-self.images // self.batch_size)

    @property
    def count(self) -> int:
        """Optimizer steps per epoch."""
        return -(-self.batches // self.accumulation)

    def micro_batches(self, window: int) -> int:
        return min(self.accumulation, self.batches - window * self.accumulation)

    def window_images(self, window: int) -> int:
        first = window * self.accumulation * self.batch_size
        return min(self.accumulation * self.batch_size, self.images - first)


@dataclass
class StepResult:
    """What one optimizer step leaves on the device for the books (no host reads)."""

    loss: torch.Tensor
    """The window's mean loss (0-d, on the device)."""
    loss_sum: torch.Tensor
    """Summed per-image loss over the window's images on this rank."""
    correct: torch.Tensor
    images: int
    """Images this rank trained on in the window."""
    shape: tuple[int, ...]
    """The last micro-batch's input shape (compile and autotune happen per shape)."""


def train_step(
    module: nn.Module,
    ddp: nn.Module | None,
    micro_batches: Iterator[Batch],
    count: int,
    window_images: int,
    *,
    t: TrainSpec,
    world_size: int,
    loss_weights: torch.Tensor | None,
    scaler: torch.amp.GradScaler | None,
) -> StepResult:
    """Forward and backward ``count`` micro-batches, leaving the window's gradients summed.

    ``module`` is what runs the forward pass (compiled or DDP-wrapped); ``ddp`` the
    DistributedDataParallel module whose ``no_sync`` holds the all-reduce back, or None.
    The caller then updates the weights with ``optimizer_step``.
    """
    loss_sum = correct = None
    images = 0
    shape: tuple[int, ...] = ()
    for i in range(count):
        batch = next(micro_batches)
        n = len(batch.labels)
        last = i == count - 1
        # Each rank's gradient is averaged over the ranks by DDP, hence the world size.
        weight = n * world_size / window_images
        sync = contextlib.nullcontext() if ddp is None or last else ddp.no_sync()
        with sync:
            with autocast(t, batch.x.device):
                logits = module(batch.x)
                loss = nn.functional.cross_entropy(
                    logits.float(),
                    batch.targets,
                    weight=loss_weights,
                    label_smoothing=t.label_smoothing,
                )
            scaled = scaler.scale(loss) if scaler is not None else loss
            (scaled if weight == 1.0 else scaled * weight).backward()
        loss = loss.detach()
        hits = (logits.detach().argmax(1) == batch.labels).sum()
        loss_sum = loss * n if loss_sum is None else loss_sum + loss * n
        correct = hits if correct is None else correct + hits
        images += n
        shape = tuple(batch.x.shape)
    assert loss_sum is not None and correct is not None
    return StepResult(loss_sum / images, loss_sum, correct, images, shape)


def optimizer_step(
    t: TrainSpec,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler | None,
) -> None:
    """One update: unscale (fp16), clip, step, and clear the gradients."""
    if scaler is not None:
        scaler.unscale_(optimizer)
    if t.grad_clip is not None:
        nn.utils.clip_grad_norm_(model.parameters(), t.grad_clip)
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)
