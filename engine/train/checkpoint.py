"""Checkpoints: everything a run needs to continue, in one safetensors file, no pickle.

Tensors (weights, optimizer moments, the EMA, RNG states) are safetensors tensors; the rest
(epoch, step, position in the epoch, schedule and early-stopping state, the optimizer's
hyperparameters, Python's and NumPy's RNG states) is JSON in the file's metadata. Loading
therefore never unpickles anything: a file that is not a safetensors file, pickles included,
is refused as a corrupt checkpoint without running a byte of it.

Files are written atomically: to a temporary name in the same folder, flushed and fsynced,
then renamed over the old one, so a crash or a full disk during a save leaves the previous
checkpoint intact and no temporary file behind.
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cnn_lab.engine.errors import UserError
from cnn_lab.engine.util.safe_files import plain_tensors, write_atomic

FORMAT = "cnn-lab checkpoint 1"
LAST, BEST = "last", "best"


def checkpoint_path(folder: str | os.PathLike[str], kind: str) -> Path:
    return Path(folder) / f"{kind}.ckpt"


@dataclass
class Progress:
    """Where the run is: the next batch to train is ``batch`` of ``epoch`` (1-based epochs)."""

    epoch: int
    batch: int
    step: int
    total_steps: int
    best_val_accuracy: float | None = None
    epochs_done: int = 0
    train_time_s: float = 0.0
    trained_images: int = 0
    epoch_totals: dict[str, float] = field(default_factory=dict)
    """The running loss and accuracy sums of a half-finished epoch."""


@dataclass
class Checkpoint:
    progress: Progress
    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    extra_tensors: dict[str, dict[str, torch.Tensor]]
    """Named groups of tensors: "ema", "rng"."""
    extra_json: dict[str, Any]
    """Named JSON states: "schedule", "stopping", "scaler", "rng"."""


# ----------------------------------------------------------------------------- RNG


def rng_state(device: torch.device | None = None) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Every RNG a run draws from: torch's CPU generator, the run's GPU's, Python and NumPy.

    The GPU's state is saved under "cuda" as the state of the device the run trains on, so a
    resume on another machine, or with another number of visible GPUs, restores it to the
    device it then trains on (older checkpoints kept every GPU's as "cuda.N").
    """
    tensors = {"torch": torch.get_rng_state()}
    if device is not None and device.type == "cuda":
        tensors["cuda"] = torch.cuda.get_rng_state(device)
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    plain = {
        "python": [version, list(internal), gauss],
        "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)],
    }
    return tensors, plain


def set_rng_state(
    tensors: dict[str, torch.Tensor], plain: dict[str, Any], device: torch.device | None = None
) -> None:
    torch.set_rng_state(tensors["torch"])
    if device is not None and device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        state = tensors.get("cuda", tensors.get(f"cuda.{index}", tensors.get("cuda.0")))
        if state is not None:
            torch.cuda.set_rng_state(state, device)
    version, internal, gauss = plain["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = plain["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))


# ----------------------------------------------------------------- optimizer state


def _split_optimizer(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """An optimizer state_dict as tensors ("state.<param>.<name>") and JSON (the rest)."""
    tensors: dict[str, torch.Tensor] = {}
    plain_state: dict[str, dict[str, Any]] = {}
    for index, values in state["state"].items():
        for name, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state.{index}.{name}"] = value
            else:
                plain_state.setdefault(str(index), {})[name] = value
    return tensors, {"param_groups": state["param_groups"], "state": plain_state}


def _join_optimizer(tensors: dict[str, torch.Tensor], plain: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {int(k): dict(v) for k, v in plain.get("state", {}).items()}
    for key, value in tensors.items():
        _, index, name = key.split(".", 2)
        state.setdefault(int(index), {})[name] = value
    return {"state": state, "param_groups": plain["param_groups"]}


# --------------------------------------------------------------------- save / load


def save_checkpoint(path: str | os.PathLike[str], checkpoint: Checkpoint) -> tuple[str, int]:
    """Write ``checkpoint`` atomically; returns (sha256, bytes) of the file."""
    from safetensors.torch import save

    optimizer_tensors, optimizer_plain = _split_optimizer(checkpoint.optimizer)
    tensors = {f"model.{k}": v for k, v in checkpoint.model.items()}
    tensors.update({f"optimizer.{k}": v for k, v in optimizer_tensors.items()})
    for group, values in checkpoint.extra_tensors.items():
        tensors.update({f"{group}.{k}": v for k, v in values.items()})
    metadata = {
        "format": FORMAT,
        "progress": json.dumps(checkpoint.progress.__dict__),
        "optimizer": json.dumps(optimizer_plain),
        "extra": json.dumps(checkpoint.extra_json),
        "groups": json.dumps(sorted(checkpoint.extra_tensors)),
    }
    return write_atomic(path, save(plain_tensors(tensors), metadata=metadata))


def load_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Read a checkpoint written by save_checkpoint; anything else is a "corrupt checkpoint"."""
    from safetensors import SafetensorError, safe_open

    source = Path(path)
    if not source.is_file():
        raise UserError(f"There is no checkpoint at {source}.")
    try:
        with safe_open(str(source), framework="pt", device="cpu") as handle:
            meta = handle.metadata() or {}
            if meta.get("format") != FORMAT:
                raise ValueError("it was not written by cnn-lab")
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
        progress = Progress(**json.loads(meta["progress"]))
        optimizer_plain = json.loads(meta["optimizer"])
        extra_json = json.loads(meta["extra"])
        groups = json.loads(meta["groups"])
    except (SafetensorError, OSError, ValueError, KeyError, TypeError) as exc:
        raise UserError(
            f"Corrupt checkpoint {source.name}: {exc}.",
            hint="It may be truncated or not a cnn-lab checkpoint; resume from another one "
            "or start the run again.",
        ) from None

    def group(prefix: str) -> dict[str, torch.Tensor]:
        cut = len(prefix) + 1
        return {k[cut:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}

    return Checkpoint(
        progress=progress,
        model=group("model"),
        optimizer=_join_optimizer(group("optimizer"), optimizer_plain),
        extra_tensors={name: group(name) for name in groups},
        extra_json=extra_json,
    )
