"""The Predict panel's background work: the engine's predictions, and a thumbnail per file.

It runs on the thread pool (a Task), so it takes a database path, hands back plain data,
and reads thumbnails as uint8 arrays (the GUI thread turns them into pixmaps). The
predicting itself is the engine's ``predict_files``, as ``cnn-lab predict`` uses it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cnn_lab.engine.errors import Cancelled

DEVICE = "auto"
"""A GPU when there is one: one image at a time is light beside a training job."""
THUMBNAIL = 64
"""Side of a row's thumbnail in pixels."""


@dataclass(frozen=True)
class Predicted:
    """What a background prediction hands the GUI thread."""

    run_id: int
    predictor: Any
    """The run's engine Predictor, kept for the next drop."""
    predictions: list[Any]
    """engine Predictions, every class ranked (the table shows the first ``top``)."""
    thumbnails: list[np.ndarray | None]
    """uint8 H×W×3 pictures at most ``THUMBNAIL`` pixels a side (None: not readable)."""


def read_thumbnail(path: str | os.PathLike[str], side: int = THUMBNAIL) -> np.ndarray | None:
    """The file shrunk to fit ``side`` pixels, or None if it cannot be read.

    Decoded by the engine's decoder, so it is the picture the run was given (EXIF
    orientation applied, transparency flattened); a JPEG is decoded at a reduced size
    directly, which makes a folder of photos quick.
    """
    from cnn_lab.engine.data.decode import ImageSkipped, decode_file

    try:
        image = decode_file(Path(path), target=(side, side)).image
    except ImageSkipped:
        return None
    image.thumbnail((side, side))
    return np.asarray(image)


def predict_with_thumbnails(
    db_path: str,
    run_id: int,
    predictor: Any,
    paths: Sequence[str],
    progress: Callable[[str, int, int], None],
    should_stop: Callable[[], bool],
) -> Predicted:
    """Predict every image in ``paths`` (folders included), then read their thumbnails."""
    from cnn_lab.engine.evaluation.predict import predict_files

    done = predict_files(
        db_path,
        run_id,
        paths,
        predictor=predictor,
        device=DEVICE,
        should_stop=should_stop,
        progress=progress,
    )
    thumbnails = []
    for prediction in done.predictions:
        if should_stop():
            raise Cancelled("The prediction was stopped.")
        thumbnails.append(None if prediction.error else read_thumbnail(prediction.image))
    return Predicted(run_id, done.predictor, done.predictions, thumbnails)


__all__ = ["DEVICE", "THUMBNAIL", "Predicted", "predict_with_thumbnails", "read_thumbnail"]
