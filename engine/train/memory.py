"""Out of memory: recognise it, and find the batch size that fits, to say so in the failure.

A person who sees "CUDA out of memory" wants to know what to change. Probing a few forward
and backward passes at halved batch sizes answers that directly ("batch 128 fits"), and the
window can offer to retry with it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch

from cnn_lab.engine.errors import UserError


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
