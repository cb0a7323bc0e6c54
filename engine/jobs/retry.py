"""The spec that retries a run which ran out of memory, with the batch size that fits.

The training loop probes, on an out-of-memory failure, the largest batch that fits and records
it in the run's summary (``suggested_batch_size``); the window offers one click to train again
with it. Written here, not in the window, so the rule (keep the effective batch through
gradient accumulation) is the engine's and tested without Qt.
"""

from __future__ import annotations

from typing import Any

from cnn_lab.engine.specs import RunSpec
from cnn_lab.engine.store.status import FAILED

SUGGESTED_BATCH_KEY = "suggested_batch_size"
"""The summary key where an out-of-memory failure records the batch size that fits."""


def suggested_batch(status: str, summary: dict[str, Any]) -> int | None:
    """The batch size to retry a run with: only a failed run that recorded one has it."""
    fits = summary.get(SUGGESTED_BATCH_KEY) if status == FAILED else None
    return int(fits) if fits else None


def retry_spec(spec: RunSpec, fits: int) -> RunSpec:
    """``spec`` with batch ``fits``, accumulating gradients over enough batches that the
    effective batch is at least what it was (the recipe's learning rate was tuned for it)."""
    train = spec.train
    accumulation = max(1, -(-train.effective_batch // fits))
    retried = train.model_copy(update={"batch_size": fits, "grad_accumulation": accumulation})
    return spec.model_copy(update={"train": retried})
