"""Turning a DatasetSpec's ``source`` into images: one resolver per kind of source."""

from __future__ import annotations

from collections.abc import Callable

from cnn_lab.engine.data.imageset import ImageSet
from cnn_lab.engine.errors import UserError
from cnn_lab.engine.specs import DatasetSpec

SAMPLE_PREFIX = "sample:"

Resolver = Callable[[str, DatasetSpec], ImageSet]


def _load_builtin_sample(source: str, spec: DatasetSpec) -> ImageSet:
    from cnn_lab.engine.data.samples import load_sample

    return load_sample(source[len(SAMPLE_PREFIX) :])


# Prefix -> resolver. Folders, archives, CSV and NumPy files join this table with the importer.
_RESOLVERS: dict[str, Resolver] = {SAMPLE_PREFIX: _load_builtin_sample}


def load_source(spec: DatasetSpec) -> ImageSet:
    """Load the images a DatasetSpec names, applying its ``limit``."""
    for prefix, resolve in _RESOLVERS.items():
        if spec.source.startswith(prefix):
            images = resolve(spec.source, spec)
            break
    else:
        raise UserError(
            f"cnn-lab cannot read the data source {spec.source!r} yet.",
            hint="Use a built-in sample such as 'sample:shapes'.",
        )
    if spec.limit is not None and spec.limit < len(images):
        images = images.stratified_limit(spec.limit, seed=spec.split_seed)
    return images
