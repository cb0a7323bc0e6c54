"""What an importer finds before anything is decoded: files with labels, or ready arrays.

Importers only list; decoding, resizing and caching happen once, in engine/data/cache.py, so
every kind of source gets the same checks, the same report and the same cache.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Skip:
    """A file left out of the dataset, and why, in words for the report."""

    path: str
    reason: str


@dataclass(frozen=True)
class FileEntry:
    path: Path
    label: str
    shown: str
    """The path as the person knows it (relative to the folder or archive they chose)."""


@dataclass
class FileListing:
    """Image files and their class names; ``classes`` includes classes that ended up empty."""

    kind: str
    root: Path
    entries: list[FileEntry]
    classes: tuple[str, ...]
    skipped: list[Skip] = field(default_factory=list)


@dataclass
class ArrayListing:
    """Images that arrive decoded (built-in samples, NumPy files): uint8 N×H×W×C."""

    kind: str
    name: str
    images: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]
    native_size: bool = False
    """True for generated samples: their own size is the intended training size."""
    skipped: list[Skip] = field(default_factory=list)


Listing = FileListing | ArrayListing
