"""The fine-tuning recipe on a live network: layer groups, discriminative rates and two phases.

As fastai's ``fine_tune``: ``freeze(); fit_one_cycle(head_epochs); unfreeze();
fit_one_cycle(rest, slice(lr / ratio, lr))``. The network is split into layer groups in module
order: the head (the classifier, as engine/models/weights.py finds it for freezing) is the
last; the rest is cut into ``groups - 1`` parts of about equal parameter count. Each group
trains at its own rate (engine/train/fine_tune_plan.py: geometric from ``lr / ratio`` to
``lr``).

Phase 1 freezes every group but the head: ``requires_grad`` off, and BatchNorm layers held in
eval mode by a forward pre-hook (``model.train()`` would otherwise switch them back, and they
would re-estimate their running statistics from every batch, drifting away from what the
pretrained features were computed with). Phase 2 trains every layer.

Frozen parameters stay *in* the optimizer, with their group's rate, rather than being added
at the switch: a parameter whose ``grad`` is None is skipped by every torch optimizer (no
update, no weight decay, no state), so phase 1 leaves them untouched, while the optimizer has
the same param groups in both phases. A checkpoint's optimizer state therefore has one shape
whatever the phase, and resuming never has to rebuild the optimizer. The schedule restarts per
phase (each phase runs the spec's schedule over its own steps, as fastai runs one cycle per
phase); ``PhasedSchedule`` is the loop's schedule and records the phase in its state, so a
checkpoint from either phase resumes into the same freezing and the same point of the phase's
schedule.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from cnn_lab.engine.errors import UserError
from cnn_lab.engine.models.weights import head_modules
from cnn_lab.engine.specs.train import TrainSpec
from cnn_lab.engine.train.fine_tune_plan import (
    ALL_PHASE,
    HEAD_PHASE,
    group_rates,
    phase_of,
    phase_text,
)
from cnn_lab.engine.train.optimizers import build_layered_optimizer
from cnn_lab.engine.train.schedules import LRSchedule, build_schedule

HEAD = "head"


@dataclass(frozen=True)
class LayerGroups:
    """The network's parameters in layer groups, earliest first; the last is the head."""

    names: tuple[str, ...]
    params: tuple[tuple[nn.Parameter, ...], ...]
    head: tuple[nn.Module, ...]
    """The head's modules: they stay trainable (and their BatchNorms in train mode) in phase 1."""

    def __len__(self) -> int:
        return len(self.names)

    def counts(self) -> list[int]:
        """Scalar weights per group (for tests and reports)."""
        return [sum(p.numel() for p in group) for group in self.params]


def split_layer_groups(model: nn.Module, groups: int) -> LayerGroups:
    """``groups`` layer groups of ``model``: the body in ``groups - 1`` parts, then the head.

    The body is cut in module order where its running parameter count crosses each
    ``1 / (groups - 1)`` of the total (a tensor belongs where its middle falls), so every
    part holds about as many weights (a part can be
    empty in a network with fewer weighted layers than parts; it then trains nothing).
    """
    try:
        head = head_modules(model)
    except UserError:
        raise UserError(
            "The fine-tuning recipe needs a linear classifier at the end of the network, to "
            "train it alone first; this network has none.",
            "Set fine-tuning to off in the Hyperparameters, or end the network with a "
            "Linear layer.",
        ) from None
    head_params = {id(p): p for module in head for p in module.parameters()}
    seen = set(head_params)
    owned: list[nn.Parameter] = []
    for module in model.modules():
        for p in module.parameters(recurse=False):
            if id(p) not in seen:
                seen.add(id(p))
                owned.append(p)
    parts = groups - 1
    total = sum(p.numel() for p in owned) or 1
    body: list[list[nn.Parameter]] = [[] for _ in range(parts)]
    done = 0
    for p in owned:  # each tensor goes where its middle falls: one large layer cuts evenly
        body[min(parts - 1, (2 * done + p.numel()) * parts // (2 * total))].append(p)
        done += p.numel()
    names = (*(f"body{i + 1}" for i in range(parts)), HEAD)
    params = (*(tuple(g) for g in body), tuple(head_params.values()))
    return LayerGroups(names, params, tuple(head))


def fine_tune_optimizer(
    groups: LayerGroups, t: TrainSpec, device: torch.device | str
) -> torch.optim.Optimizer:
    """The spec's optimizer with each layer group at its discriminative rate."""
    rates = group_rates(t.lr, t.fine_tune.lr_ratio, len(groups))
    layers = [
        (name, list(params), rate)
        for name, params, rate in zip(groups.names, groups.params, rates, strict=True)
    ]
    return build_layered_optimizer(layers, t, device)


class Freezer:
    """Freezes everything but the head (phase 1) and thaws it again (phase 2)."""

    def __init__(self, model: nn.Module, groups: LayerGroups) -> None:
        self.model = model
        self.groups = groups
        self._hooks: list[RemovableHandle] = []
        self.phase = ALL_PHASE

    def enter(self, phase: int) -> None:
        """Make ``model`` train as ``phase`` does; entering the current phase changes nothing."""
        if phase == self.phase:
            return
        self.phase = phase
        frozen = phase == HEAD_PHASE
        for params in self.groups.params[:-1]:
            for p in params:
                p.requires_grad_(not frozen)
                if frozen:
                    p.grad = None
        if frozen:
            head = {id(m) for m in self.groups.head}
            for module in self.model.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm) and id(module) not in head:
                    self._hooks.append(module.register_forward_pre_hook(_use_running_stats))
                    module.train(False)
        else:
            for hook in self._hooks:
                hook.remove()
            self._hooks.clear()
            self.model.train(self.model.training)  # BatchNorms back to the network's mode


def _use_running_stats(module: nn.Module, args: object) -> None:
    """Forward pre-hook: a frozen BatchNorm normalises with, and keeps, its running statistics."""
    module.train(False)


class PhasedSchedule:
    """The loop's schedule in a fine-tuning run: the spec's schedule, restarted per phase.

    It has LRSchedule's interface (``lr``, ``step_batch``, ``step_epoch``, ``state_dict``,
    ``load_state_dict``) plus ``enter(epoch)``, which the loop calls before each epoch and
    which switches the phase (the freezing and the schedule) at the head epochs' end.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        freezer: Freezer,
        t: TrainSpec,
        total_steps: int,
        steps_per_epoch: int,
    ) -> None:
        self.optimizer = optimizer
        self.freezer = freezer
        self.t = t
        self.steps_per_epoch = max(int(steps_per_epoch), 1)
        head_steps = t.fine_tune.head_epochs * self.steps_per_epoch
        self.steps = {
            HEAD_PHASE: max(min(head_steps, total_steps), 1),
            ALL_PHASE: max(total_steps - head_steps, 1),
        }
        self.kind = t.schedule
        self.phase = HEAD_PHASE
        self.inner = self._schedule(HEAD_PHASE)
        freezer.enter(HEAD_PHASE)

    def _schedule(self, phase: int) -> LRSchedule:
        head_epochs = self.t.fine_tune.head_epochs
        epochs = head_epochs if phase == HEAD_PHASE else self.t.epochs - head_epochs
        # A warm-up runs in each phase, never over more than half of it.
        warmup = min(self.t.warmup_epochs, epochs / 2)
        spec = self.t.model_copy(update={"epochs": max(epochs, 1), "warmup_epochs": warmup})
        return build_schedule(self.optimizer, spec, self.steps[phase], self.steps_per_epoch)

    @property
    def lr(self) -> float:
        """The head's rate for the next step (the other groups' are lower, in proportion)."""
        return float(self.optimizer.param_groups[-1]["lr"])

    @property
    def describe(self) -> str:
        """What the current phase trains, in words."""
        return phase_text(self.phase, self.t)

    def enter(self, epoch: int) -> bool:
        """Before 1-based ``epoch``: switch to its phase; True if the phase changed."""
        phase = phase_of(epoch, self.t)
        if phase == self.phase:
            return False
        self._switch(phase)
        return True

    def _switch(self, phase: int) -> None:
        self.phase = phase
        self.freezer.enter(phase)
        self.inner = self._schedule(phase)

    def step_batch(self) -> None:
        self.inner.step_batch()

    def step_epoch(self, metrics: Mapping[str, float]) -> None:
        self.inner.step_epoch(metrics)

    def state_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "fine_tune_phase": self.phase, "phase": self.inner.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """The phase and its schedule's position, from a checkpoint of this recipe."""
        check_recipe(True, state)
        self._switch(int(state["fine_tune_phase"]))
        self.inner.load_state_dict(state["phase"])


def check_recipe(fine_tuning: bool, schedule_state: Mapping[str, Any]) -> None:
    """Refuse, with a sentence, a checkpoint trained with the other recipe (one phase or two).

    Checked before the optimizer is loaded: the two recipes' optimizers have different param
    groups, and PyTorch's own complaint about that would not say why.
    """
    trained_with = "fine_tune_phase" in schedule_state
    if trained_with == fine_tuning:
        return
    if trained_with:
        raise UserError(
            "The checkpoint was trained with the fine-tuning recipe (head first, then all "
            "layers), so it continues only with it.",
            "Resume with fine-tuning on (or automatic), as the run was started.",
        )
    raise UserError(
        "The checkpoint was trained without the fine-tuning recipe, so it cannot continue in "
        "two phases.",
        "Resume with fine-tuning set to off (as the run was started).",
    )


def set_up(
    model: nn.Module, t: TrainSpec, device: torch.device, total_steps: int, steps_per_epoch: int
) -> tuple[torch.optim.Optimizer, PhasedSchedule, LayerGroups]:
    """The optimizer and phased schedule of a fine-tuning run, its model frozen for phase 1."""
    groups = split_layer_groups(model, t.fine_tune.groups)
    optimizer = fine_tune_optimizer(groups, t, device)
    schedule = PhasedSchedule(optimizer, Freezer(model, groups), t, total_steps, steps_per_epoch)
    return optimizer, schedule, groups


def freeze_for_head_phase(model: nn.Module, t: TrainSpec) -> Freezer:
    """Freeze ``model`` as phase 1 does (the LR finder's probe of the head's rate)."""
    freezer = Freezer(model, split_layer_groups(model, t.fine_tune.groups))
    freezer.enter(HEAD_PHASE)
    return freezer
