"""A trained network on disk: weights as safetensors, with what is needed to rebuild it.

The file's metadata holds the input shape and class names, and the run's spec holds the
architecture, so a model can be rebuilt and loaded without unpickling anything.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cnn_lab.engine.errors import UserError
from cnn_lab.engine.models.registry import InputShape, build_model
from cnn_lab.engine.models.weights import load_exactly
from cnn_lab.engine.specs import RunSpec
from cnn_lab.engine.store import artifact_kinds
from cnn_lab.engine.util.safe_files import plain_tensors, write_atomic

if TYPE_CHECKING:
    from torch import nn

    from cnn_lab.engine.store import RunRepository


@dataclass(frozen=True)
class SavedWeights:
    path: Path
    sha256: str
    bytes: int


def save_weights(
    model: nn.Module, path: str | os.PathLike[str], shape: InputShape, classes: list[str]
) -> SavedWeights:
    """Write the model's weights atomically (temporary file, fsync, rename)."""
    from safetensors.torch import save

    metadata = {
        "input_shape": json.dumps([shape.channels, shape.height, shape.width]),
        "classes": json.dumps(classes),
        "format": "cnn-lab weights 1",
    }
    data = save(plain_tensors(model.state_dict()), metadata=metadata)
    sha256, size = write_atomic(path, data)
    return SavedWeights(Path(path), sha256, size)


@dataclass(frozen=True)
class TrainedModel:
    model: nn.Module
    shape: InputShape
    classes: list[str]
    spec: RunSpec
    weights: Path


def load_trained(store: RunRepository, run_id: int) -> TrainedModel:
    """Rebuild run ``run_id``'s network and load its saved weights (on the CPU, eval mode)."""
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    record = store.get_run(run_id)
    saved = [a for a in store.artifacts(run_id) if a["kind"] == artifact_kinds.WEIGHTS]
    if not saved:
        raise UserError(
            f"Run {run_id} has no saved weights (it is {record.status}).",
            hint="Only runs that trained at least one step save their weights.",
        )
    path = Path(saved[-1]["path"])
    if not path.is_file():
        raise UserError(f"Run {run_id}'s weights file is missing: {path}.")
    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = handle.metadata() or {}
        tensors = load_file(str(path))
        channels, height, width = json.loads(meta["input_shape"])
        classes = list(json.loads(meta["classes"]))
    except (SafetensorError, OSError, KeyError, ValueError) as exc:
        raise UserError(f"Run {run_id}'s weights file {path} is corrupt: {exc}.") from None
    spec = RunSpec.from_json(record.spec_json)
    shape = InputShape(channels, height, width, len(classes))
    architecture = spec.architecture.model_copy(
        update={"pretrained": "", "weights": "", "freeze_backbone": False}
    )
    model = build_model(architecture, shape)
    load_exactly(
        model,
        tensors,
        what=f"Run {run_id}'s weights file {path.name}",
        hint="The file was replaced or the run's architecture changed since it trained; "
        "train the run again, or put back the weights it saved.",
    )
    return TrainedModel(model.eval(), shape, classes, spec, path)
