"""The pictures behind an evaluation's mistakes, as the run's dataset holds them.

A Mistake names its image by its row in the prepared dataset (``index``) and by the file it
came from (``name``). The rows are read back from the dataset's decoded cache, so this is
cheap after training; but the data may have changed since the evaluation was stored (files
added, removed or renamed), so a row whose name no longer matches gives no picture rather
than someone else's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from cnn_lab.engine.specs import DatasetSpec
from cnn_lab.engine.store import RunRecord


def mistake_images(
    dataset: DatasetSpec,
    rows: Sequence[tuple[int, str]],
    should_stop: Callable[[], bool] = lambda: False,
    progress: Callable[[str, int, int], None] = lambda *_: None,
) -> list[np.ndarray | None]:
    """Each ``(index, name)``'s uint8 H×W×C image, or None where the dataset no longer has it."""
    from cnn_lab.engine.data.prepare import prepare_dataset

    if not rows:
        return []
    prepared = prepare_dataset(dataset, progress=progress, should_stop=should_stop)
    found: list[np.ndarray | None] = []
    for index, name in rows:
        if 0 <= index < len(prepared) and prepared.shown[index] == name:
            found.append(np.array(prepared.images[index]))  # a copy: the cache may be mapped
        else:
            found.append(None)
    return found


def stored_mistake_images(
    record: RunRecord,
    evaluation: Mapping[str, Any],
    should_stop: Callable[[], bool] = lambda: False,
    progress: Callable[[str, int, int], None] = lambda *_: None,
) -> list[np.ndarray | None]:
    """The pictures of a stored evaluation's (``Evaluation.to_dict()``) mistakes, from the
    run's dataset at the size the run trained at (recorded), not at what auto chooses today."""
    from cnn_lab.engine.data.auto_preprocess import as_trained
    from cnn_lab.engine.specs import RunSpec

    rows = [(int(m["index"]), str(m["name"])) for m in evaluation.get("mistakes", [])]
    dataset = as_trained(
        RunSpec.from_json(record.spec_json).dataset, record.summary.get("input_shape")
    )
    return mistake_images(dataset, rows, should_stop=should_stop, progress=progress)


__all__ = ["mistake_images", "stored_mistake_images"]
