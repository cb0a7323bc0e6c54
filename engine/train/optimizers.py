"""The optimizer registry: one decorator per optimizer, one factory.

This module does not import torch at import time: the GUI lists the names, labels and which
fields matter before torch is loaded (importing torch takes seconds).

Two things every optimizer gets from ``build_optimizer``, whatever its kind:

* Weight decay only on weights with ``ndim > 1`` (convolution kernels, linear matrices). Biases
  and normalisation scales/shifts go in a second group with no decay: decaying them pulls
  BatchNorm's scale towards zero and shifts biases for no regularising gain, which costs
  accuracy. The groups are always the same two, ``"decay"`` then ``"no_decay"`` (one may be
  empty), so an optimizer checkpoint has the same shape for every model.
* The kernel choice of ``TrainSpec.fused_optimizer``. Fused kernels do the whole update of every
  tensor in one pass; in torch 2.14 SGD, Adam and AdamW have them on CPU as well as CUDA, and on
  a CPU they are about 3-4x faster per step than the per-tensor loop. RMSprop has none.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from cnn_lab.engine.errors import UserError
from cnn_lab.engine.specs import TrainSpec

if TYPE_CHECKING:  # torch loads only when an optimizer is built, so the GUI can list names
    import torch

ParamGroups = list[dict[str, Any]]
Kernels = dict[str, bool | None]
"""Keyword arguments that pick the kernels: ``{"fused": ..., "foreach": ...}``."""
Factory = Callable[[ParamGroups, TrainSpec, Kernels], "torch.optim.Optimizer"]

KernelMode = Literal["fused", "foreach", "for-loop"]


@dataclass(frozen=True)
class OptimizerInfo:
    """What the form and the factory need to know about one optimizer."""

    name: str
    label: str
    description: str
    """One line for a tooltip: what it is good for, and its speed/accuracy trade-off."""
    fields: tuple[str, ...]
    """The TrainSpec fields that mean something for it among momentum, nesterov and
    weight_decay; the form shows only these."""
    default_lr: float
    """A learning rate that usually trains; the form offers it when the optimizer changes."""
    factory: Factory
    decay_range: tuple[float, float] = (1e-5, 5e-3)
    """Weight decays worth searching. An L2 penalty added to the gradient (SGD, Adam,
    RMSprop) works at 1e-5..5e-3; AdamW's decoupled decay is multiplied by the rate alone,
    not passed through the adaptive step, so the same pull on the weights needs values ten
    to a hundred times larger (its common values are 0.01 to 0.1)."""

    @property
    def uses_momentum(self) -> bool:
        """Whether TrainSpec.momentum means anything for it (the form hides the field if not)."""
        return "momentum" in self.fields


_OPTIMIZERS: dict[str, OptimizerInfo] = {}


def register_optimizer(
    name: str,
    label: str,
    *,
    description: str,
    fields: tuple[str, ...],
    default_lr: float,
    decay_range: tuple[float, float] = (1e-5, 5e-3),
) -> Callable[[Factory], Factory]:
    """Register ``factory(param_groups, spec, kernels) -> Optimizer`` under ``name``.

    The factory must pass ``**kernels`` to the torch constructor so that the fused/foreach
    choice (made here, once, for every optimizer) reaches it.
    """

    def decorate(factory: Factory) -> Factory:
        _OPTIMIZERS[name] = OptimizerInfo(
            name, label, description, fields, default_lr, factory, decay_range
        )
        return factory

    return decorate


def optimizer_names() -> list[str]:
    return list(_OPTIMIZERS)


def optimizer_info(name: str) -> OptimizerInfo:
    return _OPTIMIZERS[name]


Layer = tuple[str, "Sequence[torch.nn.Parameter]", float]
"""(name, parameters, learning rate) of one layer group (engine/train/fine_tune.py)."""


def build_optimizer(
    params: Iterable[torch.nn.Parameter],
    spec: TrainSpec,
    device: torch.device | str,
) -> torch.optim.Optimizer:
    """The optimizer of ``spec`` over ``params``, in two groups (decay, no decay).

    ``device`` is where the parameters live; it decides which kernels exist.
    """
    return build_layered_optimizer([("", list(params), spec.lr)], spec, device)


def build_layered_optimizer(
    layers: Sequence[Layer], spec: TrainSpec, device: torch.device | str
) -> torch.optim.Optimizer:
    """The optimizer of ``spec`` with each layer group at its own rate (discriminative rates).

    Each layer gives two param groups, ``<name>.decay`` and ``<name>.no_decay`` (plain
    ``decay``, ``no_decay`` for an unnamed one), so a checkpoint's shape depends only on the
    model and the number of layer groups, never on which of them are frozen.
    """
    import torch

    try:
        info = _OPTIMIZERS[spec.optimizer]
    except KeyError:
        known = ", ".join(_OPTIMIZERS)
        raise UserError(
            f"There is no optimizer called {spec.optimizer!r}.", f"Choose one of: {known}."
        ) from None
    params = [p for _, layer, _ in layers for p in layer]
    if not params:
        raise UserError(
            "The network has no parameters to train.",
            "Add a layer with weights (a convolution or a linear layer), or unfreeze one.",
        )
    device = torch.device(device)
    groups: ParamGroups = []
    for name, layer, lr in layers:
        prefix = f"{name}." if name else ""
        decay = {"name": f"{prefix}decay", "params": [p for p in layer if p.ndim > 1], "lr": lr}
        if "weight_decay" in info.fields:
            decay["weight_decay"] = spec.weight_decay
        no_decay = [p for p in layer if p.ndim <= 1]
        groups.append(decay)
        groups.append(
            {"name": f"{prefix}no_decay", "params": no_decay, "weight_decay": 0.0, "lr": lr}
        )
    kernels = _choose_kernels(info, spec, device, params[0].dtype)
    return info.factory(groups, spec, kernels)


def kernel_mode(optimizer: torch.optim.Optimizer) -> KernelMode:
    """Which kernels ``optimizer`` runs, for the run's report ("fused", "foreach", "for-loop").

    ``foreach=None`` is torch's own default: foreach kernels on CUDA, the loop elsewhere.
    """
    defaults = optimizer.defaults
    if defaults.get("fused"):
        return "fused"
    foreach = defaults.get("foreach")
    if foreach is None:
        params = [p for g in optimizer.param_groups for p in g["params"]]
        foreach = bool(params) and params[0].device.type == "cuda"
    return "foreach" if foreach else "for-loop"


def _choose_kernels(
    info: OptimizerInfo, spec: TrainSpec, device: torch.device, dtype: torch.dtype
) -> Kernels:
    """The fused/foreach keywords for ``spec.fused_optimizer`` on ``device``.

    ``auto`` takes fused kernels where they work and otherwise leaves the choice to torch
    (foreach kernels on CUDA; on a CPU torch's foreach is the same per-tensor loop, so asking
    for it gains nothing). Whether fused works is found by trying it on a scratch tensor: torch
    checks devices only at the first step, and a kernel can be missing for one device type
    (MPS, XPU) even where the argument is accepted.
    """
    mode = spec.fused_optimizer
    if mode == "off":
        return {"fused": False, "foreach": False}
    if mode == "foreach":
        return {"fused": False, "foreach": True}
    works = _fused_works(info.name, str(device), str(dtype).removeprefix("torch."), spec)
    if works:
        return {"fused": True, "foreach": False}
    if mode == "fused":
        raise UserError(
            f"PyTorch has no fused kernel for {info.label} on {device.type.upper()}.",
            "Set the fused optimizer option to auto (fused where it exists) or foreach.",
        )
    return {"fused": None, "foreach": None}


_FUSED_PROBES: dict[tuple[str, str, str], bool] = {}
"""(optimizer, device, dtype) -> whether a fused step ran; probed once per process."""


def _fused_works(name: str, device: str, dtype: str, spec: TrainSpec) -> bool:
    """Whether one fused step of optimizer ``name`` runs on ``device`` for ``dtype`` (cached)."""
    import torch

    key = (name, device, dtype)
    cache = _FUSED_PROBES
    if key not in cache:
        probe = torch.zeros(2, device=device, dtype=getattr(torch, dtype), requires_grad=True)
        probe.grad = torch.ones_like(probe)
        groups: ParamGroups = [{"params": [probe]}]
        try:
            _OPTIMIZERS[name].factory(groups, spec, {"fused": True, "foreach": False}).step()
            cache[key] = True
        except (TypeError, ValueError, RuntimeError, NotImplementedError):
            # TypeError: no ``fused`` argument (RMSprop); RuntimeError: device or dtype
            # refused at the first step; NotImplementedError: no kernel for this backend.
            cache[key] = False
    return cache[key]


@register_optimizer(
    "sgd",
    "SGD with momentum",
    description=(
        "Stochastic gradient descent with (Nesterov) momentum: often the best final accuracy "
        "for CNNs, but needs a tuned learning rate and a schedule."
    ),
    fields=("momentum", "nesterov", "weight_decay"),
    default_lr=0.05,
)
def _sgd(groups: ParamGroups, spec: TrainSpec, kernels: Kernels) -> torch.optim.Optimizer:
    import torch

    # Nesterov is a correction to momentum; with no momentum there is nothing to correct and
    # plain SGD is exactly what nesterov=True would mean, so it is dropped rather than refused
    # (torch refuses it). The form's nesterov box then has no effect, never an error.
    return torch.optim.SGD(
        groups,
        lr=spec.lr,
        momentum=spec.momentum,
        nesterov=spec.nesterov and spec.momentum > 0,
        **kernels,
    )


@register_optimizer(
    "adam",
    "Adam",
    description=(
        "Adaptive per-weight steps: trains quickly with little tuning; weight decay here is an "
        "L2 penalty, so prefer AdamW when you use it."
    ),
    fields=("weight_decay",),
    default_lr=1e-3,
)
def _adam(groups: ParamGroups, spec: TrainSpec, kernels: Kernels) -> torch.optim.Optimizer:
    import torch

    return torch.optim.Adam(groups, lr=spec.lr, **kernels)


@register_optimizer(
    "adamw",
    "AdamW (decoupled weight decay)",
    description=(
        "Adam with weight decay applied directly to the weights: fast, forgiving of the "
        "learning rate, and a good default; SGD can still edge it out on long runs."
    ),
    fields=("weight_decay",),
    default_lr=1e-3,
    decay_range=(1e-4, 0.3),
)
def _adamw(groups: ParamGroups, spec: TrainSpec, kernels: Kernels) -> torch.optim.Optimizer:
    import torch

    return torch.optim.AdamW(groups, lr=spec.lr, **kernels)


@register_optimizer(
    "rmsprop",
    "RMSprop",
    description=(
        "Scales steps by a running average of squared gradients; stable on noisy gradients "
        "(classic for MobileNet/EfficientNet recipes), but has no fused kernel, so it is slower."
    ),
    fields=("momentum", "weight_decay"),
    default_lr=1e-3,
)
def _rmsprop(groups: ParamGroups, spec: TrainSpec, kernels: Kernels) -> torch.optim.Optimizer:
    import torch

    # RMSprop's constructor has no ``fused`` argument at all (torch 2.14), so it is never
    # passed; asking for fused kernels fails the way torch would, and the probe sees that.
    kernels = dict(kernels)
    if kernels.pop("fused", None):
        raise TypeError("RMSprop has no fused kernel")
    return torch.optim.RMSprop(groups, lr=spec.lr, momentum=spec.momentum, **kernels)
