"""What data a run trains on and how it is split."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator

from cnn_lab.engine.specs.base import Spec


class DatasetSpec(Spec):
    """A data source and the split of it that a run uses.

    ``source`` is ``sample:NAME`` for a built-in generated dataset; folders, archives and
    files arrive with the dataset importer.
    """

    source: Annotated[str, Field(min_length=1, max_length=4096)] = "sample:shapes"
    val_fraction: Annotated[float, Field(gt=0.0, lt=0.9)] = 0.2
    split_seed: Annotated[int, Field(ge=0, le=2**31 - 1)] = 0
    limit: Annotated[int | None, Field(ge=20, le=10_000_000)] = None
    """Use at most this many images (a stratified subset): for quick trials."""

    @field_validator("source")
    @classmethod
    def _source_is_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must name a data source such as 'sample:shapes'")
        if "\x00" in value:
            raise ValueError("must not contain a NUL character")
        return value.strip()
