"""The fine-tuning recipe: layer groups, discriminative rates, frozen BatchNorm, the two phases
in the loop, and resuming in either phase bit for bit (CPU)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from cnn_lab.engine.errors import UserError
from cnn_lab.engine.models import InputShape, build_model
from cnn_lab.engine.specs import RunSpec, TrainSpec
from cnn_lab.engine.specs.train import fine_tuning, fine_tuning_on
from cnn_lab.engine.store import status as st
from cnn_lab.engine.train import checkpoint as ck
from cnn_lab.engine.train.events import EpochEnd, RunStarted, StepEnd
from cnn_lab.engine.train.fine_tune import (
    Freezer,
    PhasedSchedule,
    fine_tune_optimizer,
    split_layer_groups,
)
from cnn_lab.engine.train.fine_tune_plan import ALL_PHASE, HEAD_PHASE, group_rates, phase_lines
from cnn_lab.engine.train.loop import train_events
from cnn_lab.engine.tune.lr_finder import HEAD_PHASE_NOTE, lr_range_test

STEPS_PER_EPOCH = 5  # 200 images, 80% train, batch 32


def tiny_net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 4),
    )


def recipe(**fine_tune: Any) -> TrainSpec:
    return TrainSpec(
        epochs=3, lr=1e-3, optimizer="adamw", device="cpu", fine_tune={"mode": "on", **fine_tune}
    )


# ----------------------------------------------------------------------- groups and rates


def test_groups_cover_every_parameter_once_with_the_head_last() -> None:
    model = tiny_net()
    groups = split_layer_groups(model, 3)
    assert groups.names == ("body1", "body2", "head")
    everything = [id(p) for g in groups.params for p in g]
    assert sorted(everything) == sorted(id(p) for p in model.parameters())
    assert [id(p) for p in groups.params[-1]] == [id(p) for p in model[8].parameters()]
    # Module order: the first convolution is in the first group, the second in the second.
    assert id(model[0].weight) in {id(p) for p in groups.params[0]}
    assert id(model[3].weight) in {id(p) for p in groups.params[1]}


def test_rates_are_geometric_from_lr_over_ratio_to_lr() -> None:
    assert group_rates(1e-3, 100, 3) == pytest.approx([1e-5, 1e-4, 1e-3])
    assert group_rates(1e-2, 10, 2) == pytest.approx([1e-3, 1e-2])
    optimizer = fine_tune_optimizer(split_layer_groups(tiny_net(), 3), recipe(), "cpu")
    rates = {g["name"]: g["lr"] for g in optimizer.param_groups}
    assert rates["body1.decay"] == pytest.approx(1e-5)
    assert rates["body2.no_decay"] == pytest.approx(1e-4)
    assert rates["head.decay"] == pytest.approx(1e-3)


def test_a_network_without_a_linear_head_is_refused_with_a_sentence() -> None:
    with pytest.raises(UserError, match="needs a linear classifier"):
        split_layer_groups(nn.Sequential(nn.Conv2d(3, 4, 1), nn.Flatten()), 3)


# ----------------------------------------------------------------------- freezing


def train_steps(model: nn.Module, optimizer: torch.optim.Optimizer, n: int) -> None:
    model.train()
    generator = torch.Generator().manual_seed(1)
    for _ in range(n):
        x = torch.randn(6, 3, 8, 8, generator=generator) * 3 + 1
        y = torch.randint(0, 4, (6,), generator=generator)
        optimizer.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()


def test_frozen_body_and_its_batchnorm_statistics_do_not_move_in_phase_one() -> None:
    model = tiny_net()
    groups = split_layer_groups(model, 3)
    optimizer = fine_tune_optimizer(groups, recipe(), "cpu")
    freezer = Freezer(model, groups)
    freezer.enter(HEAD_PHASE)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    train_steps(model, optimizer, 3)
    after = model.state_dict()
    for key in ("0.weight", "1.weight", "1.running_mean", "1.running_var", "4.running_mean"):
        assert torch.equal(before[key], after[key]), key
    assert int(after["1.num_batches_tracked"]) == 0
    assert not torch.equal(before["8.weight"], after["8.weight"])  # the head learned
    assert not model[1].training and not model[4].training  # even after model.train()
    assert not model[0].weight.requires_grad and model[8].weight.requires_grad


def test_phase_two_thaws_every_layer_and_its_batchnorm() -> None:
    model = tiny_net()
    groups = split_layer_groups(model, 3)
    optimizer = fine_tune_optimizer(groups, recipe(), "cpu")
    freezer = Freezer(model, groups)
    freezer.enter(HEAD_PHASE)
    train_steps(model, optimizer, 1)
    freezer.enter(ALL_PHASE)
    assert all(p.requires_grad for p in model.parameters())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    train_steps(model, optimizer, 2)
    assert model[1].training
    assert not torch.equal(before["1.running_mean"], model.state_dict()["1.running_mean"])
    assert not torch.equal(before["0.weight"], model.state_dict()["0.weight"])


def test_the_schedule_restarts_for_phase_two_and_records_the_phase() -> None:
    model = tiny_net()
    t = recipe()
    groups = split_layer_groups(model, 3)
    optimizer = fine_tune_optimizer(groups, t, "cpu")
    schedule = PhasedSchedule(optimizer, Freezer(model, groups), t, 30, 10)
    assert schedule.steps == {HEAD_PHASE: 10, ALL_PHASE: 20}
    first = schedule.lr  # one-cycle starts at lr / 25
    assert first == pytest.approx(1e-3 / 25)
    for _ in range(10):
        schedule.step_batch()
    assert not schedule.enter(1) and schedule.enter(2)
    assert schedule.lr == pytest.approx(first)  # a new cycle
    assert optimizer.param_groups[0]["lr"] == pytest.approx(1e-5 / 25)
    assert schedule.state_dict()["fine_tune_phase"] == ALL_PHASE
    assert model[0].weight.requires_grad


# ----------------------------------------------------------------------- spec


def pretrained_file(tmp_path: Path) -> Path:
    path = tmp_path / "pretrained.pt"
    torch.save(build_model(RunSpec().architecture, InputShape(3, 16, 16, 4)).state_dict(), path)
    return path


def test_auto_is_on_with_pretrained_weights_and_off_without(tmp_path: Path) -> None:
    plain = RunSpec()
    assert not fine_tuning_on(plain)
    assert "random weights" in fine_tuning(plain).reason
    pretrained = RunSpec.from_dict({"architecture": {"pretrained": str(pretrained_file(tmp_path))}})
    assert fine_tuning_on(pretrained)
    published = RunSpec.from_dict({"architecture": {"preset": "resnet18", "weights": "DEFAULT"}})
    assert fine_tuning_on(published)
    frozen = pretrained.model_copy(
        update={
            "architecture": pretrained.architecture.model_copy(update={"freeze_backbone": True})
        }
    )
    assert not fine_tuning_on(frozen)
    off = pretrained.model_copy(update={"train": TrainSpec(fine_tune={"mode": "off"})})
    assert not fine_tuning_on(off)
    on_and_frozen = frozen.model_copy(update={"train": TrainSpec(fine_tune={"mode": "on"})})
    assert "freezes the backbone" in fine_tuning(on_and_frozen).problem


def test_the_spec_refuses_a_run_too_short_for_two_phases() -> None:
    with pytest.raises(ValueError, match="leave none"):
        TrainSpec(epochs=2, fine_tune={"mode": "on", "head_epochs": 2})
    TrainSpec(epochs=1)  # auto: simply off for so short a run, never refused


def test_old_spec_hashes_are_unchanged() -> None:
    assert RunSpec().spec_hash() == "87408ed31518ec38"
    assert RunSpec(train=TrainSpec(fine_tune={"mode": "off"})).spec_hash() != "87408ed31518ec38"


def test_phase_lines_say_the_phases_in_words() -> None:
    t = TrainSpec(epochs=10, lr=1e-3)
    assert phase_lines(t) == [
        "Epoch 1: head only, rate 0.001",
        "Epochs 2–10: all layers, rates 1e-05 … 0.001",
    ]


# ----------------------------------------------------------------------- the loop


def run_spec(**train: Any) -> RunSpec:
    return RunSpec.from_dict(
        {
            "dataset": {"source": "sample:shapes", "limit": 200, "image_size": 16},
            "architecture": {"preset": "small_cnn", "width": 0.25},
            "train": {
                "epochs": 3,
                "batch_size": 32,
                "device": "cpu",
                "optimizer": "sgd",
                "lr": 0.05,
                "fine_tune": {"mode": "on"},
                **train,
            },
        }
    )


def run(spec: RunSpec, folder: Path, *, stop_after: int | None = None, resume: bool = False):
    steps = 0

    def should_stop() -> bool:
        return stop_after is not None and steps >= stop_after

    events = []
    for event in train_events(spec, should_stop=should_stop, checkpoint_dir=folder, resume=resume):
        events.append(event)
        if isinstance(event, StepEnd):
            steps += 1
    return events


@pytest.fixture(scope="module")
def whole(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Any]]:
    folder = tmp_path_factory.mktemp("whole")
    return folder, run(run_spec(), folder)


def test_epoch_events_and_summary_say_the_phase(whole: tuple[Path, list[Any]]) -> None:
    _, events = whole
    assert isinstance(events[0], RunStarted)
    assert events[0].fine_tune == (
        "Epoch 1: head only, rate 0.05",
        "Epochs 2–3: all layers, rates 0.0005 … 0.05",
    )
    phases = [e.phase for e in events if isinstance(e, EpochEnd)]
    assert phases == ["head only, rate 0.05"] + ["all layers, rates 0.0005 … 0.05"] * 2
    assert events[-1].status == st.COMPLETED
    assert events[-1].summary["fine_tune"] == list(events[0].fine_tune)


@pytest.mark.parametrize(
    "stop_after", [STEPS_PER_EPOCH - 2, STEPS_PER_EPOCH + 2], ids=["phase 1", "phase 2"]
)
def test_resume_in_either_phase_matches_the_uninterrupted_run(
    whole: tuple[Path, list[Any]], tmp_path: Path, stop_after: int
) -> None:
    folder, events = whole
    spec = run_spec()
    first = run(spec, tmp_path, stop_after=stop_after)
    assert first[-1].status == st.STOPPED
    saved = ck.load_checkpoint(ck.checkpoint_path(tmp_path, ck.LAST))
    expected_phase = HEAD_PHASE if stop_after < STEPS_PER_EPOCH else ALL_PHASE
    assert saved.extra_json["schedule"]["fine_tune_phase"] == expected_phase
    second = run(spec, tmp_path, resume=True)
    assert second[-1].status == st.COMPLETED
    a = ck.load_checkpoint(ck.checkpoint_path(folder, ck.LAST)).model
    b = ck.load_checkpoint(ck.checkpoint_path(tmp_path, ck.LAST)).model
    for key in a:
        assert torch.equal(a[key], b[key]), key
    losses = {e.step: e.loss for e in events if isinstance(e, StepEnd)}
    rates = {e.step: e.lr for e in events if isinstance(e, StepEnd)}
    for event in second:
        if isinstance(event, StepEnd):
            assert event.loss == losses[event.step]
            assert event.lr == rates[event.step]


def test_resuming_with_the_other_recipe_is_a_sentence(
    whole: tuple[Path, list[Any]], tmp_path: Path
) -> None:
    folder, _ = whole
    with pytest.raises(UserError, match="trained with the fine-tuning recipe"):
        run(run_spec(fine_tune={"mode": "off"}), folder, resume=True)


def test_the_lr_finder_measures_the_head_phase() -> None:
    spec = run_spec(epochs=2)
    result = lr_range_test(spec, steps=12, start_lr=1e-4, end_lr=1.0)
    assert result.message.startswith(HEAD_PHASE_NOTE)
    plain = lr_range_test(run_spec(fine_tune={"mode": "off"}), steps=12)
    assert HEAD_PHASE_NOTE not in plain.message
