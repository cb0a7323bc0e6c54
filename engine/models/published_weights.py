"""Published weights for an architecture: the catalogue, the download, and what they expect.

An ``ArchitectureSpec`` names published weights by ``weights`` (``IMAGENET1K_V2``, say). Which
weights a network has depends on where its code comes from, so each source of networks
registers a ``WeightsSource`` under a kind: ``"torchvision"`` here, reading torchvision's own
weights enums (``torchvision.models.get_model_weights``) for the torchvision presets. Another
source (timm, for ``preset == "timm"``) registers its own::

    class TimmWeights(WeightsSource):
        kind = "timm"
        def handles(self, spec): return spec.preset == "timm"
        def catalogue(self, spec): return [PublishedWeights(...), ...]
        # download()/cached()/load() default to torch.hub's cache and load_pretrained;
        # override them when the files live elsewhere (the Hugging Face hub).

    register_weights_source(TimmWeights())

Everything here reads metadata only: the catalogue, ``find_weights`` and
``expected_preprocessing`` never touch the network. ``ensure_weights`` downloads (once; see
engine/models/hub_download.py), and ``load_published`` loads a cached file and refuses, in a
sentence, when it is not there yet: building a model never downloads.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnn_lab.engine.errors import UserError
from cnn_lab.engine.models import hub_download
from cnn_lab.engine.specs import ArchitectureSpec

if TYPE_CHECKING:
    from torch import nn

    from cnn_lab.engine.models.weights import LoadReport

DEFAULT = "DEFAULT"
"""The name that means "the source's recommended weights" (torchvision's ``.DEFAULT``)."""
IMAGENET = "ImageNet-1K"


@dataclass(frozen=True)
class PublishedWeights:
    """One published weights file and what its publisher says about it."""

    source: str
    """The kind of source that lists it: "torchvision", "timm"."""
    arch: str
    """The network the source calls it by (torchvision's builder name: "resnet50")."""
    name: str
    """What ``ArchitectureSpec.weights`` holds: "IMAGENET1K_V2"."""
    url: str
    accuracy: float | None
    """Published top-1 accuracy in percent on ``dataset`` (ImageNet-1K for torchvision)."""
    file_mb: float | None
    params: int | None
    categories: int | None
    mean: tuple[float, ...] | None
    std: tuple[float, ...] | None
    crop_size: int | None
    """The input side the weights were evaluated at."""
    resize_size: int | None
    is_default: bool = False
    dataset: str = IMAGENET
    interpolation: str = "bilinear"

    @property
    def filename(self) -> str:
        return hub_download.filename_of(self.url)

    @property
    def label(self) -> str:
        """'IMAGENET1K_V2: 80.9% top-1 on ImageNet-1K, 97.8 MB (default)'."""
        parts = [self.name + ":"]
        if self.accuracy is not None:
            parts.append(f"{self.accuracy:.1f}% top-1 on {self.dataset},")
        if self.file_mb is not None:
            parts.append(f"{self.file_mb:.1f} MB")
        if self.is_default:
            parts.append("(default)")
        return " ".join(parts).rstrip(",:")


@dataclass(frozen=True)
class Expected:
    """The input published weights expect, for the Data panel and the loader."""

    weights: str
    size: int | None
    mean: tuple[float, ...] | None
    std: tuple[float, ...] | None
    sentence: str


class WeightsSource:
    """Where one kind of network finds its published weights. Subclass, then register."""

    kind: str = ""

    def handles(self, spec: ArchitectureSpec) -> bool:
        raise NotImplementedError

    def catalogue(self, spec: ArchitectureSpec) -> list[PublishedWeights]:
        raise NotImplementedError

    def cache_name(self, weights: PublishedWeights) -> str | None:
        """The file's name in torch.hub's cache; None: the URL's own (torch.hub's rule)."""
        return None

    def describe(self, weights: PublishedWeights) -> str:
        """The weights as a sentence names them ("resnet18's IMAGENET1K_V1 weights")."""
        return _what(weights)

    def verify(self, path: Path, weights: PublishedWeights) -> None:
        """Check a downloaded file beyond its size and hash name (raise to refuse it)."""

    def cached(self, weights: PublishedWeights) -> Path | None:
        return hub_download.cached_file(weights.url, self.cache_name(weights))

    def download(
        self,
        weights: PublishedWeights,
        progress: hub_download.Progress,
        should_stop: Callable[[], bool],
    ) -> Path:
        path = hub_download.download_weights(
            weights.url,
            progress=progress,
            should_stop=should_stop,
            what=self.describe(weights),
            filename=self.cache_name(weights),
        )
        self.verify(path, weights)
        return path

    def load(self, model: nn.Module, path: Path, weights: PublishedWeights) -> LoadReport:
        from cnn_lab.engine.models.weights import load_pretrained

        return load_pretrained(model, path)


_SOURCES: dict[str, WeightsSource] = {}


def register_weights_source(source: WeightsSource) -> WeightsSource:
    """Add a source of published weights under its ``kind`` (once per kind)."""
    if not source.kind or source.kind in _SOURCES:
        raise ValueError(f"weights source {source.kind!r} is unnamed or registered twice")
    _SOURCES[source.kind] = source
    return source


def source_for(spec: ArchitectureSpec) -> WeightsSource | None:
    """The source that lists published weights for ``spec``'s network, if any does."""
    return next((s for s in _SOURCES.values() if s.handles(spec)), None)


def published_weights(spec: ArchitectureSpec) -> list[PublishedWeights]:
    """Every published weights file for ``spec``'s network (empty when it has none)."""
    source = source_for(spec)
    return source.catalogue(spec) if source is not None else []


def find_weights(spec: ArchitectureSpec, name: str | None = None) -> PublishedWeights:
    """The weights ``name`` (default: ``spec.weights``) names for ``spec``'s network.

    ``DEFAULT`` (any case) means the source's recommended weights. An unknown name is a
    sentence listing the known ones.
    """
    name = spec.weights if name is None else name
    listed = published_weights(spec)
    if not listed:
        raise UserError(
            f"The network {_network(spec)} has no published weights in cnn-lab.",
            "Pick a weights file instead, or train from scratch.",
        )
    if name.upper() == DEFAULT:
        return next((w for w in listed if w.is_default), listed[0])
    for weights in listed:
        if weights.name == name:
            return weights
    known = ", ".join(w.name for w in listed)
    raise UserError(
        f"{_network(spec)} has no published weights called {name!r}; it has {known}.",
        f"Pick one of {known}, or a weights file.",
    )


def cached_weights_path(spec: ArchitectureSpec) -> Path | None:
    """The cached file of ``spec``'s published weights, or None (disk only, no network)."""
    if not spec.weights:
        return None
    weights = find_weights(spec)
    source = source_for(spec)
    assert source is not None  # find_weights found weights, so a source listed them
    return source.cached(weights)


def ensure_weights(
    spec: ArchitectureSpec,
    progress: hub_download.Progress = lambda *_: None,
    should_stop: Callable[[], bool] = lambda: False,
) -> Path:
    """The file of ``spec``'s published weights, downloaded now if not cached yet.

    Progress is reported as ``hub_download.DOWNLOADING``; a stop raises ``Cancelled``;
    every failure is one UserError sentence offering to pick a file instead.
    """
    weights = find_weights(spec)
    source = source_for(spec)
    assert source is not None
    cached = source.cached(weights)
    if cached is not None:
        return cached
    return source.download(weights, progress, should_stop)


def load_published(model: nn.Module, spec: ArchitectureSpec) -> LoadReport:
    """Load ``spec``'s published weights into ``model`` from the cache; never downloads."""
    weights = find_weights(spec)
    source = source_for(spec)
    assert source is not None
    path = source.cached(weights)
    if path is None:
        raise UserError(
            f"{_what(weights)} are not downloaded yet.",
            "Train once with internet access (the job downloads them first), choose them in "
            "the Architecture panel to download them, or pick a weights file instead.",
        )
    return source.load(model, path, weights)


def expected_preprocessing(spec: ArchitectureSpec) -> Expected | None:
    """What ``spec``'s published weights expect (size, mean, std), or None without any.

    Metadata only, so it is cheap and works offline; None also when the name is unknown
    (building the model says why, in its own sentence).
    """
    if not spec.weights:
        return None
    try:
        weights = find_weights(spec)
    except UserError:
        return None
    parts = []
    if weights.crop_size is not None:
        parts.append(f"{weights.crop_size} px images")
    if weights.mean is not None and weights.std is not None:
        parts.append(f"normalised with mean {_floats(weights.mean)} and std {_floats(weights.std)}")
    if not parts:
        return None
    sentence = f"The {weights.name} weights expect " + " ".join(parts) + "."
    return Expected(weights.name, weights.crop_size, weights.mean, weights.std, sentence)


def _what(weights: PublishedWeights) -> str:
    return f"{weights.arch}'s {weights.name} weights"


def _network(spec: ArchitectureSpec) -> str:
    return spec.timm_model or spec.preset


def _floats(values: tuple[float, ...]) -> str:
    return "(" + ", ".join(f"{v:.3f}" for v in values) + ")"


# -- torchvision ----------------------------------------------------------------------------


class TorchvisionWeights(WeightsSource):
    """torchvision's weights enums, for the torchvision presets (same names as its builders)."""

    kind = "torchvision"

    def handles(self, spec: ArchitectureSpec) -> bool:
        return self.builder(spec) is not None

    @staticmethod
    def builder(spec: ArchitectureSpec) -> str | None:
        """torchvision's builder name for ``spec``'s preset: the presets are named after them."""
        from cnn_lab.engine.models.registry import all_presets

        names = {p.name for p in all_presets() if p.family == "torchvision"}
        return spec.preset if spec.preset in names else None

    def catalogue(self, spec: ArchitectureSpec) -> list[PublishedWeights]:
        builder = self.builder(spec)
        return list(_torchvision_catalogue(builder)) if builder is not None else []


def _torchvision_catalogue(builder: str) -> tuple[PublishedWeights, ...]:
    import torchvision.models

    enum = torchvision.models.get_model_weights(builder)
    default = enum.DEFAULT
    return tuple(_from_enum_member(builder, member, member is default) for member in enum)


def _from_enum_member(builder: str, member: Any, is_default: bool) -> PublishedWeights:
    meta = member.meta
    metrics = meta.get("_metrics", {}).get(IMAGENET, {})
    settings = _transform_settings(member.transforms)
    return PublishedWeights(
        source="torchvision",
        arch=builder,
        name=member.name,
        url=member.url,
        accuracy=_float(metrics.get("acc@1")),
        file_mb=_float(meta.get("_file_size")),
        params=meta.get("num_params"),
        categories=len(meta["categories"]) if meta.get("categories") else None,
        mean=_tuple(settings.get("mean")),
        std=_tuple(settings.get("std")),
        crop_size=_side(settings.get("crop_size")),
        resize_size=_side(settings.get("resize_size")),
        is_default=is_default,
        interpolation=str(getattr(settings.get("interpolation"), "value", "bilinear")),
    )


def _transform_settings(transforms: Any) -> dict[str, Any]:
    """The preset transform's settings without building it: the partial's keywords over the
    class's defaults (ImageNet's mean and std live only in the defaults)."""
    func = getattr(transforms, "func", None)
    if func is None:
        return {}
    defaults = {
        name: p.default
        for name, p in inspect.signature(func).parameters.items()
        if p.default is not inspect.Parameter.empty
    }
    return {**defaults, **getattr(transforms, "keywords", {})}


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) else None


def _tuple(value: Any) -> tuple[float, ...] | None:
    return tuple(float(v) for v in value) if value is not None else None


def _side(value: Any) -> int | None:
    if isinstance(value, (list, tuple)):
        value = value[0] if value else None
    return int(value) if isinstance(value, int) else None


register_weights_source(TorchvisionWeights())


# timm's weights live in their own module (engine/models/timm_weights.py), imported here so
# that every function above finds them; it imports timm only when asked about a timm model.
from cnn_lab.engine.models import timm_weights as _timm_weights  # noqa: E402, F401
