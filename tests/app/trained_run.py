"""A real trained run, as small as training allows, and runs that cannot be used.

Shared by the Evaluate and Predict panel tests; each test module trains one run (about two
seconds on a CPU) in a module-scoped fixture.
"""

from __future__ import annotations

from pathlib import Path

from cnn_lab.engine.jobs.job import run_job
from cnn_lab.engine.specs import RunSpec
from cnn_lab.engine.store import RunStore
from cnn_lab.engine.store import status as st

TEST_IMAGES = 30
"""A quarter of the 120 images is held out as the test split."""


def train_tiny_run(db: Path) -> int:
    """One epoch on 120 sample images of 16×16: poor accuracy, so plenty of mistakes."""
    spec = RunSpec.from_dict(
        {
            "dataset": {
                "source": "sample:shapes",
                "limit": 120,
                "image_size": 16,
                "test_fraction": 0.25,
            },
            "train": {"epochs": 1, "batch_size": 32, "device": "cpu"},
        }
    )
    record = run_job(spec, db, sample_system=False)
    assert record.status == st.COMPLETED, record.reason
    return record.id


def run_without_weights(db: Path, like: int, status: str = st.FAILED) -> int:
    """A run with ``like``'s spec that ended (or, for ACTIVE statuses, waits) without weights."""
    with RunStore.open(db) as store:
        spec_json = store.get_run(like).spec_json
        run_id = store.create_run(spec_json=spec_json, spec_hash="no-weights")
        if status in st.FINAL:
            store.finish_run(run_id, status, reason="It stopped before its first step.")
    return run_id


def run_with_missing_weights(db: Path, like: int) -> int:
    """A finished run whose weights file was deleted: the engine says so when asked."""
    run_id = run_without_weights(db, like, st.COMPLETED)
    with RunStore.open(db) as store:
        store.add_artifact(
            run_id, path=db.parent / "gone.safetensors", kind="weights", sha256="0", bytes=0
        )
    return run_id
