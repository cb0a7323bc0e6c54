"""The Architecture panel's weights choice: what the weights combo lists and what each entry is.

The combo lists "Random initial weights", then every published weights entry for the
network (torchvision's enums for its presets, timm's for a timm model: whatever
``published_weights`` returns) with its accuracy, file size and whether it is already in
torch.hub's cache, then the weights file the spec starts from (if any), then "A weights
file…" to pick one. The catalogue reads torchvision's (or timm's) metadata and so imports
torch: ``catalogue`` runs off the GUI thread, everything else here is cheap and Qt-free.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cnn_lab.engine.specs import ArchitectureSpec

Kind = Literal["random", "published", "file", "pick"]
RANDOM_TEXT = "Random initial weights"
PICK_TEXT = "A weights file…"
RANDOM_TIP = "Start from random weights: train from scratch (needs more epochs and data)."
PICK_TIP = (
    "Pick a weights file (.safetensors, .pt or .pth) you already have; nothing is downloaded."
)


@dataclass(frozen=True)
class Published:
    """One published weights entry as the combo needs it (computed off the GUI thread)."""

    name: str
    accuracy: float | None
    file_mb: float | None
    is_default: bool
    cached: bool
    dataset: str = "ImageNet-1K"


@dataclass(frozen=True)
class WeightsEntry:
    """One line of the weights combo."""

    kind: Kind
    value: str
    """The weights name (published), the file path (file), or "" (random, pick)."""
    label: str
    tip: str
    cached: bool = False


def network_key(spec: ArchitectureSpec) -> tuple[str, str]:
    """What the catalogue depends on: the network, not its weights or multipliers."""
    return (spec.preset, spec.timm_model)


def catalogue(spec: ArchitectureSpec) -> tuple[Published, ...]:
    """Every published weights entry for ``spec``'s network and whether each is cached.

    Reads metadata and the disk only (never the network), but imports torch and
    torchvision (or timm): call it on a worker thread. A network with none, or a source
    that cannot list them (timm not installed), has an empty catalogue.
    """
    from cnn_lab.engine.errors import UserError
    from cnn_lab.engine.models.published_weights import published_weights, source_for

    try:
        listed = published_weights(spec)
    except UserError:
        return ()
    source = source_for(spec)
    return tuple(
        Published(
            name=w.name,
            accuracy=w.accuracy,
            file_mb=w.file_mb,
            is_default=w.is_default,
            cached=source is not None and source.cached(w) is not None,
            dataset=w.dataset,
        )
        for w in listed
    )


def published_label(weights: Published) -> str:
    """'IMAGENET1K_V2 · 80.9 % top-1 · 97.8 MB · downloaded (default)'."""
    parts = [weights.name]
    if weights.accuracy is not None:
        parts.append(f"{weights.accuracy:.1f} % top-1")
    size = f"{weights.file_mb:.1f} MB" if weights.file_mb is not None else ""
    if weights.cached:
        parts += [size, "downloaded"] if size else ["downloaded"]
    else:  # "44.7 MB to download"; timm's configs do not say a size: "to download"
        parts.append(f"{size} to download".strip())
    return " · ".join(parts) + (" (default)" if weights.is_default else "")


def published_tip(weights: Published) -> str:
    """Why pick these weights, and what choosing them does now."""
    accuracy = (
        f"{weights.accuracy:.1f} % top-1 on {weights.dataset}"
        if weights.accuracy is not None
        else f"trained on {weights.dataset}"
    )
    where = (
        "Already in the download cache: used with no network."
        if weights.cached
        else "Choosing them downloads them once into torch.hub's cache (Cancel stops it)."
    )
    return (
        f"Start from the published {weights.name} weights ({accuracy}): usually much higher "
        f"accuracy on small datasets and far fewer epochs. {where}"
    )


def entries(spec: ArchitectureSpec, published: tuple[Published, ...]) -> list[WeightsEntry]:
    """The combo's lines for ``spec``, given its network's catalogue (() while unknown)."""
    lines = [WeightsEntry("random", "", RANDOM_TEXT, RANDOM_TIP)]
    lines += [
        WeightsEntry("published", w.name, published_label(w), published_tip(w), w.cached)
        for w in published
    ]
    if spec.weights and spec.weights not in {w.name for w in published}:
        # The catalogue is still loading, or names the weights in another case ("default").
        lines.append(WeightsEntry("published", spec.weights, spec.weights, "Published weights."))
    if spec.pretrained:
        name = Path(spec.pretrained).name
        lines.append(WeightsEntry("file", spec.pretrained, f"File: {name}", spec.pretrained))
    lines.append(WeightsEntry("pick", "", PICK_TEXT, PICK_TIP))
    return lines


def current_index(lines: list[WeightsEntry], spec: ArchitectureSpec) -> int:
    """Which line shows ``spec``'s weights (0, random, when it starts from none)."""
    wanted: tuple[Kind, str] = ("random", "")
    if spec.weights:
        wanted = ("published", spec.weights)
    elif spec.pretrained:
        wanted = ("file", spec.pretrained)
    for index, line in enumerate(lines):
        if (line.kind, line.value) == wanted:
            return index
    return 0


def find_entry(lines: list[WeightsEntry], name: str) -> WeightsEntry | None:
    """The published line called ``name``, if listed."""
    return next((e for e in lines if e.kind == "published" and e.value == name), None)


def download_text(name: str) -> str:
    """The progress bar's first words, before the first bytes arrive."""
    return f"Downloading the {name} weights…"


def bytes_text(name: str, done: int, total: int, seconds_left: float | None) -> str:
    """'Downloading IMAGENET1K_V1 · 12.3 of 44.7 MB · 0:12 left' beside the bar."""
    from cnn_lab.engine.util.durations import format_duration

    size = f"{done / 1e6:.1f} of {total / 1e6:.1f} MB" if total > 0 else f"{done / 1e6:.1f} MB"
    parts = [f"Downloading {name}", size]
    if seconds_left is not None:
        parts.append(f"{format_duration(seconds_left)} left")
    return " · ".join(parts)
