"""Pretrained weights a person picked: load them safely, report what fitted, freeze the backbone.

Files are read without ever running code from them: ``.safetensors`` holds only tensors, and
any other file goes through ``torch.load(weights_only=True)``, which refuses pickled objects
other than tensors and plain containers. Nothing is downloaded here (published weights are
downloaded once by hub_download.py, before the model is built).

Loading is forgiving where fine-tuning needs it and strict where a mistake is likely: tensors
whose shape differs (typically the classifier, 1000 ImageNet classes against the dataset's 10)
are skipped and reported, but a file matching fewer than half the network's parameters is
refused, because it was almost certainly saved from another network.
"""

from __future__ import annotations

import logging
import os
import pickle
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from cnn_lab.engine.errors import UserError

log = logging.getLogger(__name__)

_NESTED_KEYS = ("state_dict", "model", "model_state_dict")
"""Where training scripts commonly put the state dict inside a checkpoint dict."""

_WRAPPER_PREFIXES = ("module.", "_orig_mod.")
"""Added by DataParallel/DistributedDataParallel and by torch.compile; never part of a net."""

_SAME_NETWORK_HINT = (
    "Pick weights saved from the same network as this preset (for a torchvision preset, "
    "torchvision's weights of the same name), or clear the pretrained file."
)


@dataclass(frozen=True)
class SkippedTensor:
    """A tensor in the file whose shape does not fit the network's tensor of that name."""

    name: str
    file_shape: tuple[int, ...]
    model_shape: tuple[int, ...]


@dataclass(frozen=True)
class LoadReport:
    """What a weights file gave the network, for the person to read."""

    loaded: tuple[str, ...]
    skipped: tuple[SkippedTensor, ...]
    missing: tuple[str, ...]
    """The network's tensors the file did not have (they keep their fresh initialisation)."""
    unexpected: tuple[str, ...]
    """The file's tensors the network has no place for."""
    adapted: tuple[str, ...] = ()
    """Stem convolutions whose RGB weights were adapted to the network's channel count."""

    def sentence(self) -> str:
        """One line: 'Loaded 120 of the network's 122 tensors; skipped 2 whose shape differs …'."""
        total = len(self.loaded) + len(self.skipped) + len(self.missing)
        parts = [f"Loaded {len(self.loaded)} of the network's {total} tensors"]
        if self.adapted:
            parts.append(
                f"adapted {_names(self.adapted)} from the file's 3 input channels by summing "
                "them, as timm does"
            )
        if self.skipped:
            shown = ", ".join(
                f"{s.name}: file {_shape(s.file_shape)}, network {_shape(s.model_shape)}"
                for s in self.skipped[:3]
            )
            more = f" and {len(self.skipped) - 3} more" if len(self.skipped) > 3 else ""
            parts.append(f"skipped {len(self.skipped)} whose shape differs ({shown}{more})")
        if self.missing:
            parts.append(
                f"{len(self.missing)} missing from the file ({_names(self.missing)}) and "
                "left as initialised"
            )
        if self.unexpected:
            parts.append(f"{len(self.unexpected)} in the file unused ({_names(self.unexpected)})")
        return "; ".join(parts) + "."


def load_pretrained(model: nn.Module, path: str | os.PathLike[str]) -> LoadReport:
    """Copy the tensors of the weights file at ``path`` into ``model`` where names and shapes fit.

    Raises UserError (one sentence) if the file is missing, unreadable, unsafe to unpickle,
    holds no tensors, or fits fewer than half the network's parameters.

    On the meta device (the live summary builds there) the file is read and every check and
    the report are the same, but no data is copied: meta tensors hold none, and copying into
    them would only warn.
    """
    path = Path(path)
    state = _tensors_of(_read(path), path)
    state, adapted = _adapt_stem(model, state)
    report = _match(model.state_dict(), state, adapted)
    _refuse_if_wrong_network(model, report, path)
    if not _on_meta(model):
        model.load_state_dict({name: state[name] for name in report.loaded}, strict=False)
    log.info("Pretrained weights from %s: %s", path.name, report.sentence())
    return report


def load_exactly(
    model: nn.Module, state: Mapping[str, torch.Tensor], *, what: str, hint: str
) -> None:
    """Load ``state`` into ``model``, which it must fit tensor for tensor (a run's own saved
    weights or checkpoint, never a pretrained file).

    A misfit raises UserError: ``what`` (say "Run 4's weights file") does not fit this network,
    naming the first layer that differs and both shapes, then ``hint``; never PyTorch's
    "Error(s) in loading state_dict" list.
    """
    report = _match(model.state_dict(), state)
    if report.skipped or report.missing or report.unexpected:
        raise UserError(f"{what} does not fit this network: {misfit(report)}.", hint)
    model.load_state_dict(state, strict=True)


def misfit(report: LoadReport) -> str:
    """The first way a file differs from the network, and how many tensors differ in all.

    >>> misfit(LoadReport((), (SkippedTensor("head.weight", (10, 64), (5, 64)),), (), ()))
    'layer head has weight 10×64 in the file but 5×64 in the network'
    """
    if report.skipped:
        first = report.skipped[0]
        layer, _, tensor = first.name.rpartition(".")
        where = f"layer {layer} has {tensor}" if layer else f"its tensor {tensor}"
        said = (
            f"{where} {_shape(first.file_shape)} in the file but "
            f"{_shape(first.model_shape)} in the network"
        )
    elif report.missing:
        said = f"the network's {report.missing[0]} is not in the file"
    else:
        said = f"the file's {report.unexpected[0]} has no place in the network"
    others = len(report.skipped) + len(report.missing) + len(report.unexpected) - 1
    if others:
        said += f" (and {others} more)" if others > 1 else " (and 1 more)"
    return said


def freeze_backbone(model: nn.Module) -> int:
    """Stop training everything but the classifier head; return how many weights were frozen.

    The head is the last ``nn.Linear`` in module order plus any BatchNorm after it; every
    other parameter gets ``requires_grad=False``. The count is of scalar weights (numel), as
    parameter counts are shown everywhere else.

    Frozen BatchNorm layers are also kept in eval mode (running statistics used, never
    updated), even after ``model.train()``: ``requires_grad=False`` alone would still let
    them re-estimate their statistics from every training batch, so the "frozen" features
    would drift away from what the pretrained weights computed, and in training they would be
    normalised with noisy per-batch statistics while evaluation uses running ones. A backbone
    that should adapt to new data is trained unfrozen instead.
    """
    head = head_modules(model)
    head_params = {id(p) for module in head for p in module.parameters()}
    frozen = 0
    for p in model.parameters():
        if id(p) not in head_params:
            p.requires_grad_(False)
            frozen += p.numel()
    head_ids = {id(m) for m in head}
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and id(module) not in head_ids:
            _keep_in_eval(module)
    return frozen


# -- reading --------------------------------------------------------------------------------


def _read(path: Path) -> object:
    """The file's contents, never running code from it; any failure becomes a UserError."""
    if not path.is_file():
        raise UserError(
            f"The weights file {path} does not exist.", "Pick the file again or clear it."
        )
    try:
        if path.suffix.lower() == ".safetensors":
            from safetensors.torch import load_file

            return load_file(path, device="cpu")
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "weights only" in str(e).lower() or "unsupported global" in str(e).lower():
            raise UserError(
                f"The weights file {path.name} holds Python objects besides tensors, which "
                "cnn-lab will not load because unpickling them could run any code.",
                "Save the network's state_dict() with torch.save, or convert it to "
                ".safetensors, and pick that file.",
            ) from e
        raise _corrupt(path) from e
    except MemoryError:
        raise UserError(
            f"The weights file {path.name} is too large to load into memory.", None
        ) from None
    except Exception as e:  # torch.load and safetensors raise many types for a bad file
        raise _corrupt(path) from e


def _corrupt(path: Path) -> UserError:
    # The library's own message (miniz, pickle opcodes, header sizes) would mean nothing to
    # the person; it stays on the exception's __cause__ for developers.
    what = "is empty" if path.stat().st_size == 0 else "is corrupt or truncated"
    return UserError(
        f"The weights file {path.name} {what}, or is not a weights file.",
        "Pick a .safetensors file, or a PyTorch .pt/.pth file saved with torch.save.",
    )


def _tensors_of(content: object, path: Path) -> dict[str, torch.Tensor]:
    """The state dict inside ``content``: unwrapped from a checkpoint, prefixes stripped."""
    if isinstance(content, Mapping):
        for key in _NESTED_KEYS:
            if isinstance(content.get(key), Mapping):
                content = content[key]
                break
    tensors = (
        {str(k): v for k, v in content.items() if isinstance(v, torch.Tensor)}
        if isinstance(content, Mapping)
        else {}
    )
    if not tensors:
        raise UserError(
            f"The file {path.name} is not a weights file: it holds no named tensors.",
            "Pick a file saved with torch.save(model.state_dict()) or as .safetensors.",
        )
    return _strip_prefixes(tensors)


def _strip_prefixes(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    for prefix in _WRAPPER_PREFIXES:
        if all(name.startswith(prefix) for name in tensors):
            tensors = {name.removeprefix(prefix): t for name, t in tensors.items()}
    return tensors


# -- matching -------------------------------------------------------------------------------


def _adapt_stem(
    model: nn.Module, state: dict[str, torch.Tensor]
) -> tuple[dict[str, torch.Tensor], tuple[str, ...]]:
    """Fit an RGB stem convolution in the file to the network's first convolution when only
    its input channels differ (a greyscale dataset on ImageNet weights).

    timm's ``adapt_input_conv`` rule: for one channel the three RGB kernels are summed (a grey
    image seen as R=G=B gives the same response); for more, the RGB kernels are repeated and
    scaled by 3/channels. Only the first convolution is touched: a later layer whose shape
    differs is a different network, and is skipped and reported as before.
    """
    convs = ((n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d))
    module_name, stem = next(convs, ("", None))
    if not isinstance(stem, nn.Conv2d) or stem.groups != 1:
        return state, ()
    name = f"{module_name}.weight" if module_name else "weight"
    source = state.get(name)
    target = stem.weight
    if (
        source is None
        or source.dim() != 4
        or source.shape[1] != 3
        or target.shape[1] == 3
        or source.shape[0] != target.shape[0]
        or source.shape[2:] != target.shape[2:]
    ):
        return state, ()
    channels = target.shape[1]
    if channels == 1:
        adapted = source.float().sum(dim=1, keepdim=True)
    else:
        repeat = -(-channels // 3)
        adapted = source.float().repeat(1, repeat, 1, 1)[:, :channels] * (3 / channels)
    return {**state, name: adapted.to(source.dtype)}, (name,)


def _match(
    wanted: Mapping[str, torch.Tensor],
    available: Mapping[str, torch.Tensor],
    adapted: tuple[str, ...] = (),
) -> LoadReport:
    loaded: list[str] = []
    skipped: list[SkippedTensor] = []
    for name, target in wanted.items():
        if name not in available:
            continue
        source = available[name]
        if source.shape == target.shape:
            loaded.append(name)
        else:
            skipped.append(SkippedTensor(name, tuple(source.shape), tuple(target.shape)))
    return LoadReport(
        loaded=tuple(loaded),
        skipped=tuple(skipped),
        missing=tuple(name for name in wanted if name not in available),
        unexpected=tuple(name for name in available if name not in wanted),
        adapted=adapted,
    )


def _refuse_if_wrong_network(model: nn.Module, report: LoadReport, path: Path) -> None:
    parameters = [name for name, _ in model.named_parameters()]
    loaded = set(report.loaded)
    fitting = sum(name in loaded for name in parameters)
    if fitting * 2 < len(parameters):
        raise UserError(
            f"The weights file {path.name} does not fit this network: only {fitting} of "
            f"{len(parameters)} parameter tensors match by name and shape.",
            _SAME_NETWORK_HINT,
        )


def _on_meta(model: nn.Module) -> bool:
    return any(t.is_meta for t in (*model.parameters(), *model.buffers()))


# -- freezing -------------------------------------------------------------------------------


def head_modules(model: nn.Module) -> list[nn.Module]:
    """The classifier head: the last Linear in module order and the BatchNorms after it
    (freezing the backbone and the fine-tuning recipe keep exactly these trainable)."""
    modules = list(model.modules())
    last_linear = max((i for i, m in enumerate(modules) if isinstance(m, nn.Linear)), default=None)
    if last_linear is None:
        raise UserError(
            "This network has no linear classifier to keep trainable, so its backbone cannot "
            "be frozen.",
            "End the network with a Linear layer, or turn off freezing.",
        )
    after = modules[last_linear + 1 :]
    return [modules[last_linear]] + [
        m for m in after if isinstance(m, nn.modules.batchnorm._BatchNorm)
    ]


def _use_running_stats(module: nn.Module, args: object) -> None:
    """Forward pre-hook: a frozen BatchNorm normalises with its running statistics."""
    module.train(False)


def _keep_in_eval(module: nn.Module) -> None:
    # A pre-hook rather than a patched train(): model.train() re-enables training on every
    # module, the hook undoes it for this one before each forward, and a module-level hook
    # survives deepcopy and pickling.
    if _use_running_stats not in module._forward_pre_hooks.values():
        module.register_forward_pre_hook(_use_running_stats)
    module.train(False)


def _shape(shape: Iterable[int]) -> str:
    return "×".join(str(d) for d in shape) or "scalar"


def _names(names: tuple[str, ...]) -> str:
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
