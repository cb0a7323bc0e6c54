"""What a network costs: shapes, parameters, MACs, memory and receptive field, per unit.

The Architecture panel recomputes this on every edit in a background thread and
``cnn-lab model summary --json`` prints it, so it must be cheap. Everything is measured in one
forward pass of a *meta-device* twin of the model: meta tensors carry shapes, dtypes and
strides but no data, so the pass allocates nothing and computes nothing, yet every operator
really runs its shape logic. A model that already lives on the meta device is used as is; a CPU
(or CUDA) model is first twinned onto meta without copying its weights, so its parameters,
buffers (BatchNorm running statistics included) and mode are never touched.

During that single pass (training mode, a batch of two images) four instruments listen:

* torch's own ``FlopCounterMode`` counts FLOPs (we never write a FLOP formula); forward hooks on
  each unit read its running total before and after the unit, so per-unit MACs add up exactly
  to the whole.
* forward hooks record each unit's output shape and bytes.
* ``saved_tensors_hooks`` sees every tensor autograd keeps for backward: that is the activation
  memory training really pays for, measured instead of guessed from layer outputs.
* a ``TorchFunctionMode`` propagates (receptive field, jump) through every operator, so
  residual branches, concatenations and any other topology are handled by the pass itself.

Batch two, not one: BatchNorm in training mode refuses a single value per channel (after
global pooling), and every per-image figure is the batch figure halved.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils._pytree import tree_leaves
from torch.utils.flop_counter import FlopCounterMode

from cnn_lab.engine.models.receptive_field import ReceptiveFieldMode

# The batch the measuring pass runs with (see the module docstring for why not one).
_BATCH = 2

# Optimizer state tensors kept per trainable parameter, each as large as the parameter.
# SGD is assumed to use momentum (one buffer); Adam and AdamW keep two moments; RMSprop keeps
# the running square average. Unknown names get two: the common, cautious case.
_OPTIMIZER_STATES = {"sgd": 1, "adam": 2, "adamw": 2, "rmsprop": 1}
_UNKNOWN_OPTIMIZER_STATES = 2

# Containers we look inside when a model has no summary_units(): exactly these types, never
# subclasses (torchvision's Conv2dNormActivation is a Sequential subclass and is one unit).
_PLAIN_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)


@dataclass(frozen=True)
class LayerSummary:
    """One row of the summary table: one unit of the network, for one image.

    ``receptive_field`` is the side, in input pixels, of the square window one element of
    this unit's output depends on. It is None when the output is not a spatial map (a
    vector after flattening or global pooling): a vector has no single window to report.
    Non-square windows report their larger side.
    """

    name: str
    kind: str
    output_shape: tuple[int, ...]
    params: int
    trainable_params: int
    macs: int
    activation_bytes: int
    receptive_field: int | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "output_shape": list(self.output_shape),
            "params": self.params,
            "trainable_params": self.trainable_params,
            "macs": self.macs,
            "activation_bytes": self.activation_bytes,
            "receptive_field": self.receptive_field,
        }


@dataclass(frozen=True)
class ModelSummary:
    """The cost of a whole network for inputs of ``input_shape`` (C, H, W), per image.

    ``activation_bytes`` sums the units' outputs (what inference streams through);
    ``saved_bytes_per_image`` is what autograd actually keeps for backward in training, which
    is usually larger (BatchNorm and ReLU keep their own inputs/outputs, pooling keeps
    indices) and is the figure that decides the batch size that fits.
    ``receptive_field`` is that of the last spatial (4-D) map the network produces. Global
    pooling is taken not to grow it (see ``ReceptiveFieldMode``), so for a classifier it is
    the receptive field of the final feature map.
    """

    input_shape: tuple[int, int, int]
    layers: tuple[LayerSummary, ...]
    params: int
    trainable_params: int
    macs: int
    activation_bytes: int
    saved_bytes_per_image: int
    param_bytes: int
    receptive_field: int | None
    trainable_param_bytes: int = 0
    buffer_bytes: int = 0
    input_bytes_per_image: int = 0

    def training_memory_bytes(self, batch_size: int, optimizer: str = "sgd") -> int:
        """Estimate the device memory one training step needs at ``batch_size``.

        It is an estimate: it leaves out the framework's own workspace (cuDNN, allocator
        rounding and caching, the CUDA context) and assumes fp32 training without
        checkpointing. Each term is there because it is resident at the peak of a step:

        * weights and buffers: always on the device;
        * gradients: one per trainable parameter, alive from backward to the optimizer step;
        * optimizer state: momentum/moment buffers, as large as the trainable parameters
          (``_OPTIMIZER_STATES``; unknown names count two, the Adam case);
        * saved activations x batch: what autograd keeps from forward for backward, measured;
        * the input batch: it stays alive for the whole step (not counted among the saved
          activations, so it is not counted twice);
        * the largest unit output x batch: backward holds one gradient of that size in
          flight while it walks back through the unit, on top of everything saved.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {batch_size}")
        states = _OPTIMIZER_STATES.get(optimizer.lower(), _UNKNOWN_OPTIMIZER_STATES)
        largest_output = max((layer.activation_bytes for layer in self.layers), default=0)
        return (
            self.param_bytes
            + self.buffer_bytes
            + self.trainable_param_bytes * (1 + states)
            + batch_size * (self.saved_bytes_per_image + self.input_bytes_per_image)
            + batch_size * largest_output
        )

    def to_dict(self, batch_size: int | None = None, optimizer: str = "sgd") -> dict[str, Any]:
        """A JSON-ready dict; with ``batch_size`` it also carries the training-memory estimate."""
        result: dict[str, Any] = {
            "input_shape": list(self.input_shape),
            "params": self.params,
            "trainable_params": self.trainable_params,
            "macs": self.macs,
            "activation_bytes": self.activation_bytes,
            "saved_bytes_per_image": self.saved_bytes_per_image,
            "param_bytes": self.param_bytes,
            "buffer_bytes": self.buffer_bytes,
            "receptive_field": self.receptive_field,
            "layers": [layer.to_dict() for layer in self.layers],
        }
        if batch_size is not None:
            result["batch_size"] = batch_size
            result["optimizer"] = optimizer
            result["training_memory_bytes"] = self.training_memory_bytes(batch_size, optimizer)
        return result


def summarize(model: nn.Module, input_shape: tuple[int, int, int]) -> ModelSummary:
    """Measure ``model`` on inputs of ``input_shape`` (C, H, W) without real compute.

    The model is left exactly as it was: a non-meta model is twinned onto the meta device,
    and a meta model gets its per-module train/eval flags back. Errors from the forward pass
    (a shape that does not fit, say) propagate unchanged, so the caller can show them.
    """
    shape = _check_input_shape(input_shape)
    modes = {module: module.training for module in model.modules()}
    try:
        twin = model if _is_all_meta(model) else _meta_twin(model)
        units = _units(twin)
        with torch.device("meta"):
            inputs = torch.empty((_BATCH, *shape), dtype=_input_dtype(twin))
        pass_ = _measure_pass(twin, units, inputs)
    finally:
        for module, training in modes.items():
            module.training = training
    return _assemble(model, shape, units, pass_, inputs)


# --- preparing the pass -----------------------------------------------------------------------


def _check_input_shape(input_shape: tuple[int, int, int]) -> tuple[int, int, int]:
    shape = tuple(int(side) for side in input_shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"input_shape must be (channels, height, width), not {input_shape!r}")
    return shape  # type: ignore[return-value]


def _is_all_meta(model: nn.Module) -> bool:
    tensors = [*model.parameters(), *model.buffers()]
    return all(tensor.is_meta for tensor in tensors)


def _meta_twin(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` whose parameters and buffers are empty meta tensors.

    Pre-seeding deepcopy's memo with meta stand-ins means no weight is ever copied (cheap for
    a 100 MB network) and tied weights stay tied in the twin.
    """
    memo: dict[int, Any] = {}
    for param in model.parameters():
        stand_in = torch.empty_like(param, device="meta")
        memo[id(param)] = nn.Parameter(stand_in, requires_grad=param.requires_grad)
    for buffer in model.buffers():
        memo[id(buffer)] = torch.empty_like(buffer, device="meta")
    return copy.deepcopy(model, memo)


def _input_dtype(model: nn.Module) -> torch.dtype:
    """The dtype of the first floating parameter, so a half-precision net gets half inputs."""
    for param in model.parameters():
        if param.is_floating_point():
            return param.dtype
    return torch.float32


def _units(model: nn.Module) -> list[tuple[str, str, nn.Module]]:
    """The table rows: ``summary_units()`` when the model offers it, else its expanded children.

    Units must not nest (a unit inside another would count its MACs twice); both sources
    here give disjoint modules.
    """
    provider = getattr(model, "summary_units", None)
    if callable(provider):
        return [(str(name), str(kind), module) for name, kind, module in provider()]
    units = [(name, type(module).__name__, module) for name, module in _walk(model, "")]
    return units or [(type(model).__name__, type(model).__name__, model)]


def _walk(module: nn.Module, prefix: str) -> Iterator[tuple[str, nn.Module]]:
    for name, child in module.named_children():
        path = f"{prefix}{name}"
        if _is_plain_container(child):
            yield from _walk(child, f"{path}.")
        else:
            yield path, child


def _is_plain_container(module: nn.Module) -> bool:
    return type(module) in _PLAIN_CONTAINERS


# --- the measuring pass ----------------------------------------------------------------------


@dataclass
class _UnitRecord:
    """What the hooks saw of one unit (mutable while the pass runs)."""

    calls: int = 0
    flops: int = 0
    output_shape: tuple[int, ...] = ()
    output_bytes: int = 0
    receptive_field: int | None = None


@dataclass
class _PassResult:
    records: list[_UnitRecord]
    total_flops: int
    saved_bytes: int
    last_map_field: int | None


def _measure_pass(
    model: nn.Module, units: list[tuple[str, str, nn.Module]], inputs: torch.Tensor
) -> _PassResult:
    """Run one training-mode forward with every instrument attached.

    FlopCounterMode's module tracker installs process-wide module hooks while it is active;
    they only bookkeep names, and the FLOPs we read are counted in this thread's dispatch
    mode, so a forward running in another thread meanwhile does not change our figures.
    """
    model.train()
    records = [_UnitRecord() for _ in units]
    fields = ReceptiveFieldMode(inputs)
    saved = _SavedTensorMeter(model, inputs)
    with FlopCounterMode(display=False) as flops:
        handles = _attach_unit_hooks(units, records, flops.get_total_flops, fields)
        try:
            with torch.enable_grad(), saved.hooks(), fields:
                output = model(inputs)
        finally:
            for handle in handles:
                handle.remove()
    del output  # kept until here so the autograd graph (and its saved tensors) stayed alive
    return _PassResult(records, flops.get_total_flops(), saved.bytes, fields.last_map_field)


def _attach_unit_hooks(
    units: list[tuple[str, str, nn.Module]],
    records: list[_UnitRecord],
    running_flops: Callable[[], int],
    fields: ReceptiveFieldMode,
) -> list[Any]:
    """Hooks that read the FLOP total around each unit call and note its output.

    Reading the running total before and after a unit (rather than looking module paths up
    in the counter's per-module table) attributes exactly what ran inside the unit, works for
    units from ``summary_units()`` with any names, and sums over repeated calls.
    """
    handles = []
    for (_, _, module), record in zip(units, records, strict=True):
        start: list[int] = []

        def before(_module: Any, _args: Any, start: list[int] = start) -> None:
            start.append(running_flops())

        def after(
            _module: Any, _args: Any, output: Any, start: list[int] = start, record=record
        ) -> None:
            record.calls += 1
            record.flops += running_flops() - start.pop()
            _note_output(record, output, fields)

        handles.append(module.register_forward_pre_hook(before))
        handles.append(module.register_forward_hook(after))
    return handles


def _note_output(record: _UnitRecord, output: Any, fields: ReceptiveFieldMode) -> None:
    """Keep the last call's output: shape of its first tensor, bytes of all its tensors."""
    tensors = _tensors_in(output)
    if not tensors:
        return
    first = tensors[0]
    record.output_shape = tuple(first.shape[1:])
    record.output_bytes = sum(t.numel() * t.element_size() for t in tensors) // _BATCH
    record.receptive_field = fields.field_of(first) if first.dim() == 4 else None


def _tensors_in(tree: Any) -> list[torch.Tensor]:
    return [leaf for leaf in tree_leaves(tree) if isinstance(leaf, torch.Tensor)]


class _SavedTensorMeter:
    """Adds up the bytes autograd saves for backward, each storage once.

    Deduplication is by storage identity (the StorageImpl pointer, which is distinct per
    storage even on meta, where every data_ptr is 0): a ReLU output saved by the ReLU and by
    the next pooling layer, or a flatten view saved by a Linear, occupies memory once.
    Storages of parameters and buffers are skipped (weights saved for the input gradient, or
    a transposed weight view, are counted as weights), and so is the input batch's, which
    ``training_memory_bytes`` counts on its own.
    """

    def __init__(self, model: nn.Module, inputs: torch.Tensor) -> None:
        excluded = [*model.parameters(), *model.buffers(), inputs]
        self._seen = {_storage_key(tensor) for tensor in excluded}
        self._kept: list[torch.Tensor] = []  # keeps storages alive so their keys stay unique
        self.bytes = 0

    def hooks(self) -> Any:
        return torch.autograd.graph.saved_tensors_hooks(self._pack, _unpack)

    def _pack(self, tensor: torch.Tensor) -> torch.Tensor:
        key = _storage_key(tensor)
        if key not in self._seen:
            self._seen.add(key)
            self._kept.append(tensor)
            self.bytes += tensor.untyped_storage().nbytes()
        return tensor


def _unpack(tensor: torch.Tensor) -> torch.Tensor:
    return tensor


def _storage_key(tensor: torch.Tensor) -> int:
    return tensor.untyped_storage()._cdata


# --- assembling the result -------------------------------------------------------------------


def _assemble(
    model: nn.Module,
    shape: tuple[int, int, int],
    units: list[tuple[str, str, nn.Module]],
    pass_: _PassResult,
    inputs: torch.Tensor,
) -> ModelSummary:
    """Turn the pass's per-batch records into per-image rows and totals."""
    layers = _layer_rows(units, pass_.records)
    params = list(model.parameters())
    trainable = [p for p in params if p.requires_grad]
    total_macs = pass_.total_flops // _BATCH // 2
    rest = _rest_row(layers, _count(params), _count(trainable), total_macs)
    if rest is not None:
        layers.append(rest)
    return ModelSummary(
        input_shape=shape,
        layers=tuple(layers),
        params=_count(params),
        trainable_params=_count(trainable),
        macs=total_macs,
        activation_bytes=sum(layer.activation_bytes for layer in layers),
        saved_bytes_per_image=pass_.saved_bytes // _BATCH,
        param_bytes=_nbytes(params),
        receptive_field=pass_.last_map_field,
        trainable_param_bytes=_nbytes(trainable),
        buffer_bytes=_nbytes(list(model.buffers())),
        input_bytes_per_image=inputs[0].numel() * inputs.element_size(),
    )


def _layer_rows(
    units: list[tuple[str, str, nn.Module]], records: list[_UnitRecord]
) -> list[LayerSummary]:
    """One row per unit that ran; a parameter shared by several units counts in the first."""
    rows = []
    counted: set[int] = set()
    for (name, kind, module), record in zip(units, records, strict=True):
        if record.calls == 0:
            continue  # never ran in forward: not part of what this input costs
        own = [p for p in module.parameters() if id(p) not in counted]
        counted.update(id(p) for p in own)
        rows.append(
            LayerSummary(
                name=name,
                kind=kind,
                output_shape=record.output_shape,
                params=_count(own),
                trainable_params=_count([p for p in own if p.requires_grad]),
                macs=record.flops // _BATCH // 2,
                activation_bytes=record.output_bytes,
                receptive_field=record.receptive_field,
            )
        )
    return rows


def _rest_row(
    layers: list[LayerSummary], params: int, trainable: int, macs: int
) -> LayerSummary | None:
    """A row for what no unit holds, so the rows always add up to the totals.

    It appears only when needed: parameters owned directly by the model or by a unit that
    never ran, or MACs of functional calls made between units in the model's own forward.
    """
    missing = (
        params - sum(layer.params for layer in layers),
        trainable - sum(layer.trainable_params for layer in layers),
        macs - sum(layer.macs for layer in layers),
    )
    if not any(missing):
        return None
    return LayerSummary("(other)", "other", (), missing[0], missing[1], missing[2], 0, None)


def _count(tensors: list[torch.Tensor]) -> int:
    return sum(t.numel() for t in tensors)


def _nbytes(tensors: list[torch.Tensor]) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)
