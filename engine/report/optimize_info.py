"""The report's "Optimize" section: why a run trained by ``cnn-lab optimize`` has its recipe.

An optimize experiment stores its result (every decision with the measurement behind it,
what was rejected, each phase's time) as the experiment's spec; a report of any of its runs,
the final run or a search trial, reads it back from there, so the evidence travels with the
model it explains.
"""

from __future__ import annotations

from cnn_lab.engine.optimize.decisions import OPTIMIZE_KIND, OptimizeResult
from cnn_lab.engine.report.data import Fact, OptimizeInfo, Table
from cnn_lab.engine.store import RunRecord, RunRepository
from cnn_lab.engine.util.durations import format_duration


def optimize_info(store: RunRepository, record: RunRecord) -> OptimizeInfo | None:
    """The section for ``record``, or None when no optimize experiment holds the run."""
    if record.experiment_id is None:
        return None
    experiment = store.experiment(record.experiment_id, OPTIMIZE_KIND)
    if experiment is None:
        return None
    result = OptimizeResult.from_experiment(experiment["spec_json"])
    if result is None:
        return OptimizeInfo(
            facts=(Fact("Experiment", str(experiment["name"])),),
            decisions=Table(("Phase", "Choice", "Evidence")),
            rejected=Table(("Phase", "Tried", "Why not")),
            phases=Table(("Phase", "Allotted", "Spent", "Outcome")),
            note="The optimization had not finished when this report was made (or it was "
            "killed): its decisions are stored when it ends.",
        )
    return from_result(result, record.id, str(experiment["name"]))


def _s(seconds: float) -> str:
    return format_duration(seconds, "precise")


def from_result(result: OptimizeResult, run_id: int, name: str) -> OptimizeInfo:
    """The section from a finished optimization's result, for its run ``run_id``."""
    role = (
        "the final run"
        if run_id == result.final_run_id
        else "a search trial"
        if run_id in result.run_ids
        else "a run of the experiment"
    )
    accuracy = "none" if result.best_val_accuracy is None else f"{result.best_val_accuracy:.1%}"
    goal = result.goal if result.target is None else f"{result.goal} {result.target:.0%}"
    facts = (
        Fact("Experiment", name),
        Fact("This run", role),
        Fact("Goal", goal),
        Fact("Budget", f"{_s(result.budget_s)}, used {_s(result.elapsed_s)}"),
        Fact("Budget held", ("yes: " if result.budget_held else "no: ") + result.budget_note),
        Fact(
            "Best val accuracy",
            accuracy + (f" (run {result.best_run_id})" if result.best_run_id is not None else ""),
        ),
    )
    if result.stopped:
        facts += (Fact("Stopped", "yes, by the person, before the plan ended"),)
    return OptimizeInfo(
        facts=facts,
        decisions=Table(
            ("Phase", "Choice", "Evidence"),
            tuple((d.phase, d.choice, d.evidence) for d in result.decisions),
        ),
        rejected=Table(
            ("Phase", "Tried", "Why not"),
            tuple((r.phase, r.option, r.reason) for r in result.rejected),
        ),
        phases=Table(
            ("Phase", "Allotted", "Spent", "Outcome"),
            tuple((p.phase, _s(p.allotted_s), _s(p.spent_s), p.outcome) for p in result.phases),
            numeric=(False, True, True, False),
        ),
    )


__all__ = ["optimize_info"]
