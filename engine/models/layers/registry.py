"""The layer registry: one decorator adds a layer kind, one factory builds it.

Each kind declares its parameters as a small pydantic model. That one declaration serves
three readers: the builder validates a LayerSpec's params with it, the Architecture panel
generates its property editor from it (field types, ranges, descriptions as tooltips), and
``cnn-lab model layers`` lists it. Build functions import torch inside their bodies so that
listing kinds (the GUI does, before torch loads) stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel, ConfigDict, ValidationError

from cnn_lab.engine.specs import LayerSpec
from cnn_lab.engine.specs.base import clean_message

if TYPE_CHECKING:
    from torch import nn

Shape = tuple[int, ...]
"""A tensor's shape without the batch: (C, H, W) for a feature map, (F,) for a vector."""

# The palette shows categories in this order.
CATEGORIES = (
    "Convolution",
    "Normalisation",
    "Activation",
    "Pooling",
    "Blocks",
    "Regularisation",
    "Classifier",
)


class LayerParams(BaseModel):
    """Parameters of one layer kind: frozen, and strict about unknown names."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class NoParams(LayerParams):
    """For layers that take no parameters (ReLU, Flatten, ...)."""


class LayerProblem(Exception):
    """Raised by a build function: a sentence about why this layer cannot take its input.

    The builder prefixes it with the layer's place and name, so the sentence starts in lower
    case and does not repeat which layer it is, e.g. "needs a feature map but gets [128]".
    """


class BuildContext(Protocol):
    """What a build function may ask of the builder."""

    classes: int
    inner_layers: tuple[LayerSpec, ...]
    """The inner layers of the container being built (empty for plain layers)."""

    def sequence(self, layers: tuple[LayerSpec, ...], in_shape: Shape) -> tuple[nn.Module, Shape]:
        """Build inner layers (of a block) in order; returns the module and its output shape."""
        ...


BuildFn = Callable[[Any, Shape, BuildContext], "nn.Module"]
ExpandFn = Callable[[Any, Shape], tuple[LayerSpec, ...]]
LabelFn = Callable[[Any], str]


@dataclass(frozen=True)
class LayerKind:
    kind: str
    title: str
    category: str
    description: str
    params: type[LayerParams]
    build: BuildFn
    container: bool = False
    label: LabelFn | None = None
    expand: ExpandFn | None = None
    """Opens a block as the plain layers it is made of (the panel's "Open block")."""

    def default_params(self) -> dict[str, Any]:
        return self.params().model_dump()

    def parse(self, raw: dict[str, Any]) -> LayerParams:
        """Validate raw params; a bad one becomes a LayerProblem sentence naming it."""
        try:
            return self.params.model_validate(raw)
        except ValidationError as exc:
            raise LayerProblem(self._explain(exc)) from None

    def _explain(self, error: ValidationError) -> str:
        known = ", ".join(self.params.model_fields) or "none"
        problems = []
        for item in error.errors(include_url=False):
            name = ".".join(str(part) for part in item.get("loc", ())) or "params"
            if item.get("type") == "extra_forbidden":
                problems.append(f"{name!r} is not one of its parameters (it takes: {known})")
            else:
                msg = clean_message(str(item.get("msg", "is invalid")))
                msg = msg.replace("input should be", "must be")
                problems.append(f"{name} {msg} (got {item.get('input')!r})")
        return "; ".join(problems)

    def describe(self, params: LayerParams) -> str:
        """A short label for lists and diagrams, e.g. "Conv 3×3, 64, /2"."""
        return self.label(params) if self.label is not None else self.title


_KINDS: dict[str, LayerKind] = {}


def register_layer(
    kind: str,
    *,
    title: str,
    category: str,
    description: str,
    params: type[LayerParams] = NoParams,
    container: bool = False,
    label: LabelFn | None = None,
    expand: ExpandFn | None = None,
) -> Callable[[BuildFn], BuildFn]:
    """Register ``build`` as the layer ``kind``; the decorated function is returned as is."""
    if category not in CATEGORIES:
        raise ValueError(f"unknown layer category {category!r}")

    def decorate(build: BuildFn) -> BuildFn:
        if kind in _KINDS:
            raise ValueError(f"layer kind {kind!r} is registered twice")
        _KINDS[kind] = LayerKind(
            kind, title, category, description, params, build, container, label, expand
        )
        return build

    return decorate


def layer_kinds() -> list[LayerKind]:
    """Every registered kind, in palette order (category, then registration order)."""
    _load_builtin_layers()
    order = {name: i for i, name in enumerate(CATEGORIES)}
    return sorted(_KINDS.values(), key=lambda k: order[k.category])


def find_layer_kind(kind: str) -> LayerKind | None:
    _load_builtin_layers()
    return _KINDS.get(kind)


def _load_builtin_layers() -> None:
    # Importing the modules runs their @register_layer decorators.
    from cnn_lab.engine.models.layers import (  # noqa: F401
        activations,
        blocks,
        classifier,
        conv,
        norm,
        pooling,
    )
