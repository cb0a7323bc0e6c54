"""The learning-rate schedule registry. Schedules step once per optimiser step.

No torch at import time, for the same reason as the optimizer registry: the GUI lists them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cnn_lab.engine.errors import UserError
from cnn_lab.engine.specs import TrainSpec

if TYPE_CHECKING:
    import torch

Factory = Callable[
    ["torch.optim.Optimizer", TrainSpec, int], "torch.optim.lr_scheduler.LRScheduler"
]


@dataclass(frozen=True)
class ScheduleInfo:
    name: str
    label: str
    factory: Factory


_SCHEDULES: dict[str, ScheduleInfo] = {}


def register_schedule(name: str, label: str) -> Callable[[Factory], Factory]:
    def decorate(factory: Factory) -> Factory:
        _SCHEDULES[name] = ScheduleInfo(name, label, factory)
        return factory

    return decorate


def schedule_names() -> list[str]:
    return list(_SCHEDULES)


def schedule_info(name: str) -> ScheduleInfo:
    return _SCHEDULES[name]


def build_schedule(
    optimizer: torch.optim.Optimizer, spec: TrainSpec, total_steps: int
) -> torch.optim.lr_scheduler.LRScheduler:
    try:
        info = _SCHEDULES[spec.schedule]
    except KeyError:
        known = ", ".join(_SCHEDULES)
        raise UserError(f"There is no schedule called {spec.schedule!r}. Known: {known}.") from None
    return info.factory(optimizer, spec, max(total_steps, 1))


@register_schedule("onecycle", "One-cycle: warm up to the learning rate, then anneal")
def _onecycle(optimizer, spec, total_steps):  # type: ignore[no-untyped-def]
    import torch

    if total_steps < 4:
        # Too short for a cycle: OneCycleLR divides by the length of its warm-up phase,
        # which is zero steps here. A constant rate is the honest choice for 1-3 steps.
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    # Momentum cycling would fight AdamW's betas on some torch versions; the LR cycle is
    # what makes short runs converge. The warm-up lasts at least one whole step.
    return torch.optim.lr_scheduler.OneCycleLR(
        optimizer,
        max_lr=spec.lr,
        total_steps=total_steps,
        pct_start=max(0.25, 2 / total_steps),
        cycle_momentum=False,
    )


@register_schedule("cosine", "Cosine decay from the learning rate to zero")
def _cosine(optimizer, spec, total_steps):  # type: ignore[no-untyped-def]
    import torch

    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)


@register_schedule("constant", "Constant learning rate")
def _constant(optimizer, spec, total_steps):  # type: ignore[no-untyped-def]
    import torch

    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
