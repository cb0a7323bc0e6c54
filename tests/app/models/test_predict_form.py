"""The Predict panel's rows: cut to the chosen top, the answer's words, the batch's summary."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from cnn_lab.app.models.predict_form import answer_text, predicted_text, shown
from cnn_lab.app.models.predict_work import read_thumbnail
from cnn_lab.engine.evaluation.predict import Prediction

RANKED = Prediction("a.png", [("cat", 0.7), ("dog", 0.2), ("fox", 0.1)])
BROKEN = Prediction("b.png", error="not an image file")


def test_top_only_cuts_the_ranked_classes() -> None:
    cut = shown([RANKED, BROKEN], 2)
    assert cut[0].top == [("cat", 0.7), ("dog", 0.2)] and cut[1] == BROKEN
    assert RANKED.top[2] == ("fox", 0.1)  # every class stays for the next change of top


def test_an_answer_is_its_classes_or_why_the_file_was_not_read() -> None:
    assert answer_text(RANKED) == "cat 70.0%   dog 20.0%   fox 10.0%"
    assert answer_text(BROKEN) == "Not read: not an image file"
    assert predicted_text(5, [RANKED]) == "Run 5 predicted 1 images."
    assert predicted_text(5, [RANKED, BROKEN, BROKEN]) == (
        "Run 5 predicted 1 images; 2 could not be read (see their rows)."
    )


def test_thumbnails_fit_the_side_keep_the_aspect_and_skip_broken_files(tmp_path: Path) -> None:
    photo = tmp_path / "wide.jpg"
    Image.fromarray(np.full((300, 600, 3), 200, np.uint8)).save(photo)
    small = tmp_path / "small.png"
    Image.fromarray(np.zeros((16, 8), np.uint8)).save(small)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    wide = read_thumbnail(photo, 64)
    assert wide is not None and wide.shape == (32, 64, 3) and wide.dtype == np.uint8
    tiny = read_thumbnail(small, 64)
    assert tiny is not None and tiny.shape == (16, 8, 3)  # never enlarged here
    assert read_thumbnail(broken) is None
    assert read_thumbnail(tmp_path / "gone.png") is None
