"""The verdict card's Apply reaches the recipe through the window, and a bad value is refused."""

from __future__ import annotations

from cnn_lab.app.main_window import MainWindow


def test_apply_from_the_verdict_card_sets_the_recipe(window: MainWindow) -> None:
    window.monitor_panel.apply_recommendation.emit({"channels_last": False, "compile": True})
    assert window.state.train.channels_last is False
    assert window.state.train.compile is True
    assert window.hyperparameters_panel.values()["compile"] is True
    assert "compile = True" in window.status_label.text()


def test_a_value_the_recipe_refuses_is_explained_and_changes_nothing(window: MainWindow) -> None:
    before = window.state.train
    assert not window.apply_recommendation({"batch_size": 0})
    assert window.state.train == before
    assert "Cannot set batch_size = 0" in window.status_label.text()
