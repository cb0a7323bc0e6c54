"""What the Runs panel offers for the runs selected, and the texts it shows about them.

Which buttons and menu entries are enabled (Resume asks the engine's one resume rule, the same
``cnn-lab resume`` asks), the detail line under the table, and the question asked before
runs are deleted with their files.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cnn_lab.engine.jobs.resume import resume_refusal
from cnn_lab.engine.store import RunRecord
from cnn_lab.engine.store.run_files import RunFiles


@dataclass(frozen=True)
class RunsActions:
    """Which of the panel's actions the selection allows."""

    compare: bool = False  # two or more runs
    resume: bool = False  # one run the resume rule allows
    export: bool = False  # one run with weights, while no export runs
    report: bool = False  # one run, while no report is being written
    edit: bool = False  # rename, tags, note: one run
    archive: bool = False  # some selected run is not archived
    unarchive: bool = False  # some selected run is archived
    delete: bool = False  # any run


def runs_actions(
    selected: Sequence[RunRecord],
    *,
    has_weights: Callable[[int], bool],
    exporting: bool = False,
    reporting: bool = False,
) -> RunsActions:
    """The actions ``selected`` allows; ``has_weights`` is asked only about a single run (it
    reads the store)."""
    single = selected[0] if len(selected) == 1 else None
    return RunsActions(
        compare=len(selected) >= 2,
        resume=single is not None and resume_refusal(single.id, single.status) is None,
        export=single is not None and not exporting and has_weights(single.id),
        report=single is not None and not reporting,
        edit=single is not None,
        archive=any(not r.archived for r in selected),
        unarchive=any(r.archived for r in selected),
        delete=bool(selected),
    )


def run_detail(record: RunRecord, selected: int = 1) -> str:
    """The lines under the table about the current run: its status and why, its tags and note,
    and how many runs are selected when there are several."""
    text = f"Run {record.id}: {record.status}"
    if record.reason:
        text += f" — {record.reason}"
    if record.hint:
        text += f" {record.hint}"
    if record.tags:
        text += f"\nTags: {', '.join(record.tags)}"
    if record.note:
        text += f"\nNote: {record.note}"
    if selected > 1:
        text += f"\n{selected} runs selected: Compare overlays them."
    return text


def delete_question(run_ids: Sequence[int], files: Sequence[RunFiles]) -> tuple[str, str]:
    """The title and text of the question before deleting ``run_ids`` (whose files are
    ``files``): what goes, how much, and which exported files stay."""
    size = sum(f.bytes for f in files) / 1e6
    kept = sum(len(f.kept) for f in files)
    what = f"run {run_ids[0]}" if len(run_ids) == 1 else f"{len(run_ids)} runs"
    text = (
        f"Delete {what} with {size:,.1f} MB of checkpoints and weights? "
        "Its metrics and files are removed for good."
    )
    if kept:
        text += f" {kept} exported file(s) outside the runs' folders are kept."
    return f"Delete {what}", text
