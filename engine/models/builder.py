"""Build a network from LayerSpecs, checking each layer against the shape it receives.

Every layer is first built on the meta device and run on an empty meta tensor: that gives
its output shape for the next layer and catches what torch would reject, at no cost. A
problem becomes a ModelError naming the layer ("Layer 7 (MaxPool): the spatial size
collapses to zero ...") with its path, so the panel can mark the row. When the caller builds
on the meta device (the live summary does), the probe is the module; otherwise the layer is
built again for real.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from cnn_lab.engine.errors import ModelError
from cnn_lab.engine.models.layers.registry import (
    LayerKind,
    LayerProblem,
    Shape,
    find_layer_kind,
    layer_kinds,
)
from cnn_lab.engine.specs import LayerSpec
from cnn_lab.engine.util.formatting import format_shape as fmt

if TYPE_CHECKING:
    from torch import nn

    from cnn_lab.engine.models.layers.modules import LayerNet
    from cnn_lab.engine.models.registry import InputShape


@dataclass(frozen=True)
class BuiltLayer:
    """A top-level layer as built: what it is and the shapes around it."""

    path: tuple[int, ...]
    kind: str
    label: str
    in_shape: Shape
    out_shape: Shape


def layer_place(path: tuple[int, ...]) -> str:
    """1-based, dotted for blocks: layer (2, 0) is "Layer 3.1"."""
    return "Layer " + ".".join(str(i + 1) for i in path)


class _Builder:
    """The BuildContext handed to build functions."""

    def __init__(self, classes: int) -> None:
        self.classes = classes
        self.inner_layers: tuple[LayerSpec, ...] = ()
        self._path: tuple[int, ...] = ()

    def sequence(self, layers: tuple[LayerSpec, ...], in_shape: Shape) -> tuple[nn.Module, Shape]:
        from torch import nn

        modules, shape = [], in_shape
        base = self._path
        for i, layer in enumerate(layers):
            module, shape, _ = self.one(layer, shape, (*base, i))
            modules.append(module)
        return nn.Sequential(*modules), shape

    def one(
        self, layer: LayerSpec, shape: Shape, path: tuple[int, ...]
    ) -> tuple[nn.Module, Shape, LayerKind]:
        import torch

        kind = find_layer_kind(layer.kind)
        if kind is None:
            known = ", ".join(k.kind for k in layer_kinds())
            raise ModelError(
                f"{layer_place(path)}: there is no layer kind called {layer.kind!r}.",
                hint=f"Known kinds: {known}.",
                path=path,
            )
        saved = (self.inner_layers, self._path)
        try:
            params = kind.parse(layer.params)
            if layer.layers and not kind.container:
                raise LayerProblem("holds inner layers, but only a residual block can")
            self.inner_layers, self._path = layer.layers, path
            with torch.device("meta"):
                probe = kind.build(params, shape, self)
            out = _probe(probe, shape)
            if torch.get_default_device().type == "meta":
                module = probe
            else:
                module = kind.build(params, shape, self)
        except LayerProblem as exc:
            raise ModelError(f"{layer_place(path)} ({kind.title}): {exc}.", path=path) from None
        finally:
            self.inner_layers, self._path = saved
        return module, out, kind


def _probe(module: nn.Module, shape: Shape) -> Shape:
    """Run an empty meta batch through ``module``; its output shape, or a LayerProblem."""
    import torch

    x = torch.zeros((2, *shape), device="meta")
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            y = module(x)
    except (RuntimeError, ValueError, IndexError, TypeError, ZeroDivisionError) as exc:
        raise LayerProblem(_explain_torch_error(exc, shape)) from None
    finally:
        module.train(was_training)
    out = tuple(int(d) for d in y.shape[1:])
    if not out or 0 in out:
        raise LayerProblem(
            f"the spatial size collapses to zero: {fmt(shape)} becomes {fmt(out)}; remove an "
            "earlier downsampling layer or use larger images"
        )
    return out


def _explain_torch_error(exc: Exception, shape: Shape) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    lowered = text.lower()
    if "too small" in lowered or "kernel size can't be greater" in lowered:
        return (
            f"the spatial size collapses to zero: the input {fmt(shape)} is too small for "
            "this layer's window; remove an earlier downsampling layer or use larger images"
        )
    return f"cannot take an input of shape {fmt(shape)} (PyTorch says: {text.rstrip('.')})"


def build_layers(layers: tuple[LayerSpec, ...], shape: InputShape) -> LayerNet:
    """Build ``layers`` for inputs of ``shape``; the net must end with one score per class.

    Builds on the ambient default device: wrap in ``with torch.device("meta")`` for a free
    shape-only model (the live summary does).
    """
    from cnn_lab.engine.models.layers.modules import LayerNet

    if not layers:
        raise ModelError("The network has no layers.", hint="Add layers from the palette.")
    builder = _Builder(shape.classes)
    current: Shape = (shape.channels, shape.height, shape.width)
    modules, built = [], []
    for i, layer in enumerate(layers):
        module, out, kind = builder.one(layer, current, (i,))
        modules.append(module)
        built.append(
            BuiltLayer((i,), layer.kind, kind.describe(kind.parse(layer.params)), current, out)
        )
        current = out
    if current != (shape.classes,):
        last = len(layers) - 1
        raise ModelError(
            f"{layer_place((last,))} ({built[-1].label}): the network ends with "
            f"{fmt(current)}, but it must end with one score per class, [{shape.classes}].",
            hint="End it with global average pooling and a linear layer whose out_features "
            "is left empty (one per class).",
            path=(last,),
        )
    return LayerNet(modules, built)
