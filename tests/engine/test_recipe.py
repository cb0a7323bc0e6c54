"""The training recipe's parts: optimizers, schedules, weight EMA and early stopping."""

from __future__ import annotations

import itertools
import json
import math
import subprocess
import sys

import pytest
import torch
from torch import nn

from cnn_lab.engine.errors import UserError
from cnn_lab.engine.specs import TrainSpec
from cnn_lab.engine.train.ema import WeightEMA
from cnn_lab.engine.train.optimizers import (
    build_optimizer,
    kernel_mode,
    optimizer_info,
    optimizer_names,
)
from cnn_lab.engine.train.schedules import (
    LRSchedule,
    build_schedule,
    schedule_info,
    schedule_names,
)
from cnn_lab.engine.train.stopping import EarlyStopping

CPU = torch.device("cpu")


def small_net() -> nn.Module:
    """A tiny CNN in the usual shape: no bias on the convolution that feeds a BatchNorm.

    Such a bias has a gradient of exactly zero in exact arithmetic (the norm subtracts the
    batch mean), so in floats it is rounding noise, and Adam's update (m / sqrt(v)) scales
    that noise to a full learning-rate step whose sign depends on how the CPU's vector kernels
    round: fused and for-loop AdamW then differed by 3.7e-4 on that one value on an AMD EPYC.
    """
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1, bias=False),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 2),
    )


def train_steps(model: nn.Module, optimizer: torch.optim.Optimizer, steps: int = 2) -> None:
    torch.manual_seed(1)
    for _ in range(steps):
        x, y = torch.randn(4, 3, 8, 8), torch.tensor([0, 1, 0, 1])
        optimizer.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()


def spec(**changes: object) -> TrainSpec:
    return TrainSpec(**changes)  # type: ignore[arg-type]


# ---- registries without torch


def test_registries_list_metadata_without_importing_torch() -> None:
    code = (
        "import sys\n"
        "from cnn_lab.engine.train import optimizers as o, schedules as s\n"
        "for n in o.optimizer_names():\n"
        "    i = o.optimizer_info(n); (i.label, i.description, i.fields, i.default_lr,"
        " i.uses_momentum)\n"
        "for n in s.schedule_names():\n"
        "    i = s.schedule_info(n); (i.label, i.description, i.fields, i.accepts_warmup)\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_metadata_names_real_train_spec_fields() -> None:
    assert optimizer_names() == ["sgd", "adam", "adamw", "rmsprop"]
    assert set(schedule_names()) == {"constant", "step", "cosine", "onecycle", "plateau"}
    known = set(TrainSpec.model_fields)
    for name in optimizer_names():
        info = optimizer_info(name)
        assert set(info.fields) <= {"momentum", "nesterov", "weight_decay"}
        assert info.description and 0 < info.default_lr <= 0.1
    assert optimizer_info("sgd").uses_momentum and optimizer_info("rmsprop").uses_momentum
    assert not optimizer_info("adamw").uses_momentum
    for name in schedule_names():
        assert set(schedule_info(name).fields) <= known, name
    assert not schedule_info("onecycle").accepts_warmup
    assert schedule_info("cosine").accepts_warmup


# ---- optimizers


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw", "rmsprop"])
def test_every_optimizer_builds_and_steps_with_auto_kernels(name: str) -> None:
    model = small_net()
    optimizer = build_optimizer(model.parameters(), spec(optimizer=name), CPU)
    expected = "for-loop" if name == "rmsprop" else "fused"  # fused exists on CPU in torch 2.14
    assert kernel_mode(optimizer) == expected
    before = [p.detach().clone() for p in model.parameters()]
    train_steps(model, optimizer)
    assert not torch.equal(before[-2], model[-1].weight)  # the linear weights moved


def test_fused_step_matches_the_plain_loop() -> None:
    results = []
    for mode in ("auto", "off", "foreach"):
        model = small_net()
        optimizer = build_optimizer(model.parameters(), spec(fused_optimizer=mode), CPU)
        train_steps(model, optimizer, steps=3)
        results.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    # The kernels sum and round in different orders (and differently on each CPU's vector
    # units): a few float32 ulps a step, far below one learning-rate step (1e-3), which is
    # what a wrong update (a lost moment, a missed weight decay) would move a weight by.
    for result in results[::2]:
        torch.testing.assert_close(result, results[1], rtol=1e-4, atol=2e-6)


def test_kernel_modes() -> None:
    model = small_net()
    for mode, expected in (("fused", "fused"), ("foreach", "foreach"), ("off", "for-loop")):
        optimizer = build_optimizer(model.parameters(), spec(fused_optimizer=mode), CPU)
        assert kernel_mode(optimizer) == expected


def test_no_weight_decay_on_biases_and_norm_parameters() -> None:
    model = small_net()
    optimizer = build_optimizer(model.parameters(), spec(optimizer="sgd", weight_decay=0.01), CPU)
    decay, no_decay = optimizer.param_groups
    assert (decay["name"], no_decay["name"]) == ("decay", "no_decay")
    assert decay["weight_decay"] == 0.01 and no_decay["weight_decay"] == 0.0
    assert all(p.ndim > 1 for p in decay["params"]) and len(decay["params"]) == 2
    assert all(p.ndim == 1 for p in no_decay["params"]) and len(no_decay["params"]) == 3
    # With zero gradients only decay moves a weight: the 1-D parameters stay put.
    plain = spec(optimizer="sgd", momentum=0.0, weight_decay=0.1, lr=1.0)
    optimizer = build_optimizer(model.parameters(), plain, CPU)
    before = [p.detach().clone() for p in model.parameters()]
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    optimizer.step()
    for b, p in zip(before, model.parameters(), strict=True):
        assert torch.equal(b, p) == (p.ndim == 1)


def test_nesterov_is_dropped_without_momentum() -> None:
    model = small_net()
    optimizer = build_optimizer(
        model.parameters(), spec(optimizer="sgd", momentum=0.0, nesterov=True), CPU
    )
    assert optimizer.defaults["nesterov"] is False
    optimizer = build_optimizer(model.parameters(), spec(optimizer="sgd", momentum=0.9), CPU)
    assert optimizer.defaults["nesterov"] is True


def test_refusals_are_sentences() -> None:
    model = small_net()
    with pytest.raises(UserError, match="no fused kernel for RMSprop on CPU") as caught:
        build_optimizer(model.parameters(), spec(optimizer="rmsprop", fused_optimizer="fused"), CPU)
    assert "auto" in (caught.value.hint or "")
    with pytest.raises(UserError, match="no optimizer called 'lion'"):
        build_optimizer(model.parameters(), spec(optimizer="lion"), CPU)
    with pytest.raises(UserError, match="no parameters to train"):
        build_optimizer([], spec(), CPU)


# ---- schedules


def lr_sequence(schedule: LRSchedule, steps: int) -> list[float]:
    lrs = []
    for _ in range(steps):
        lrs.append(schedule.lr)
        schedule.step_batch()
    return lrs


def fresh(train_spec: TrainSpec, total: int, per_epoch: int = 10) -> LRSchedule:
    optimizer = build_optimizer(small_net().parameters(), train_spec, CPU)
    return build_schedule(optimizer, train_spec, total, per_epoch)


def is_monotone(values: list[float], direction: int) -> bool:
    return all(direction * (b - a) >= -1e-12 for a, b in itertools.pairwise(values))


def test_constant_step_and_cosine_sequences() -> None:
    lrs = lr_sequence(fresh(spec(schedule="constant", lr=0.1), 20), 20)
    assert lrs == [pytest.approx(0.1)] * 20
    lrs = lr_sequence(fresh(spec(schedule="step", lr=0.1, lr_decay=0.5), 20), 20)
    assert lrs[:10] == [pytest.approx(0.1)] * 10
    assert lrs[10:15] == [pytest.approx(0.05)] * 5 and lrs[15:] == [pytest.approx(0.025)] * 5
    lrs = lr_sequence(fresh(spec(schedule="cosine", lr=0.1), 50), 50)
    assert lrs[0] == pytest.approx(0.1) and is_monotone(lrs, -1) and 0 < lrs[-1] < 1e-3
    assert lrs[25] == pytest.approx(0.05)


def test_onecycle_matches_torch_and_short_runs_are_constant() -> None:
    for total in (4, 7, 100):
        train_spec = spec(schedule="onecycle", lr=0.1)
        ours = lr_sequence(fresh(train_spec, total), total)
        reference = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
        torch_schedule = torch.optim.lr_scheduler.OneCycleLR(
            reference, 0.1, total_steps=total, pct_start=max(0.25, 2 / total), cycle_momentum=False
        )
        theirs = []
        for _ in range(total):
            theirs.append(reference.param_groups[0]["lr"])
            reference.step()
            torch_schedule.step()
        assert ours == pytest.approx(theirs, rel=1e-9), total
    for total in (1, 2, 3):
        assert (
            lr_sequence(fresh(spec(schedule="onecycle", lr=0.1), total), 5)
            == [pytest.approx(0.1)] * 5
        )


@pytest.mark.parametrize("name", ["constant", "step", "cosine", "plateau"])
def test_warmup_rises_from_one_percent_to_the_rate(name: str) -> None:
    # 1.5 epochs of 10 steps: 15 warm-up steps, then the schedule over the other 45.
    schedule = fresh(spec(schedule=name, lr=0.2, warmup_epochs=1.5, epochs=6), 60, per_epoch=10)
    assert schedule.warmup_steps == 15
    lrs = lr_sequence(schedule, 60)
    assert lrs[0] == pytest.approx(0.002)
    assert is_monotone(lrs[:16], +1) and lrs[15] == pytest.approx(0.2)
    assert is_monotone(lrs[15:], -1)
    if name == "step":  # the milestones are at 50% and 75% of the 45 steps after warm-up
        assert lrs[15 + 22] == pytest.approx(0.2) and lrs[15 + 23] == pytest.approx(0.02)


def test_warmup_refusals() -> None:
    with pytest.raises(UserError, match="has its own warm-up"):
        fresh(spec(schedule="onecycle", warmup_epochs=1.0), 100)
    with pytest.raises(UserError, match="as long as the whole run"):
        fresh(spec(schedule="cosine", warmup_epochs=3.0, epochs=3), 100)
    with pytest.raises(UserError, match="no schedule called 'linear'"):
        fresh(spec(schedule="linear"), 100)


def test_plateau_follows_the_monitor_once_per_epoch() -> None:
    train_spec = spec(schedule="plateau", lr=0.1, lr_decay=0.5, plateau_patience=1)
    schedule = fresh(train_spec, 100)
    for accuracy, expected in ((0.5, 0.1), (0.6, 0.1), (0.6, 0.1), (0.6, 0.05), (0.4, 0.05)):
        schedule.step_batch()
        schedule.step_epoch({"val.accuracy": accuracy, "val.loss": 1.0})
        assert schedule.lr == pytest.approx(expected)
    schedule.step_epoch({"val.accuracy": float("nan")})  # a bad epoch, never an improvement
    assert schedule.lr == pytest.approx(0.025)
    # For a loss, lower is better.
    schedule = fresh(spec(schedule="plateau", monitor="val.loss", plateau_patience=0), 100)
    schedule.step_epoch({"val.loss": 1.0})
    schedule.step_epoch({"val.loss": 0.5})
    assert schedule.lr == pytest.approx(0.01)
    schedule.step_epoch({"val.loss": 0.7})
    assert schedule.lr == pytest.approx(0.001)


SCENARIOS = {
    "constant": spec(schedule="constant", warmup_epochs=0.5),
    "step": spec(schedule="step", warmup_epochs=0.5),
    "cosine": spec(schedule="cosine", warmup_epochs=0.5),
    "onecycle": spec(schedule="onecycle"),
    "plateau": spec(schedule="plateau", warmup_epochs=0.5, plateau_patience=0, lr_decay=0.5),
}


def run_epochs(schedule: LRSchedule, epochs: range, per_epoch: int = 10) -> list[float]:
    """Each epoch's lrs; validation accuracy stalls from epoch 2, so plateau reduces."""
    lrs = []
    for epoch in epochs:
        lrs += lr_sequence(schedule, per_epoch)
        schedule.step_epoch({"val.accuracy": min(epoch, 2) / 10, "val.loss": 1.0})
    return lrs


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_state_is_json_and_resumes_the_same_sequence(name: str) -> None:
    train_spec = SCENARIOS[name]
    whole = run_epochs(fresh(train_spec, 60), range(6))
    first = fresh(train_spec, 60)
    run_epochs(first, range(3))
    saved = json.loads(json.dumps(first.state_dict(), allow_nan=False))
    resumed = fresh(train_spec, 60)  # a fresh optimizer too: its rate comes from the state
    resumed.load_state_dict(saved)
    assert resumed.lr == pytest.approx(first.lr)
    assert run_epochs(resumed, range(3, 6)) == pytest.approx(whole[30:], rel=1e-12)
    if name == "plateau":
        assert whole[-1] < whole[20] and saved["plateau"]["mode_worse"] == {"float": "-inf"}


def test_state_of_another_schedule_is_refused() -> None:
    saved = fresh(spec(schedule="cosine"), 10).state_dict()
    with pytest.raises(UserError, match="cosine schedule, not constant"):
        fresh(spec(schedule="constant"), 10).load_state_dict(saved)


# ---- weight EMA


def test_ema_reaches_a_constant_model() -> None:
    model = small_net()
    ema = WeightEMA(model, decay=0.9)
    ema.update()  # the first update copies
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
        model[1].running_mean.fill_(3.0)
    for _ in range(250):
        ema.update()
    averaged, live = ema.module.state_dict(), model.state_dict()
    for mine, theirs in zip(averaged.values(), live.values(), strict=True):
        if mine.is_floating_point():
            torch.testing.assert_close(mine, theirs)
    assert ema.updates == 251


def test_ema_with_decay_half_is_the_hand_computed_average() -> None:
    model = nn.Linear(2, 1)
    with torch.no_grad():
        model.weight.fill_(7.0)  # the weights it is built from never enter the average
        ema = WeightEMA(model, decay=0.5)
        model.weight.fill_(2.0)
        ema.update()  # first update: a copy, 2
        model.weight.fill_(4.0)
        ema.update()  # 0.5·2 + 0.5·4 = 3
    assert ema.module.weight.tolist() == [[3.0, 3.0]]
    assert model.weight.tolist() == [[4.0, 4.0]]  # the model itself is untouched


def test_ema_state_round_trip_is_flat_and_contiguous() -> None:
    model = small_net().to(memory_format=torch.channels_last)
    ema = WeightEMA(model, decay=0.99)
    for _ in range(3):
        ema.update()
    state = ema.state_dict()
    assert "n_averaged" in state and "module.0.weight" in state
    assert all(isinstance(t, torch.Tensor) and t.is_contiguous() for t in state.values())
    other = WeightEMA(small_net(), decay=0.99)
    other.load_state_dict({k: v.clone() for k, v in state.items()})
    assert other.updates == 3
    torch.testing.assert_close(other.module[0].weight, ema.module[0].weight)


# ---- early stopping


def test_early_stopping_counts_bad_epochs_and_keeps_the_best() -> None:
    stopper = EarlyStopping("val.accuracy", patience=2, min_delta=0.01)
    decisions = [stopper.update({"val.accuracy": a}) for a in (0.5, 0.6, 0.605, float("nan"))]
    assert decisions == [False, False, False, True]
    assert (stopper.best, stopper.best_epoch, stopper.bad_epochs) == (0.6, 2, 2)
    assert not stopper.improved


def test_early_stopping_for_a_loss_and_without_patience() -> None:
    stopper = EarlyStopping("val.loss", patience=None)
    improved = []
    for epoch, loss in enumerate((float("nan"), 2.0, 1.0, 1.5, 0.9, float("inf")) * 3, start=1):
        assert stopper.update({"val.loss": loss}, epoch=epoch) is False
        improved.append(stopper.improved)
    assert improved[:6] == [False, True, True, False, True, False]
    assert (stopper.best, stopper.best_epoch) == (0.9, 5)


def test_early_stopping_state_is_json() -> None:
    stopper = EarlyStopping("val.accuracy", patience=3)
    for accuracy in (0.5, 0.7, 0.6):
        stopper.update({"val.accuracy": accuracy})
    saved = json.loads(json.dumps(stopper.state_dict(), allow_nan=False))
    resumed = EarlyStopping("val.accuracy", patience=3)
    resumed.load_state_dict(saved)
    assert resumed.update({"val.accuracy": 0.65}) is False
    assert resumed.update({"val.accuracy": 0.65}) is True
    assert (resumed.best, resumed.best_epoch) == (0.7, 2)
    assert math.isclose(resumed.best or 0, 0.7)
