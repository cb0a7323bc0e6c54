"""timm models as an architecture source (the optional ``cnn-lab[timm]`` extra).

Everything goes through timm's own API: ``timm.create_model`` builds the network for the
dataset's classes and channels, ``timm.list_models`` is what search looks through, and each
model's ``pretrained_cfg`` says how its published weights were trained (input size, mean,
std, interpolation, crop) and where they are published. Weights are never fetched here:
``timm_pretrained_file`` tells the shared download path where to get them, and a file in
timm's own format (a state dict as safetensors or .pth) loads through
``engine/models/weights.py`` like any other weights file.

timm is imported lazily, so listing presets and the window's start never pay for it.
"""

from __future__ import annotations

import difflib
import fnmatch
import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from types import ModuleType
from typing import TYPE_CHECKING, Any

from cnn_lab.engine.errors import UserError

if TYPE_CHECKING:
    from torch import nn

    from cnn_lab.engine.models.registry import InputShape
    from cnn_lab.engine.specs import ArchitectureSpec

INSTALL_HINT = "Install it with: pip install 'cnn-lab[timm]'."
HF_DEFAULT_FILENAME = "model.safetensors"
"""What timm publishes on the Hugging Face hub when a config names no file."""


@dataclass(frozen=True)
class TimmModelInfo:
    """One search result: a timm model name, its family, and what is cheaply known of it."""

    name: str
    family: str
    pretrained_tags: tuple[str, ...]
    """Published weights for it (``resnet18.a1_in1k`` has tag ``a1_in1k``); empty: none."""
    input_size: tuple[int, int, int] | None
    """The input (C, H, W) its default weights were trained at, from its pretrained_cfg."""
    params: int | None = None
    """Parameter count at 1000 classes, when asked for (a meta-device build, ~0.1 s each)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "family": self.family,
            "pretrained_tags": list(self.pretrained_tags),
            "input_size": list(self.input_size) if self.input_size else None,
            "params": self.params,
        }


@dataclass(frozen=True)
class TimmWeightsFile:
    """Where a timm model's published weights are: the hub repository or a URL, and a file.

    timm prefers the Hugging Face hub when a config names a repository (``hf_hub_id``);
    ``url`` is then the hub's direct download address for ``filename``, so a plain HTTP
    download into torch.hub's cache fetches the same file timm would.
    """

    model: str
    """The model name with its tag, e.g. ``resnet18.a1_in1k``."""
    url: str
    filename: str
    hf_hub_id: str = ""


def timm_module() -> ModuleType:
    """timm itself, or a sentence saying how to install it."""
    try:
        import timm
    except ImportError:
        raise UserError("timm models need the optional timm package.", hint=INSTALL_HINT) from None
    return timm


_PORT_PREFIXES = ("tf_", "tv_", "gluon_", "legacy_", "ig_", "ssl_", "swsl_")
"""Where timm marks a model's origin before its family's name (weights ported from others)."""


def family_of(name: str) -> str:
    """A model's family: its first word less the size digits that follow it (resnet18 →
    resnet, efficientnet_b0 → efficientnet), keeping a version number (convnextv2_atto →
    convnextv2, mobilenetv3_large_100 → mobilenetv3), which names another family."""
    lowered = name.lower()
    for port in _PORT_PREFIXES:  # tf_efficientnet_b0 is an EfficientNet ported from TF
        if lowered.startswith(port) and len(lowered) > len(port):
            lowered = lowered[len(port) :]
            break
    word = re.split(r"[_.\-]", lowered, maxsplit=1)[0]
    match = re.match(r"([a-z]+?(?:v\d+)?)(\d+[a-z]*)?$", word)
    return match.group(1) if match else word


def check_timm_name(name: str) -> None:
    """Refuse a name timm does not know, suggesting the closest ones."""
    timm = timm_module()
    base, _, tag = name.partition(".")
    if timm.is_model(base):
        if not tag:
            return
        tagged = timm.list_pretrained(f"{base}.*")
        if name in tagged:
            return
        tags = [p.split(".", 1)[1] for p in tagged]
        raise UserError(
            f"timm's {base} has no pretrained tag {tag!r}.",
            hint=f"Its tags: {', '.join(tags) or 'none'}.",
        )
    close = difflib.get_close_matches(base, timm.list_models(), n=5, cutoff=0.6)
    raise UserError(
        f"timm has no model called {name!r}.",
        hint=(f"Did you mean {', '.join(close)}? " if close else "")
        + "'cnn-lab model list --timm TEXT' searches them.",
    )


def build_timm(spec: ArchitectureSpec, shape: InputShape) -> nn.Module:
    """``timm.create_model`` for the dataset's classes and channels, freshly initialised.

    Models trained at a fixed input size (vision transformers) are told the dataset's size,
    so their position embeddings fit. Builds on the ambient default device.
    """
    timm = timm_module()
    name = spec.timm_model
    check_timm_name(name)
    kwargs: dict[str, Any] = {"num_classes": shape.classes, "in_chans": shape.channels}
    if _pretrained_cfg(name).get("fixed_input_size"):
        kwargs["img_size"] = (shape.height, shape.width)
    if spec.dropout:
        kwargs["drop_rate"] = spec.dropout
    try:
        return timm.create_model(name, pretrained=False, **kwargs)
    except Exception as exc:  # timm raises many kinds for a bad combination
        detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise UserError(
            f"timm could not build {name} for {shape.channels}×{shape.height}×{shape.width} "
            f"images and {shape.classes} classes: {detail}.",
            hint="Try another input size, or another model of the family.",
        ) from None


def search_timm(text: str, limit: int = 50, *, with_params: bool = False) -> list[TimmModelInfo]:
    """timm models matching ``text`` by name or family, best match first.

    ``text`` may be a family (``resnet``), part of a name (``b0``), a family and its size
    (``convnext tiny``: every further word must be in the name), or a wildcard
    (``efficientnet_b*``). Exact names rank first, then the family's own models, then names
    that start with the text, then names that contain it; shorter (usually smaller) names
    first within each. ``with_params`` builds each result on the meta device to count its
    parameters.
    """
    timm = timm_module()
    needle = text.strip().lower()
    names = timm.list_models()
    if any(ch in needle for ch in "*?["):
        hits = [n for n in names if fnmatch.fnmatch(n, needle)]
        ranked = sorted(hits, key=lambda n: (len(n), n))
    else:

        def rank(name: str) -> tuple[int, int, str] | None:
            if not needle:
                return (0, len(name), name)
            if name == needle:
                return (0, 0, name)
            if family_of(name) == needle:
                return (1, len(name), name)
            if name.startswith(needle):
                return (2, len(name), name)
            if needle in name:
                return (3, len(name), name)
            return None

        # More words narrow by size or variant: "convnext tiny", "efficientnet b3".
        first, *more = needle.split() or [""]
        needle = first
        scored = [
            (key, n)
            for n in names
            if all(word in n for word in more) and (key := rank(n)) is not None
        ]
        ranked = [n for _, n in sorted(scored)]
    tags = _pretrained_tags()
    found = []
    for name in ranked[: max(0, limit)]:
        cfg = _pretrained_cfg(name)
        size = cfg.get("input_size")
        found.append(
            TimmModelInfo(
                name=name,
                family=family_of(name),
                pretrained_tags=tuple(tags.get(name, ())),
                input_size=tuple(size) if size else None,
                params=_count_params(name) if with_params else None,
            )
        )
    return found


def timm_data_config(name: str) -> dict[str, Any]:
    """How ``name``'s published weights expect images: input_size, mean, std, interpolation,
    crop_pct and crop_mode, resolved by timm itself from the model's pretrained_cfg.

    ``name`` may carry a tag (``resnet18.a1_in1k``); without one it is timm's default weights.
    """
    from timm.data import resolve_data_config

    check_timm_name(name)
    config = resolve_data_config({}, pretrained_cfg=_pretrained_cfg(name))
    return {
        key: (tuple(value) if isinstance(value, list) else value) for key, value in config.items()
    }


def timm_pretrained_file(name: str) -> TimmWeightsFile:
    """Where ``name``'s published weights are (``name`` with a tag, or its default weights).

    Raises UserError when timm publishes no weights for it.
    """
    check_timm_name(name)
    cfg = _pretrained_cfg(name)
    tagged = f"{cfg.get('architecture') or name.split('.', 1)[0]}" + (
        f".{cfg['tag']}" if cfg.get("tag") else ""
    )
    hub = cfg.get("hf_hub_id") or ""
    if hub:
        filename = cfg.get("hf_hub_filename") or HF_DEFAULT_FILENAME
        url = f"https://huggingface.co/{hub}/resolve/main/{filename}"
        return TimmWeightsFile(tagged, url, filename, hub)
    url = cfg.get("url") or ""
    if url:
        return TimmWeightsFile(tagged, url, PurePosixPath(url.split("?", 1)[0]).name)
    raise UserError(
        f"timm publishes no weights for {name}.",
        hint="Train it from scratch, or pick a weights file of your own.",
    )


def timm_pretrained_cfg(name: str) -> dict[str, Any]:
    """timm's pretrained_cfg of ``name`` (with or without a tag) as a dict; {} for none.

    What engine/models/timm_weights.py reads its catalogue from (the tag, the head's class
    count), without building the model.
    """
    return _pretrained_cfg(name)


# --- helpers ------------------------------------------------------------------------------------


def _pretrained_cfg(name: str) -> dict[str, Any]:
    """The model's pretrained_cfg as a dict ({} when timm has none for it)."""
    timm = timm_module()
    cfg = timm.models.get_pretrained_cfg(name, allow_unregistered=True)
    return cfg.to_dict() if cfg is not None else {}


def _pretrained_tags() -> dict[str, list[str]]:
    tags: dict[str, list[str]] = {}
    for full in timm_module().list_pretrained():
        model, _, tag = full.partition(".")
        tags.setdefault(model, []).append(tag)
    return tags


def _count_params(name: str) -> int | None:
    import torch

    try:
        with torch.device("meta"):
            model = timm_module().create_model(name, pretrained=False)
    except Exception:  # a count is a nicety; a model that will not build has none
        return None
    return sum(p.numel() for p in model.parameters())


__all__ = [
    "INSTALL_HINT",
    "TimmModelInfo",
    "TimmWeightsFile",
    "build_timm",
    "check_timm_name",
    "family_of",
    "search_timm",
    "timm_data_config",
    "timm_module",
    "timm_pretrained_cfg",
    "timm_pretrained_file",
]
