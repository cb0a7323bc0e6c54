"""The main window's status texts and screen fit (app/models/window_status.py), without Qt."""

from __future__ import annotations

from types import SimpleNamespace

from cnn_lab.app.models.window_status import (
    StoreWaits,
    finished_status,
    fit_corner,
    fit_size,
    recommended_train,
    step_status,
)
from cnn_lab.engine.specs import TrainSpec


def test_the_status_line_follows_the_steps_and_the_end() -> None:
    step = SimpleNamespace(epoch=2, step=140, loss=0.123456, images_per_s=12345.6)
    assert step_status(3, step) == "Run 3: epoch 2, step 140, loss 0.1235, 12,346 images/s"
    assert finished_status(3, "completed", "") == "Run 3 completed."
    assert finished_status(3, "failed", "Out of memory.") == "Run 3 failed. Out of memory."


def test_runs_waiting_for_the_store_are_named_in_the_order_they_began() -> None:
    waits = StoreWaits()
    assert waits.text() == ""
    waits.set(4, True)
    assert waits.text().endswith("; run 4 waits to save…")
    waits.set(2, True)
    waits.set(9, True)
    waits.set(2, True)  # already waiting: named once
    assert "runs 4, 2 and 9 wait to save" in waits.text()
    waits.set(4, False)
    waits.set(7, False)  # never waited: nothing changes
    assert "runs 2 and 9 wait" in waits.text()
    waits.set(2, False)
    waits.set(9, False)
    assert waits.text() == ""


def test_a_recommendation_changes_the_recipe_or_says_why_not() -> None:
    train = TrainSpec()
    changed, sentence = recommended_train(train, {"batch_size": 16})
    assert changed is not None and changed.batch_size == 16
    assert sentence == "Set batch_size = 16 for the next run (Hyperparameters panel)."
    refused, sentence = recommended_train(train, {"batch_size": -1})
    assert refused is None and sentence.startswith("Cannot set batch_size = -1: ")


def test_the_window_is_cut_to_the_screen_but_not_below_its_minimum_width() -> None:
    laptop = (0, 0, 1366, 740)  # 768 less a panel
    assert fit_size((1280, 800), 838, laptop, (0, 32)) == (1280, 708)
    assert fit_size((1920, 1080), 838, laptop, (2, 30)) == (1364, 710)
    assert fit_size((1280, 800), 900, (0, 0, 800, 600), (0, 32)) == (900, 568)


def test_the_frame_is_moved_as_little_as_it_takes_to_lie_inside() -> None:
    area = (0, 24, 1366, 744)
    assert fit_corner((100, 100, 800, 600), area) == (100, 100)  # inside: stays
    assert fit_corner((900, 300, 800, 600), area) == (566, 168)  # off the bottom right
    assert fit_corner((-50, 0, 800, 600), area) == (0, 24)  # off the top left
    assert fit_corner((10, 10, 2000, 900), area) == (0, 24)  # larger: pinned top-left
