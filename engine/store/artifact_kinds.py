"""The kinds of file a run records as artifacts, named once.

The job records them (engine/jobs/recording.py); resume, evaluate, predict, reports and the
window look them up by these names, so a kind spelled differently in one place cannot make
a run look as if it had no weights.
"""

from __future__ import annotations

WEIGHTS = "weights"
"""The trained network as safetensors (engine/models/trained.py), one per finished run."""

CHECKPOINT_PREFIX = "checkpoint."
"""A checkpoint's kind is this plus which one it is (``last`` or ``best``); each replaces
the run's previous checkpoint of the same kind."""

LAST_CHECKPOINT = CHECKPOINT_PREFIX + "last"
"""What a resume continues from: a run without it cannot be resumed in place."""


def checkpoint_kind(which: str) -> str:
    """``checkpoint.last``, ``checkpoint.best``: the artifact kind of a checkpoint."""
    return CHECKPOINT_PREFIX + which
