"""Typed, frozen, JSON round-trippable specs. No torch here: the GUI imports these."""

from cnn_lab.engine.specs.architecture import CUSTOM, ArchitectureSpec
from cnn_lab.engine.specs.base import Spec, explain
from cnn_lab.engine.specs.dataset import DatasetSpec
from cnn_lab.engine.specs.layers import LayerSpec, count_layers
from cnn_lab.engine.specs.run import SCHEMA_VERSION, RunSpec, migrate
from cnn_lab.engine.specs.train import TrainSpec

__all__ = [
    "CUSTOM",
    "SCHEMA_VERSION",
    "ArchitectureSpec",
    "DatasetSpec",
    "LayerSpec",
    "RunSpec",
    "Spec",
    "TrainSpec",
    "count_layers",
    "explain",
    "migrate",
]
