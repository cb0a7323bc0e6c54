"""Where prepared data lives: the decoded-image cache and the folders archives unpack into.

``$CNN_LAB_CACHE`` overrides the platform's cache folder so tests and people with a fast
scratch disk can put the (possibly large) cache where they want it.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

CACHE_ENV_VAR = "CNN_LAB_CACHE"


def cache_root() -> Path:
    chosen = os.environ.get(CACHE_ENV_VAR) or platformdirs.user_cache_path("cnn-lab")
    return Path(os.path.abspath(Path(chosen).expanduser()))


def image_cache_dir() -> Path:
    return cache_root() / "images"


def imports_dir() -> Path:
    """Archives are unpacked below here, never next to the archive or anywhere else."""
    return cache_root() / "imports"
