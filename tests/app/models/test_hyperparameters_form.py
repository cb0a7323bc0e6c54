"""The Hyperparameters form's rules without a window: which fields show, the rate the form
suggests, the recipe the fields make or the sentence that refuses it, and the device texts."""

from __future__ import annotations

import pytest

from cnn_lab.app.models import hyperparameters_form as rules
from cnn_lab.app.models.hyperparameters_form import (
    LABELS,
    OPTIMIZER_FIELDS,
    SCHEDULE_FIELDS,
    HyperparametersForm,
)
from cnn_lab.engine.monitor.nvml import GpuInfo
from cnn_lab.engine.specs import TrainSpec
from cnn_lab.engine.train.optimizers import optimizer_info

GPUS = (GpuInfo(0, "NVIDIA L4", 24_000.0, "GPU-0"), GpuInfo(1, "Tesla T4", 16_000.0, "GPU-1"))


def test_only_the_fields_an_optimizer_and_a_schedule_use_are_shown() -> None:
    shown = rules.visible_fields("adam", "onecycle")
    assert shown == {name: name == "weight_decay" for name in OPTIMIZER_FIELDS + SCHEDULE_FIELDS}
    shown = rules.visible_fields("sgd", "step")
    assert [name for name, on in shown.items() if on] == [
        "momentum", "nesterov", "weight_decay", "warmup_epochs", "lr_decay"
    ]  # fmt: skip


def test_an_optimizer_or_schedule_this_build_lacks_shows_every_field() -> None:
    assert all(rules.visible_fields("lion-from-the-future", "cosine-restarts").values())
    assert rules.description(rules.optimizer_or_none("lion-from-the-future")) == ""
    assert rules.description(rules.optimizer_or_none("sgd")) == optimizer_info("sgd").description


def test_a_rate_is_the_persons_own_unless_the_form_suggested_it() -> None:
    assert not rules.is_own_rate(TrainSpec().lr, "adamw")  # TrainSpec's default
    assert not rules.is_own_rate(optimizer_info("sgd").default_lr, "sgd")
    assert rules.is_own_rate(0.0123, "sgd")


def test_a_new_optimizer_brings_its_usual_rate_in_place_of_a_suggested_one() -> None:
    form = HyperparametersForm(TrainSpec())
    form.loaded(TrainSpec())
    assert form.optimizer_chosen("sgd", TrainSpec().lr) == optimizer_info("sgd").default_lr
    assert form.note == "" and form.optimizer_shown == "sgd"
    assert form.optimizer_chosen("sgd", 0.05) is None  # the same optimizer again: nothing


def test_a_rate_of_the_persons_own_is_kept_with_a_note() -> None:
    form = HyperparametersForm(TrainSpec())
    form.rate_typed(0.0123, "adamw")
    assert form.optimizer_chosen("sgd", 0.0123) is None
    assert form.note == (
        "SGD with momentum usually starts at a learning rate of 0.05; your rate of 0.0123 was kept."
    )
    form.loaded(TrainSpec(lr=0.05, optimizer="sgd"))  # a suggestion again, and no note
    assert not form.lr_own and form.note == ""


def test_an_unknown_optimizer_leaves_the_rate_alone() -> None:
    form = HyperparametersForm(TrainSpec())
    assert form.optimizer_chosen("lion-from-the-future", 0.01) is None
    assert form.optimizer_shown == "lion-from-the-future"


def test_the_values_keep_fields_the_form_lacks_and_drop_a_hidden_warm_up() -> None:
    form = HyperparametersForm(TrainSpec())
    loaded = TrainSpec(warmup_epochs=2.0, schedule="cosine").model_dump()
    widgets = set(loaded) - {"seed"}  # a form without a seed box
    form.showing(loaded, widgets)
    assert form.passthrough == {"seed": loaded["seed"]}
    shown = {name: loaded[name] for name in widgets}
    assert form.values(shown) == loaded
    values = form.values({**shown, "schedule": "onecycle"})  # one-cycle has its own warm-up
    assert values["warmup_epochs"] == 0.0 and values["seed"] == loaded["seed"]


def test_a_valid_recipe_is_a_train_spec() -> None:
    values = TrainSpec(epochs=7).model_dump()
    spec, problem = rules.check(values)
    assert spec == TrainSpec(epochs=7) and problem == ""


def test_a_refused_field_is_a_sentence_with_the_forms_label() -> None:
    spec, problem = rules.check({**TrainSpec().model_dump(), "batch_size": 0})
    assert spec is None
    assert problem.startswith(f"{LABELS['batch_size']}: ") and problem.endswith(".")
    assert "Error" not in problem and "batch_size" not in problem


def test_a_warm_up_as_long_as_the_run_is_refused_while_editing() -> None:
    values = {**TrainSpec().model_dump(), "epochs": 2, "schedule": "cosine", "warmup_epochs": 2.0}
    spec, problem = rules.check(values)
    assert spec is None
    assert problem.startswith("The warm-up (2 epochs) is as long as the whole run (2 epochs)")
    assert rules.problem_text(problem).endswith(
        "Until it is fixed, Train uses the last valid recipe."
    )
    assert rules.problem_text("") == ""


@pytest.mark.parametrize(
    ("device", "gpus", "target"),
    [
        ("auto", GPUS, ("cuda", "NVIDIA L4")),
        ("auto", (), ("cpu", None)),
        ("cpu", GPUS, ("cpu", None)),
        ("mps", (), ("mps", None)),
        ("cuda:1", GPUS, ("cuda", "Tesla T4")),
        ("cuda:7", GPUS, ("cuda", None)),  # a stored run's GPU this machine lacks
        ("cuda", GPUS, ("cuda", "NVIDIA L4")),
    ],
)
def test_the_device_chosen_is_a_kind_and_a_gpu(
    device: str, gpus: tuple[GpuInfo, ...], target: tuple[str, str | None]
) -> None:
    assert rules.device_target(device, gpus) == target


def test_device_labels_and_choices() -> None:
    assert rules.device_label("cuda", "Tesla T4") == "Tesla T4"
    assert rules.device_label("cuda", None) == "the CUDA GPU"
    assert rules.device_label("cpu", None) == "CPU"
    assert [value for _, value in rules.device_choices((), "linux")] == ["auto", "cpu"]
    assert [value for _, value in rules.device_choices(GPUS, "darwin")] == [
        "auto", "cpu", "mps", "cuda", "cuda:0", "cuda:1"
    ]  # fmt: skip
    assert [value for _, value in rules.device_choices(GPUS[:1], "linux")] == [
        "auto", "cpu", "cuda:0"
    ]  # fmt: skip


def test_the_effective_batch_counts_accumulation_and_processes() -> None:
    values = {"batch_size": 64, "grad_accumulation": 4, "world_size": 1}
    assert rules.effective_batch_text(values) == "Effective batch: 256 images per optimizer step."
    values["world_size"] = 2
    assert rules.effective_batch_text(values) == (
        "Effective batch: 256 images per optimizer step, 32 per process."
    )


def test_advice_is_the_note_then_what_the_device_refuses() -> None:
    form = HyperparametersForm(TrainSpec())
    assert form.advice(TrainSpec(), "cpu", None) == ""
    form.note = "Applied the fast defaults for CPU."
    advice = form.advice(TrainSpec(precision="fp16"), "cpu", None).split("\n")
    assert advice[0] == form.note
    assert advice[1].startswith("fp16 needs a GPU")


def test_the_choices_the_registries_give() -> None:
    assert ("SGD with momentum", "sgd", optimizer_info("sgd").description) in (
        rules.optimizer_choices()
    )
    assert [value for _, value, _ in rules.schedule_choices()] == [
        "onecycle", "cosine", "step", "plateau", "constant"
    ]  # fmt: skip
    assert [value for _, value, _ in rules.CHOICES["cudnn_benchmark"]] == [None, True, False]
