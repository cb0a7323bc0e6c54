"""The Evaluate panel's background work: score and store a run, fetch its mistakes' pictures.

Both run on the thread pool (a Task), so they take a database path, not a live store, and
hand the GUI thread plain data. The scoring and storing is the engine's one rule
(``evaluate_and_store``, as ``cnn-lab evaluate`` uses it); torch loads only inside.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from cnn_lab.engine.store import open_store

DEVICE = "auto"
"""A GPU when there is one: scoring is inference only, light beside a training job."""


@dataclass(frozen=True)
class Evaluated:
    """What the background evaluation hands the GUI thread: plain data only."""

    run_id: int
    evaluation: dict[str, Any]
    """``Evaluation.to_dict()``, exactly as stored in the run's summary."""
    images: list[np.ndarray | None]


def evaluate_run_and_images(
    db_path: str,
    run_id: int,
    split: str,
    mistakes: int,
    progress: Callable[[str, int, int], None],
    should_stop: Callable[[], bool],
) -> Evaluated:
    """Score the run, keep the result in its summary, and fetch the mistakes' pictures."""
    from cnn_lab.engine.evaluation.evaluate import evaluate_and_store

    with open_store(db_path) as store:
        result = evaluate_and_store(
            store,
            run_id,
            split=split,  # type: ignore[arg-type]  # one of SPLITS' values
            mistakes=mistakes,
            device=DEVICE,
            should_stop=should_stop,
            progress=progress,
        )
    data = result.to_dict()
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
    from cnn_lab.engine.evaluation.mistake_images import stored_mistake_images

    with open_store(db_path) as store:
        record = store.get_run(run_id)
    return stored_mistake_images(record, evaluation, should_stop=should_stop, progress=progress)


__all__ = ["DEVICE", "Evaluated", "evaluate_run_and_images", "load_mistake_images"]
