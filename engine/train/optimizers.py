"""The optimizer registry: one decorator per optimizer, one factory.

This module does not import torch at import time: the GUI reads the names and labels
before torch is loaded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cnn_lab.engine.errors import UserError
from cnn_lab.engine.specs import TrainSpec

if TYPE_CHECKING:  # torch loads only when an optimizer is built, so the GUI can list names
    import torch

Factory = Callable[[Iterable["torch.nn.Parameter"], TrainSpec], "torch.optim.Optimizer"]


@dataclass(frozen=True)
class OptimizerInfo:
    name: str
    label: str
    uses_momentum: bool
    """Whether TrainSpec.momentum means anything for it (the form hides the field if not)."""
    factory: Factory


_OPTIMIZERS: dict[str, OptimizerInfo] = {}


def register_optimizer(
    name: str, label: str, *, uses_momentum: bool
) -> Callable[[Factory], Factory]:
    def decorate(factory: Factory) -> Factory:
        _OPTIMIZERS[name] = OptimizerInfo(name, label, uses_momentum, factory)
        return factory

    return decorate


def optimizer_names() -> list[str]:
    return list(_OPTIMIZERS)


def optimizer_info(name: str) -> OptimizerInfo:
    return _OPTIMIZERS[name]


def build_optimizer(params: Iterable[torch.nn.Parameter], spec: TrainSpec) -> torch.optim.Optimizer:
    try:
        info = _OPTIMIZERS[spec.optimizer]
    except KeyError:
        known = ", ".join(_OPTIMIZERS)
        raise UserError(
            f"There is no optimizer called {spec.optimizer!r}. Known: {known}."
        ) from None
    return info.factory(params, spec)


@register_optimizer("sgd", "SGD with Nesterov momentum", uses_momentum=True)
def _sgd(params: Iterable[torch.nn.Parameter], spec: TrainSpec) -> torch.optim.Optimizer:
    import torch

    return torch.optim.SGD(
        params,
        lr=spec.lr,
        momentum=spec.momentum,
        nesterov=spec.momentum > 0,
        weight_decay=spec.weight_decay,
    )


@register_optimizer("adamw", "AdamW (decoupled weight decay)", uses_momentum=False)
def _adamw(params: Iterable[torch.nn.Parameter], spec: TrainSpec) -> torch.optim.Optimizer:
    import torch

    return torch.optim.AdamW(params, lr=spec.lr, weight_decay=spec.weight_decay)


@register_optimizer("adam", "Adam", uses_momentum=False)
def _adam(params: Iterable[torch.nn.Parameter], spec: TrainSpec) -> torch.optim.Optimizer:
    import torch

    return torch.optim.Adam(params, lr=spec.lr, weight_decay=spec.weight_decay)
