"""What the Runs panel's selection allows and says (app/models/runs_selection.py), without Qt."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cnn_lab.app.models.runs_selection import delete_question, run_detail, runs_actions
from cnn_lab.engine.store import RunRecord
from cnn_lab.engine.store import status as st
from cnn_lab.engine.store.run_files import RunFiles


def record(run_id: int, status: str = st.COMPLETED, **fields: Any) -> RunRecord:
    """A run as the store lists it; only what the rules read matters."""
    base: dict[str, Any] = dict.fromkeys(RunRecord.__dataclass_fields__)
    base.update(id=run_id, name=f"run {run_id}", status=status, reason="", hint="")
    base.update(summary={}, note="", archived=False, tags=(), created_at=0.0)
    return RunRecord(**{**base, **fields})


def test_nothing_selected_allows_nothing() -> None:
    allowed = runs_actions([], has_weights=lambda _id: True)
    assert not any(vars(allowed).values())


def test_one_stopped_run_may_resume_and_a_completed_one_may_not() -> None:
    stopped = runs_actions([record(1, st.STOPPED)], has_weights=lambda _id: False)
    assert stopped.resume and stopped.edit and stopped.report and not stopped.export
    completed = runs_actions([record(2, st.COMPLETED)], has_weights=lambda _id: True)
    assert not completed.resume and completed.export
    running = runs_actions([record(3, st.RUNNING)], has_weights=lambda _id: True)
    assert not running.resume


def test_two_runs_compare_but_are_not_exported_or_edited() -> None:
    asked: list[int] = []
    allowed = runs_actions(
        [record(1), record(2, archived=True)], has_weights=lambda i: asked.append(i) or True
    )
    assert allowed.compare and allowed.archive and allowed.unarchive and allowed.delete
    assert not (allowed.resume or allowed.export or allowed.edit or allowed.report)
    assert asked == []  # the store is asked about weights for a single run only


def test_a_task_under_way_holds_its_button() -> None:
    busy = runs_actions([record(1)], has_weights=lambda _id: True, exporting=True, reporting=True)
    assert not busy.export and not busy.report and busy.delete


def test_the_detail_line_tells_the_runs_story() -> None:
    text = run_detail(
        record(4, st.FAILED, reason="Out of memory.", hint="Try batch 32.", tags=("a", "b"),
               note="diverged"),
        selected=3,
    )  # fmt: skip
    assert text.splitlines() == [
        "Run 4: failed — Out of memory. Try batch 32.",
        "Tags: a, b",
        "Note: diverged",
        "3 runs selected: Compare overlays them.",
    ]
    assert run_detail(record(5)) == "Run 5: completed"


def test_the_delete_question_says_how_much_goes_and_what_stays() -> None:
    files = [
        RunFiles(run_id=3, folder=Path("runs/3"), bytes=1_500_000, kept=()),
        RunFiles(run_id=7, folder=Path("runs/7"), bytes=500_000, kept=(Path("x.onnx"),)),
    ]
    title, text = delete_question([3, 7], files)
    assert title == "Delete 2 runs"
    assert text.startswith("Delete 2 runs with 2.0 MB of checkpoints and weights?")
    assert text.endswith("1 exported file(s) outside the runs' folders are kept.")
    title, text = delete_question([3], files[:1])
    assert title == "Delete run 3" and "kept" not in text
