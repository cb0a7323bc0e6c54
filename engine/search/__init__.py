"""Hyperparameter sweeps over Optuna: a SearchSpec, its trials as recorded runs, resumable.

Importing this package loads neither torch nor Optuna: the GUI builds SearchSpecs without
them. ``run_sweep``, ``create_sweep`` and ``join_sweep`` (a worker on a shared storage) live
in ``cnn_lab.engine.search.study``; the shared trial queue in ``queue``.
"""

from cnn_lab.engine.search.paths import apply
from cnn_lab.engine.search.spec import ParamSpec, RangeSpec, SearchSpec

__all__ = ["ParamSpec", "RangeSpec", "SearchSpec", "apply"]
