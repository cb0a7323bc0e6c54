"""Receptive fields, propagated through a real forward pass instead of read off a layer list.

A ``TorchFunctionMode`` tags every tensor the forward makes with the (field, jump) it derives
from the input, so residual branches, concatenations and any other topology are handled by the
pass itself. Used by engine/models/summary.py during its one meta-device pass.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_leaves
from torch.utils.weak import WeakIdKeyDictionary


def _tensors_in(tree: Any) -> list[torch.Tensor]:
    return [leaf for leaf in tree_leaves(tree) if isinstance(leaf, torch.Tensor)]


# (rf_h, rf_w, jump_h, jump_w): the window one element sees, and the input-pixel distance
# between neighbouring elements.
_Field = tuple[int, int, int, int]


def _pair(value: Any) -> tuple[int, int]:
    if isinstance(value, int):
        return value, value
    if isinstance(value, list | tuple) and len(value) == 1:
        return int(value[0]), int(value[0])
    return int(value[0]), int(value[1])


def _arg(args: tuple, kwargs: dict, index: int, name: str, default: Any) -> Any:
    if len(args) > index:
        return args[index]
    return kwargs.get(name, default)


def _grow(
    field: _Field,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    dilation: tuple[int, int] = (1, 1),
) -> _Field:
    """The standard recurrence: rf += (k - 1) * dilation * jump; jump *= stride."""
    rf_h, rf_w, jump_h, jump_w = field
    return (
        rf_h + (kernel[0] - 1) * dilation[0] * jump_h,
        rf_w + (kernel[1] - 1) * dilation[1] * jump_w,
        jump_h * stride[0],
        jump_w * stride[1],
    )


def _conv_field(field: _Field, args: tuple, kwargs: dict) -> _Field:
    weight = _arg(args, kwargs, 1, "weight", None)
    kernel = _pair(tuple(weight.shape[2:]))
    stride = _pair(_arg(args, kwargs, 3, "stride", 1))
    dilation = _pair(_arg(args, kwargs, 5, "dilation", 1))
    return _grow(field, kernel, stride, dilation)


def _pool_field(field: _Field, args: tuple, kwargs: dict, dilation_index: int | None) -> _Field:
    kernel = _pair(_arg(args, kwargs, 1, "kernel_size", 1))
    stride = _arg(args, kwargs, 2, "stride", None)
    stride = kernel if stride is None or stride == [] or stride == () else _pair(stride)
    dilation = (1, 1)
    if dilation_index is not None:
        dilation = _pair(_arg(args, kwargs, dilation_index, "dilation", 1))
    return _grow(field, kernel, stride, dilation)


def _lp_pool_field(field: _Field, args: tuple, kwargs: dict) -> _Field:
    # lp_pool2d(input, norm_type, kernel_size, stride=None, ...): one argument later.
    kernel = _arg(args, kwargs, 2, "kernel_size", 1)
    stride = _arg(args, kwargs, 3, "stride", None)
    return _pool_field(field, (None, kernel, stride), {}, None)


def _adaptive_field(field: _Field, args: tuple, kwargs: dict) -> _Field:
    """Adaptive pooling as its equivalent fixed pooling; pooling down to 1 leaves the field.

    A global pool's output sees the whole input map, whose own field already is "everything
    this network can see"; growing it by the map size would report a number that describes
    the image size more than the network, so it keeps the field of its input.
    """
    source = args[0] if args else kwargs["input"]
    sizes = tuple(source.shape[-2:])
    wanted = _arg(args, kwargs, 1, "output_size", None)
    wanted = (wanted, wanted) if isinstance(wanted, int) else tuple(wanted)
    kernel, stride = [], []
    for size, out in zip(sizes, wanted, strict=True):
        out = size if out is None else out
        if out in (1, size):
            kernel.append(1)
            stride.append(1)
        else:
            step = size // out
            kernel.append(size - (out - 1) * step)
            stride.append(step)
    return _grow(field, (kernel[0], kernel[1]), (stride[0], stride[1]))


def _field_rules() -> dict[Any, Callable[[_Field, tuple, dict], _Field]]:
    """The operators that change the field, as they reach a TorchFunctionMode.

    nn.Conv2d calls ``torch.conv2d`` (the same object as F.conv2d); nn.MaxPool2d reaches the
    mode as F.max_pool2d (its boolean-dispatch wrapper) or F.max_pool2d_with_indices; the
    others as their F.* functions. Calls made inside them do not reach the mode again.
    """

    def pool(dilation_index: int | None) -> Callable[[_Field, tuple, dict], _Field]:
        return lambda field, args, kwargs: _pool_field(field, args, kwargs, dilation_index)

    rules: dict[Any, Callable[[_Field, tuple, dict], _Field]] = {
        F.conv2d: _conv_field,
        F.max_pool2d: pool(4),
        F.max_pool2d_with_indices: pool(4),
        F.avg_pool2d: pool(None),
        F.lp_pool2d: _lp_pool_field,
        F.adaptive_avg_pool2d: _adaptive_field,
        F.adaptive_max_pool2d: _adaptive_field,
        F.adaptive_max_pool2d_with_indices: _adaptive_field,
    }
    return rules


class ReceptiveFieldMode:
    """Tags every tensor the forward makes with the (field, jump) it derives from the input.

    Each operator's output gets the element-wise max over its tagged tensor inputs (so a
    residual sum or a concatenation takes the widest branch), then conv and pooling rules
    grow it. Tensors with no tagged input (weights, constants) get no tag. Transposed
    convolutions and upsampling pass the field through unchanged (an acknowledged gap: this
    project's networks only shrink maps).
    """

    def __init__(self, inputs: torch.Tensor) -> None:
        self._fields: Any = WeakIdKeyDictionary()
        self._fields[inputs] = (1, 1, 1, 1)
        self._rules = _field_rules()
        self.last_map_field: int | None = None
        self._mode = _CallbackMode(self._on_call)

    def __enter__(self) -> ReceptiveFieldMode:
        self._mode.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._mode.__exit__(*exc)

    def field_of(self, tensor: torch.Tensor) -> int | None:
        field = self._fields.get(tensor)
        return None if field is None else max(field[0], field[1])

    def _on_call(self, func: Any, args: tuple, kwargs: dict, output: Any) -> None:
        inherited = [self._fields[t] for t in _tensors_in((args, kwargs)) if t in self._fields]
        if not inherited:
            return
        field = _widest(inherited)
        rule = self._rules.get(func)
        if rule is not None:
            field = rule(field, args, kwargs)
        for tensor in _tensors_in(output):
            self._fields[tensor] = field
            if tensor.dim() == 4 and tensor.is_floating_point():
                self.last_map_field = max(field[0], field[1])


def _widest(fields: list[_Field]) -> _Field:
    """Where branches meet (a residual sum, a concatenation) the widest view wins."""
    rf_h, rf_w, jump_h, jump_w = (max(values) for values in zip(*fields, strict=True))
    return rf_h, rf_w, jump_h, jump_w


class _CallbackMode(TorchFunctionMode):
    """A TorchFunctionMode that runs each call, then reports it to ``on_call``."""

    def __init__(self, on_call: Callable[[Any, tuple, dict, Any], None]) -> None:
        super().__init__()
        self._on_call = on_call

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        output = func(*args, **kwargs)
        self._on_call(func, args, kwargs, output)
        return output
