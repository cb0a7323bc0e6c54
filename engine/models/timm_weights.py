"""timm's published weights through the same catalogue, download and load as torchvision's.

A timm model's weights are named by their pretrained tag (``resnet18`` has ``a1_in1k``,
``tv_in1k``...); ``default`` is timm's own default tag (the first one timm lists). The
catalogue is read from timm's ``pretrained_cfg`` only: where the file is
(``timm_source.timm_pretrained_file``: the Hugging Face hub's direct address, else the
config's URL), the input it expects (``timm_data_config``: size, mean, std, interpolation,
crop) and how many classes its head has. timm's configs carry no accuracy or file size, so
those stay None.

The file downloads through ``hub_download.download_weights`` into torch.hub's cache like any
other weights. Every file on the Hugging Face hub is called ``model.safetensors``, so it is
cached (and fetched from ``CNN_LAB_WEIGHTS_MIRROR``) under ``timm_<model>.<tag>.safetensors``,
which no two models share; a file at a plain URL keeps its own name (timm's release files
carry torch.hub's hash prefix, which is checked). It loads through
``weights.load_pretrained`` (safetensors or a weights-only .pth state dict; the classifier
skipped by shape, the stem summed for greyscale), as timm's own format is a plain state dict.

Importing this module does not import timm: only asking about a timm network does.
"""

from __future__ import annotations

import math
from pathlib import Path, PurePosixPath
from typing import Any

from cnn_lab.engine.errors import UserError
from cnn_lab.engine.models import hub_download
from cnn_lab.engine.models.published_weights import (
    IMAGENET,
    PublishedWeights,
    WeightsSource,
    register_weights_source,
)
from cnn_lab.engine.specs import ArchitectureSpec
from cnn_lab.engine.specs.architecture import TIMM

SAFETENSORS = ".safetensors"


class TimmWeights(WeightsSource):
    """Published weights of a timm model, one per pretrained tag."""

    kind = "timm"

    def handles(self, spec: ArchitectureSpec) -> bool:
        return spec.preset == TIMM and bool(spec.timm_model)

    def catalogue(self, spec: ArchitectureSpec) -> list[PublishedWeights]:
        from cnn_lab.engine.models.timm_source import timm_module

        base, _, asked_tag = spec.timm_model.partition(".")
        timm = timm_module()
        tags = [name.split(".", 1)[1] for name in timm.list_pretrained(f"{base}.*")]
        if not tags:
            return []
        default = asked_tag or _default_tag(base) or tags[0]
        return [_entry(base, tag, tag == default) for tag in tags]

    def cache_name(self, weights: PublishedWeights) -> str | None:
        return cache_name(weights)

    def describe(self, weights: PublishedWeights) -> str:
        return f"timm's {weights.arch}.{weights.name} weights"

    def verify(self, path: Path, weights: PublishedWeights) -> None:
        """What is verified: the byte count against the server's Content-Length and, for a name
        with torch.hub's hash prefix, the sha256 (both in hub_download); then that a
        safetensors file's header reads as tensors, so a half-written or HTML error page never
        stays in the cache. The hub's files have no hash in their name, so their content is
        otherwise checked when loading (a file of another network is refused there).
        """
        if path.suffix == SAFETENSORS:
            _check_safetensors(path, weights)


def cache_name(weights: PublishedWeights) -> str:
    """The file name in torch.hub's cache: unique per model and tag for a hub file.

    ``-`` becomes ``_`` so that no name looks like torch.hub's ``name-<hash>.ext`` promise.
    """
    filename = hub_download.filename_of(weights.url)
    if not weights.url.startswith("https://huggingface.co/"):
        return filename
    suffix = PurePosixPath(filename).suffix or SAFETENSORS
    return f"timm_{weights.arch}.{weights.name}{suffix}".replace("-", "_")


def _default_tag(base: str) -> str:
    from cnn_lab.engine.models.timm_source import timm_pretrained_cfg

    return str(timm_pretrained_cfg(base).get("tag") or "")


def _entry(base: str, tag: str, is_default: bool) -> PublishedWeights:
    from cnn_lab.engine.models.timm_source import (
        timm_data_config,
        timm_pretrained_cfg,
        timm_pretrained_file,
    )

    name = f"{base}.{tag}"
    where = timm_pretrained_file(name)
    config = timm_data_config(name)
    cfg = timm_pretrained_cfg(name)
    size = config.get("input_size") or ()
    crop = int(size[-1]) if len(size) == 3 else None
    crop_pct = config.get("crop_pct")
    return PublishedWeights(
        source="timm",
        arch=base,
        name=tag,
        url=where.url,
        accuracy=None,
        file_mb=None,
        params=None,
        categories=_int(cfg.get("num_classes")),
        mean=_floats(config.get("mean")),
        std=_floats(config.get("std")),
        crop_size=crop,
        resize_size=math.floor(crop / crop_pct) if crop and crop_pct else crop,
        is_default=is_default,
        dataset=_dataset_of(tag),
        interpolation=str(config.get("interpolation") or "bilinear"),
    )


def _dataset_of(tag: str) -> str:
    """What timm's tag says the head was trained on: ``..._in1k`` is ImageNet-1K."""
    if tag.endswith("in1k"):
        return IMAGENET
    return "ImageNet-22K" if tag.endswith("in22k") else tag


def _check_safetensors(path: Path, weights: PublishedWeights) -> None:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            if not list(f.keys()):
                raise ValueError("no tensors")
    except Exception:  # safetensors raises several kinds for a file that is not one
        path.unlink(missing_ok=True)
        raise UserError(
            f"The download of timm's {weights.arch}.{weights.name} weights is not a "
            "safetensors file, so it was not kept.",
            hub_download.PICK_FILE_HINT,
        ) from None


def _floats(value: Any) -> tuple[float, ...] | None:
    return tuple(float(v) for v in value) if value is not None else None


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int) else None


register_weights_source(TimmWeights())
