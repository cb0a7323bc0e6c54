"""Which runs Evaluate and Predict can use, read from a real store, and what each says."""

from __future__ import annotations

from pathlib import Path

import pytest

from cnn_lab.app.models.evaluation_form import (
    NO_RUN,
    NO_WEIGHTS,
    NOT_EVALUATED,
    STILL_ACTIVE,
    evaluation_readiness,
    stored_evaluation,
)
from cnn_lab.app.models.evaluation_readiness import UNREADABLE, RunReading, ask_run, read_run
from cnn_lab.app.models.predict_form import READY, predict_readiness
from cnn_lab.engine.specs import RunSpec
from cnn_lab.engine.store import RunStore, artifact_kinds
from cnn_lab.engine.store import status as st


def _run(db: Path, status: str, *, weights: bool) -> int:
    spec = RunSpec()
    with RunStore.open(db) as store:
        run_id = store.create_run(spec_json=spec.to_json(), spec_hash="h", status=status)
        if weights:
            store.add_artifact(
                run_id,
                path=db.parent / "w.safetensors",
                kind=artifact_kinds.WEIGHTS,
                sha256="0",
                bytes=0,
            )
    return run_id


def test_the_store_is_read_once_into_plain_facts(db_path: Path) -> None:
    run_id = _run(db_path, st.COMPLETED, weights=True)
    with RunStore.open(db_path) as store:
        store.update_summary(run_id, {"evaluation": {"accuracy": 0.5}})
        reading = read_run(store, run_id)
    assert reading == RunReading(run_id, st.COMPLETED, True, reading.summary)
    assert stored_evaluation(reading) == {"accuracy": 0.5}
    taken: list[RunReading] = []
    ask_run(lambda *a, **k: pytest.fail("no run: nothing to read"), None, taken.append, "t")
    assert taken == [RunReading(None)]


def test_a_missing_run_is_an_error_sentence_not_an_exception(db_path: Path) -> None:
    with RunStore.open(db_path) as store:
        reading = read_run(store, 404)
    assert "404" in reading.error
    for readiness in (evaluation_readiness(reading), predict_readiness(reading)):
        assert readiness.error and not readiness.usable
        assert readiness.message == reading.error
        assert readiness.empty_text() == ("Run 404 cannot be read", UNREADABLE[1])


def test_evaluate_wants_a_finished_run_with_weights() -> None:
    none = evaluation_readiness(RunReading(None))
    assert (none.usable, none.message, none.why_empty) == (
        False,
        "Select a run to evaluate it.",
        NO_RUN,
    )
    running = evaluation_readiness(RunReading(7, st.RUNNING, has_weights=True))
    assert not running.usable and running.why_empty == STILL_ACTIVE
    assert running.empty_text()[0] == f"Run 7 is still {st.RUNNING}"
    failed = evaluation_readiness(RunReading(7, st.FAILED))
    assert not failed.usable and failed.why_empty == NO_WEIGHTS
    assert failed.message == "Run 7 has no trained weights to evaluate."
    fresh = evaluation_readiness(RunReading(7, st.COMPLETED, has_weights=True))
    assert fresh.usable and fresh.why_empty == NOT_EVALUATED
    assert fresh.message == "Run 7 has not been evaluated yet."
    done = evaluation_readiness(
        RunReading(7, st.COMPLETED, True, {"evaluation": {"accuracy": 1.0}})
    )
    assert done.usable and done.message == "Run 7's stored evaluation."


def test_predict_needs_only_weights_even_while_the_run_trains() -> None:
    running = predict_readiness(RunReading(3, st.RUNNING, has_weights=True))
    assert running.usable and running.why_empty == READY
    assert running.empty_text()[1].startswith("Drop image files or folders")
    assert "what run 3 makes of them" in running.empty_text()[1]
    waiting = predict_readiness(RunReading(3, st.RUNNING))
    assert not waiting.usable
    assert waiting.message == (
        f"Run 3 is still {st.RUNNING}: it can predict once it has saved its weights."
    )
    stopped = predict_readiness(RunReading(3, st.FAILED))
    assert stopped.message == "Run 3 has no trained weights to predict with."
