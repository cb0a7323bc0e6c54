"""The words the Evaluate panel writes about a stored evaluation."""

from __future__ import annotations

from typing import Any

from cnn_lab.app.models.evaluation_form import (
    button_text,
    caption,
    evaluated_text,
    gallery_heading,
    mistake_tooltip,
    summary_text,
)

STORED: dict[str, Any] = {
    "run_id": 4,
    "split": "val",
    "images": 1200,
    "accuracy": 0.875,
    "loss": 0.31234,
    "macro_f1": 0.8612,
    "weighted_f1": 0.87,
    "note": "The run held out no test images: this is validation.",
}
MISTAKE = {
    "name": "cats/7.png",
    "true": "cat",
    "predicted": "dog",
    "confidence": 0.914,
    "loss": 2.5,
}


def test_the_summary_names_the_split_and_carries_the_note() -> None:
    assert summary_text(STORED) == (
        "Run 4 on its val split (1,200 images): accuracy 87.50%, loss 0.3123, "
        "macro F1 0.861, weighted F1 0.870. The run held out no test images: this is validation."
    )
    assert summary_text({**STORED, "note": ""}).endswith("weighted F1 0.870.")
    assert evaluated_text(STORED) == (
        "Run 4 evaluated on its val split (1,200 images); the result is kept with the run."
    )


def test_a_mistake_reads_true_then_predicted_with_its_file_in_the_tooltip() -> None:
    assert caption(MISTAKE) == "cat → dog (91%)"
    assert mistake_tooltip(MISTAKE) == (
        "cats/7.png\nlabelled cat, predicted dog with 91.4%\nloss 2.500"
    )


def test_no_mistakes_is_said_and_a_second_evaluation_is_named() -> None:
    assert gallery_heading(0) == "No mistakes: every image was classified correctly."
    assert gallery_heading(3).startswith("The 3 misclassified images with the highest loss")
    assert button_text(9, evaluated=False) == "Evaluate run 9"
    assert button_text(9, evaluated=True) == "Evaluate again"
