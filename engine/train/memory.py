"""Out of memory: recognise it, and find the batch size that fits, to say so in the failure.

A person who sees "CUDA out of memory" wants to know what to change. Probing a few forward
and backward passes at halved batch sizes answers that directly ("batch 128 fits"), and the
window can offer to retry with it.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable

import torch
from torch import nn

from cnn_lab.engine.data.loader import Batch
from cnn_lab.engine.errors import UserError
from cnn_lab.engine.specs import TrainSpec
from cnn_lab.engine.train.options import autocast


def is_out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, torch.OutOfMemoryError | MemoryError):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


class OutOfMemory(UserError):
    """The device ran out of memory at ``batch_size``; the loop turns it into a failure."""

    def __init__(self, device: torch.device, batch_size: int) -> None:
        where = "GPU" if device.type == "cuda" else device.type.upper()
        super().__init__(
            f"The {where} ran out of memory at batch size {batch_size}.",
            hint="Lower the batch size or the model width, or use bf16/fp16 precision.",
        )
        self.device = device
        self.batch_size = batch_size


def free_device_memory(device: torch.device) -> None:
    import gc

    gc.collect()
    if device.type == "cuda":
        with contextlib.suppress(RuntimeError):
            torch.cuda.empty_cache()


def largest_fitting_batch(
    try_batch: Callable[[int], None], failed_at: int, device: torch.device
) -> int | None:
    """The largest batch below ``failed_at`` (halving) for which ``try_batch`` succeeds.

    ``try_batch(n)`` runs one forward and backward pass at batch ``n`` and raises when memory
    runs out. None when not even one image fits.
    """
    size = failed_at // 2
    while size >= 1:
        free_device_memory(device)
        try:
            try_batch(size)
        except Exception as exc:
            if not is_out_of_memory(exc):
                raise
            size //= 2
            continue
        return size
    return None


def probe_out_of_memory(
    t: TrainSpec,
    module: nn.Module,
    optimizer: torch.optim.Optimizer,
    batch: Batch,
    world_size: int,
) -> tuple[str, str, int | None]:
    """(message, hint, batch size that fits) after the device ran out of memory on ``batch``.

    Call it after the except block that caught the error has ended: while the traceback is
    alive it holds the failed step's frames and their activations, and the probe would run
    on a device that is still full. It frees the gradients, then probes halved batches. The
    hint keeps the effective batch (batch x accumulation) with the accumulation it needs.
    """
    optimizer.zero_grad(set_to_none=True)
    x, targets = batch.x, batch.targets
    error = OutOfMemory(x.device, t.batch_size)

    def try_batch(n: int) -> None:
        try:
            with autocast(t, x.device):
                nn.functional.cross_entropy(module(x[:n]).float(), targets[:n]).backward()
        finally:
            optimizer.zero_grad(set_to_none=True)

    fits = largest_fitting_batch(try_batch, len(x), x.device)
    if fits is None:
        return error.message, "Not even one image fits: use a smaller model.", None
    per_step = fits * world_size
    accumulation = max(1, math.ceil(t.effective_batch / per_step))
    hint = (
        f"Batch size {per_step} fits: retry with it (and grad accumulation "
        f"{accumulation} to keep the effective batch)."
    )
    return error.message, hint, per_step
