"""The learning-rate schedule registry, and the one schedule object the loop drives.

No torch at import time, for the same reason as the optimizer registry: the GUI lists them.

Every schedule is a factor of the base rate as a function of the step (``constant``, ``step``,
``cosine``, ``onecycle``), or, for ``plateau``, torch's ReduceLROnPlateau stepped once per epoch.
``LRSchedule`` sets the optimizer's rates itself from ``base × warm-up × schedule × plateau``,
so the loop calls the same three methods whatever the kind, and the state is a handful of
numbers that a checkpoint stores as JSON (torch's schedulers carry closures and infinities).

Warm-up (``TrainSpec.warmup_epochs``, may be fractional) rises linearly from 1% of the rate to
the rate, and the schedule then runs over the remaining steps. One-cycle refuses a warm-up:
its first quarter already is one, and a second ramp in front of it would be a sawtooth.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cnn_lab.engine.errors import UserError
from cnn_lab.engine.specs import TrainSpec

if TYPE_CHECKING:
    import torch

Factor = Callable[[TrainSpec, int, int], float]
"""``factor(spec, step, steps)``: the rate for 0-based ``step`` of ``steps`` over the base rate."""

WARMUP_START = 0.01
"""Warm-up starts at this fraction of the rate: not zero, so the first steps still train."""


@dataclass(frozen=True)
class ScheduleInfo:
    """What the form and the factory need to know about one schedule."""

    name: str
    label: str
    description: str
    """One line for a tooltip: what it does and when it is the right choice."""
    fields: tuple[str, ...]
    """The TrainSpec fields that mean something for it; the form shows only these."""
    factor: Factor
    on_plateau: bool = False
    """Lowered by ReduceLROnPlateau from the monitored metric after each validation."""

    @property
    def accepts_warmup(self) -> bool:
        return "warmup_epochs" in self.fields


_SCHEDULES: dict[str, ScheduleInfo] = {}


def register_schedule(
    name: str,
    label: str,
    *,
    description: str,
    fields: tuple[str, ...],
    on_plateau: bool = False,
) -> Callable[[Factor], Factor]:
    def decorate(factor: Factor) -> Factor:
        _SCHEDULES[name] = ScheduleInfo(name, label, description, fields, factor, on_plateau)
        return factor

    return decorate


def schedule_names() -> list[str]:
    return list(_SCHEDULES)


def schedule_info(name: str) -> ScheduleInfo:
    return _SCHEDULES[name]


class LRSchedule:
    """The learning rate of every step, behind one interface for every kind of schedule.

    Call ``step_batch()`` after each optimizer step and ``step_epoch(metrics)`` after each
    validation; ``lr`` is the rate the next optimizer step will use. Steps past
    ``total_steps`` keep the last rate, so a loop that runs a step or two longer than it
    planned (a last partial batch) never fails here.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        spec: TrainSpec,
        info: ScheduleInfo,
        total_steps: int,
        warmup_steps: int,
    ) -> None:
        import torch

        self.optimizer = optimizer
        self.kind = info.name
        self.total_steps = total_steps
        self.warmup_steps = warmup_steps
        self.monitor = spec.monitor
        self._spec = spec
        self._factor = info.factor
        self._steps_after_warmup = max(total_steps - warmup_steps, 1)
        self.step_count = 0
        # The base rate lives in the group, as torch's schedulers keep it, so it survives an
        # optimizer checkpoint loaded before the schedule is built.
        self._base_lrs = [g.setdefault("initial_lr", g["lr"]) for g in optimizer.param_groups]
        self._scales = [1.0 for _ in optimizer.param_groups]
        self._plateau: torch.optim.lr_scheduler.ReduceLROnPlateau | None = None
        if info.on_plateau:
            for group, base in zip(optimizer.param_groups, self._base_lrs, strict=True):
                group["lr"] = base
            # An absolute threshold of min_delta: the same "better" as early stopping and
            # the best checkpoint, so the three never disagree about an epoch.
            self._plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
                optimizer,
                mode="max" if spec.monitor.endswith("accuracy") else "min",
                factor=spec.lr_decay,
                patience=spec.plateau_patience,
                threshold=spec.min_delta,
                threshold_mode="abs",
            )
        self._apply()

    @property
    def lr(self) -> float:
        """The rate of the next optimizer step (of the first group; all groups share it)."""
        return float(self.optimizer.param_groups[0]["lr"])

    def factor_at(self, step: int) -> float:
        """The rate at 0-based ``step`` over the base rate, before any plateau reduction."""
        step = min(max(step, 0), self.total_steps - 1)
        if step < self.warmup_steps:
            return WARMUP_START + (1.0 - WARMUP_START) * step / self.warmup_steps
        after = step - self.warmup_steps
        return self._factor(self._spec, after, self._steps_after_warmup)

    def step_batch(self) -> None:
        """Advance one optimizer step."""
        self.step_count += 1
        self._apply()

    def advance_to(self, fraction: float) -> None:
        """Move at least ``fraction`` of the way through the schedule (a time-limited run).

        The step count jumps to ``fraction × total_steps`` when that is ahead of it, so a run
        whose time runs out before its steps do has annealed its rate by then; the jump is
        kept in ``state_dict`` like any step, so a resume continues from the same rate.
        """
        ahead = math.floor(min(max(fraction, 0.0), 1.0) * self.total_steps)
        if ahead > self.step_count:
            self.step_count = ahead
            self._apply()

    def step_epoch(self, metrics: Mapping[str, float]) -> None:
        """After a validation: the plateau schedule reads ``metrics[monitor]``; others ignore it.

        Epochs that end inside the warm-up are not counted: the rate is still rising, so a
        slow epoch there says nothing about a plateau.
        """
        if self._plateau is None or self.step_count < self.warmup_steps:
            return
        if self.monitor not in metrics:
            raise KeyError(f"the plateau schedule follows {self.monitor!r}, not in {metrics}")
        groups = self.optimizer.param_groups
        self._plateau.step(float(metrics[self.monitor]))
        # Read back what ReduceLROnPlateau did to the rates as a scale of their own, so the
        # rate stays base × factor × scale whatever the step.
        factor = self.factor_at(self.step_count)
        self._scales = [
            g["lr"] / (base * factor) for g, base in zip(groups, self._base_lrs, strict=True)
        ]
        self._apply()

    def state_dict(self) -> dict[str, Any]:
        """Plain JSON values only (non-finite floats are written as {"float": "inf"})."""
        plateau = None if self._plateau is None else _to_json(self._plateau.state_dict())
        return {
            "kind": self.kind,
            "step": self.step_count,
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
            "base_lrs": [float(x) for x in self._base_lrs],
            "scales": [float(x) for x in self._scales],
            "plateau": plateau,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue where ``state`` left off and set the optimizer's rates to match.

        The step count, base rates and plateau reductions come from ``state``; the length of
        the run and of the warm-up stay those this schedule was built with, so a resumed run
        with more epochs stretches its remaining schedule rather than ending early.
        """
        if state["kind"] != self.kind:
            raise UserError(
                f"The checkpoint was trained with the {state['kind']} schedule, not {self.kind}.",
                f"Resume with the {state['kind']} schedule, or start a new run.",
            )
        groups = self.optimizer.param_groups
        if len(state["base_lrs"]) != len(groups):
            raise ValueError("the checkpoint's schedule has a different number of param groups")
        self.step_count = int(state["step"])
        self._base_lrs = [float(x) for x in state["base_lrs"]]
        self._scales = [float(x) for x in state["scales"]]
        for group, base in zip(groups, self._base_lrs, strict=True):
            group["initial_lr"] = base
        if self._plateau is not None and state.get("plateau") is not None:
            self._plateau.load_state_dict(_from_json(state["plateau"]))
        self._apply()

    def _apply(self) -> None:
        factor = self.factor_at(self.step_count)
        groups = self.optimizer.param_groups
        for group, base, scale in zip(groups, self._base_lrs, self._scales, strict=True):
            group["lr"] = base * factor * scale


def build_schedule(
    optimizer: torch.optim.Optimizer,
    spec: TrainSpec,
    total_steps: int,
    steps_per_epoch: int,
) -> LRSchedule:
    """The schedule of ``spec`` over ``total_steps`` optimizer steps.

    ``steps_per_epoch`` counts optimizer steps (after gradient accumulation); it turns the
    warm-up's epochs into steps.
    """
    try:
        info = _SCHEDULES[spec.schedule]
    except KeyError:
        known = ", ".join(_SCHEDULES)
        raise UserError(
            f"There is no schedule called {spec.schedule!r}.", f"Choose one of: {known}."
        ) from None
    total_steps = max(int(total_steps), 1)
    warmup_steps = 0
    if spec.warmup_epochs > 0:
        if not info.accepts_warmup:
            raise UserError(
                f"The {info.label.split(':')[0].lower()} schedule has its own warm-up, so it "
                "takes no separate warm-up epochs.",
                "Set warm-up epochs to 0, or choose another schedule.",
            )
        if spec.warmup_epochs >= spec.epochs:
            raise UserError(
                f"The warm-up ({spec.warmup_epochs:g} epochs) is as long as the whole run "
                f"({spec.epochs} epochs), so the rate would never reach {spec.lr:g}.",
                "Make the warm-up a small part of training, such as 1 epoch.",
            )
        wanted = max(1, round(spec.warmup_epochs * max(int(steps_per_epoch), 1)))
        # A run cut short by max_steps may be shorter than its warm-up; it then warms up
        # until it stops, which is what a probe of the first steps should see.
        warmup_steps = min(wanted, total_steps)
    return LRSchedule(optimizer, spec, info, total_steps, warmup_steps)


def _to_json(value: Any) -> Any:
    """``value`` with tuples as lists and infinities/NaN as {"float": "inf"}: strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return {"float": repr(value)}
    if isinstance(value, Mapping):
        return {str(k): _to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_to_json(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(f"cannot store {type(value).__name__} in a schedule's JSON state")


def _from_json(value: Any) -> Any:
    if isinstance(value, Mapping):
        if set(value) == {"float"}:
            return float(value["float"])
        return {k: _from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    return value


# ---- the schedules, in the order the form lists them


@register_schedule(
    "onecycle",
    "One-cycle: warm up to the learning rate, then anneal",
    description=(
        "Rises from 1/25 of the rate to the rate over the first quarter, then anneals to "
        "almost zero: the fastest way to a good model in few epochs (has its own warm-up)."
    ),
    fields=(),
)
def _onecycle(spec: TrainSpec, step: int, steps: int) -> float:
    # torch's OneCycleLR (cos annealing, div_factor 25, final_div_factor 1e4) in closed form;
    # tests check it against torch step by step. The warm-up lasts at least one whole step.
    if steps < 4:
        # Too short for a cycle: OneCycleLR divides by the length of its warm-up phase,
        # which is zero steps here. A constant rate is the honest choice for 1-3 steps.
        return 1.0
    start, peak = 1.0 / 25.0, 1.0
    end = start / 1e4
    rise_end = float(max(0.25, 2 / steps) * steps) - 1
    if step <= rise_end:
        return _cos_anneal(start, peak, step / rise_end)
    return _cos_anneal(peak, end, (step - rise_end) / (steps - 1 - rise_end))


@register_schedule(
    "cosine",
    "Cosine decay from the learning rate to zero",
    description=(
        "Lowers the rate smoothly to zero by the end of training: a reliable default when the "
        "number of epochs is fixed."
    ),
    fields=("warmup_epochs",),
)
def _cosine(spec: TrainSpec, step: int, steps: int) -> float:
    # torch's CosineAnnealingLR with T_max = steps: zero would be the step after the last.
    return _cos_anneal(1.0, 0.0, step / steps)


@register_schedule(
    "step",
    "Step decay at 50% and 75% of training",
    description=(
        "Multiplies the rate by the decay factor at half and three quarters of training: the "
        "classic ResNet recipe, best with SGD and enough epochs."
    ),
    fields=("lr_decay", "warmup_epochs"),
)
def _step(spec: TrainSpec, step: int, steps: int) -> float:
    # Integer comparisons, so the milestones never drift with float rounding.
    drops = (2 * step >= steps) + (4 * step >= 3 * steps)
    return spec.lr_decay**drops


@register_schedule(
    "plateau",
    "Reduce on plateau",
    description=(
        "Multiplies the rate by the decay factor when the monitored validation metric has not "
        "improved for 'patience' epochs: adapts to the run, but reacts an epoch or more late."
    ),
    fields=("lr_decay", "plateau_patience", "monitor", "min_delta", "warmup_epochs"),
    on_plateau=True,
)
def _plateau(spec: TrainSpec, step: int, steps: int) -> float:
    return 1.0  # the reductions come from ReduceLROnPlateau, once per epoch


@register_schedule(
    "constant",
    "Constant learning rate",
    description=(
        "Keeps the rate fixed: simplest, for probes and short fine-tuning; usually ends less "
        "accurate than a decaying schedule."
    ),
    fields=("warmup_epochs",),
)
def _constant(spec: TrainSpec, step: int, steps: int) -> float:
    return 1.0


def _cos_anneal(start: float, end: float, fraction: float) -> float:
    return end + (start - end) / 2.0 * (math.cos(math.pi * fraction) + 1.0)
