"""The Hyperparameters form's fine-tuning rules, without Qt: the line that says the phases,
and whether automatic is on for the architecture."""

from __future__ import annotations

from cnn_lab.app.models import hyperparameters_form as rules
from cnn_lab.engine.specs import ArchitectureSpec, TrainSpec


def test_automatic_is_off_for_random_weights_and_says_why() -> None:
    text = rules.fine_tune_text(TrainSpec(epochs=10), ArchitectureSpec())
    assert text == "Automatic: off, because the network starts from random weights."


def test_with_published_weights_the_two_phases_are_said_in_words() -> None:
    architecture = ArchitectureSpec(preset="resnet18", weights="IMAGENET1K_V1")
    text = rules.fine_tune_text(TrainSpec(epochs=10, lr=1e-3), architecture)
    assert text.splitlines() == [
        "Automatic: on, because the network starts from trained weights.",
        "Epoch 1: head only, rate 0.001",
        "Epochs 2–10: all layers, rates 1e-05 … 0.001",
    ]


def test_on_with_a_frozen_backbone_is_a_problem_sentence() -> None:
    architecture = ArchitectureSpec(
        preset="resnet18", weights="IMAGENET1K_V1", freeze_backbone=True
    )
    train = TrainSpec(epochs=4, fine_tune={"mode": "on", "head_epochs": 2})
    assert "freezes the backbone" in rules.fine_tune_text(train, architecture)


def test_a_head_phase_as_long_as_the_run_is_refused_in_the_form_s_words() -> None:
    values = TrainSpec(epochs=2).model_dump()
    values["fine_tune"] = {"mode": "on", "head_epochs": 2, "lr_ratio": 100.0, "groups": 3}
    spec, problem = rules.check(values)
    assert spec is None
    assert "head alone for 2 epoch(s)" in problem


def test_the_undo_text_names_the_recipe() -> None:
    value = TrainSpec().fine_tune
    assert rules.fine_tune_value_text(value) == "auto, 1 head epoch(s), ratio 100, 3 groups"
