"""Writing files that must never be seen half-written: weights and checkpoints.

Bytes go to a temporary name in the target's folder, are flushed and fsynced, then renamed
over the target in one step, so a crash or a full disk leaves the previous file intact and no
temporary file behind.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def partial_path(target: Path) -> Path:
    """The hidden temporary name a file is written under before it replaces ``target``."""
    return target.with_name(f".{target.name}.partial")


def write_atomic(path: str | os.PathLike[str], data: bytes) -> tuple[str, int]:
    """Write ``data`` to ``path`` atomically; returns its (sha256, bytes)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = partial_path(target)
    try:
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    return hashlib.sha256(data).hexdigest(), len(data)


def plain_tensors(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Detached, row-major CPU copies: safetensors stores nothing else, and channels-last
    weights are strided differently."""
    return {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
