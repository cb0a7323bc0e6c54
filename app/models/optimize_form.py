"""The Optimize panel's rules and texts, without Qt: the request, progress and the result card.

The panel (app/panels/optimize_panel.py) only lays these out. The request is checked by the
engine's own ``Plan`` (the rule the CLI uses) before any process starts, so a budget of
nothing or a target goal without a target is a sentence, not a child that dies. The card
reads a frozen ``OptimizeResult``: every decision with its evidence, what was tried and
rejected, each phase's time against its allotment, and whether the budget held. Apply puts
the chosen RunSpec's dataset, architecture and recipe into the panels; Keep the run keeps
the final run (an ordinary run in the store) and archives the search's trials, so the Runs
panel lists the model that was kept and the trials stay one filter away.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cnn_lab.engine.errors import UserError
from cnn_lab.engine.optimize.plan import DEFAULT_SHARES, PHASES
from cnn_lab.engine.specs import RunSpec

if TYPE_CHECKING:
    from cnn_lab.engine.optimize.decisions import OptimizeResult

PHASE_TITLES = {"speed": "Speed", "rate": "Rate", "search": "Search", "final": "Final run"}
PHASE_STAGES = {
    "speed": "fastest settings, batch that fits",
    "rate": "LR range test",
    "search": "short TPE search with pruning",
    "final": "the best recipe, trained to end in time",
}
GOAL_LABELS = {
    "accuracy": "Best accuracy in the budget",
    "target": "Fastest run to a target accuracy",
}
DEFAULT_BUDGET_MIN = 10.0
DEFAULT_TARGET_PERCENT = 90.0


def format_seconds(seconds: float) -> str:
    """``45 s``, ``3 min 05 s``: a budget is read in minutes, a phase in seconds."""
    whole = round(max(0.0, float(seconds)))
    if whole < 60:
        return f"{whole} s"
    minutes, rest = divmod(whole, 60)
    return f"{minutes} min {rest:02d} s"


def parse_widths(text: str) -> tuple[float, ...]:
    """Candidate widths from ``"0.5, 1"`` (commas or spaces); empty keeps the network's own."""
    widths = []
    for part in text.replace(",", " ").split():
        try:
            value = float(part)
        except ValueError:
            raise UserError(
                f"{part!r} is not a width.", hint="Give numbers such as 0.5, 1 or leave it empty."
            ) from None
        if not 0.0 < value <= 8.0:
            raise UserError(f"A width must be above 0 and at most 8, not {value:g}.")
        widths.append(value)
    return tuple(dict.fromkeys(widths))


@dataclass(frozen=True)
class OptimizeRequest:
    """What the person asked for, checked; crosses to the child as plain values."""

    spec: RunSpec
    budget_s: float
    goal: str
    target: float | None
    widths: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "spec_json": self.spec.to_json(),
            "budget_s": self.budget_s,
            "goal": self.goal,
            "target": self.target,
            "widths": list(self.widths),
            "networks": [],
        }


def make_request(
    spec: RunSpec, budget_min: float, goal: str, target_percent: float, widths_text: str
) -> OptimizeRequest:
    """The request, or the engine's refusal sentence (a UserError) before anything starts."""
    from cnn_lab.engine.optimize.plan import Plan  # at Start, not at the window's start

    widths = parse_widths(widths_text)
    target = target_percent / 100.0 if goal == "target" else None
    plan = Plan(budget_min * 60.0, goal, target, widths)  # type: ignore[arg-type]
    return OptimizeRequest(spec, plan.budget_s, plan.goal, plan.target, plan.widths)


def share_text(phase: str, budget_s: float) -> str:
    """A phase's planned share: ``Search · 45% of the budget (4 min 30 s)``.

    The engine re-divides what a phase leaves over among those after it, so this is the
    plan at the start; the card shows what each was really allotted.
    """
    share = DEFAULT_SHARES[phase]
    return f"{PHASE_TITLES[phase]} · {share:.0%} of the budget ({format_seconds(share * budget_s)})"


def progress_text(stage: str, done: int, total: int, elapsed_s: float, budget_s: float) -> str:
    """One line under a phase: the stage, how far, and how much of the budget is left."""
    steps = f" {done}/{total}" if total > 0 else ""
    return (
        f"{stage}{steps} · {format_seconds(elapsed_s)} used, "
        f"{format_seconds(budget_s - elapsed_s)} left of {format_seconds(budget_s)}"
    )


def percent(done: int, total: int) -> int:
    return 0 if total <= 0 else max(0, min(100, round(100 * done / total)))


def headline(result: OptimizeResult) -> str:
    """The card's first line: what came out, and whether it was stopped."""
    accuracy = (
        "no run finished"
        if result.best_val_accuracy is None
        else f"best validation accuracy {result.best_val_accuracy:.1%}"
    )
    goal = GOAL_LABELS.get(result.goal, result.goal)
    if result.target is not None:
        goal += f" ({result.target:.0%})"
    stopped = " Stopped early: this is the best so far." if result.stopped else ""
    return (
        f"{goal}: {accuracy} in {format_seconds(result.elapsed_s)} of "
        f"{format_seconds(result.budget_s)}.{stopped}"
    )


def phase_rows(result: OptimizeResult) -> list[tuple[str, str, str]]:
    """(phase, ``12 s of 30 s``, outcome) for each phase that ran or was skipped."""
    return [
        (
            PHASE_TITLES.get(p.phase, p.phase),
            f"{format_seconds(p.spent_s)} of {format_seconds(p.allotted_s)}",
            p.outcome,
        )
        for p in result.phases
    ]


def budget_text(result: OptimizeResult) -> str:
    return ("Budget held: " if result.budget_held else "Budget overrun: ") + result.budget_note


def card_html(result: OptimizeResult) -> str:
    """The result card as simple HTML (a QTextBrowser shows it; a report could too)."""
    e = html.escape
    parts = [f"<p><b>{e(headline(result))}</b></p>", "<h4>Decisions</h4><ul>"]
    parts += [
        f"<li><b>{e(d.choice)}</b> <i>({e(PHASE_TITLES.get(d.phase, d.phase))})</i>: "
        f"{e(d.evidence)}</li>"
        for d in result.decisions
    ] or ["<li>No decision was made before it ended.</li>"]
    parts.append("</ul><h4>Tried and rejected</h4><ul>")
    parts += [
        f"<li>{e(r.option)} <i>({e(PHASE_TITLES.get(r.phase, r.phase))})</i>: {e(r.reason)}</li>"
        for r in result.rejected
    ] or ["<li>Nothing was rejected.</li>"]
    parts.append("</ul><h4>Time per phase</h4><table cellspacing='0' cellpadding='2'>")
    parts += [
        f"<tr><td>{e(name)}</td><td>&nbsp;{e(spent)}&nbsp;</td><td>{e(outcome)}</td></tr>"
        for name, spent, outcome in phase_rows(result)
    ]
    colour = "#2e7d32" if result.budget_held else "#b35900"
    parts.append(f"</table><p style='color:{colour}'>{e(budget_text(result))}</p>")
    return "".join(parts)


def _changes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    return [
        f"{key} {before.get(key)!s} → {value!s}"
        for key, value in after.items()
        if before.get(key) != value
    ]


def applied_text(current: RunSpec, chosen: RunSpec) -> str:
    """The sentence that confirms Apply: what changed in which panel."""
    said = []
    for title, part in (
        ("Data", "dataset"),
        ("Architecture", "architecture"),
        ("Hyperparameters", "train"),
    ):
        changes = _changes(
            getattr(current, part).model_dump(mode="json"),
            getattr(chosen, part).model_dump(mode="json"),
        )
        if changes:
            said.append(f"{title}: {', '.join(changes)}")
    if not said:
        return "The panels already hold the chosen recipe."
    return "Applied the chosen recipe. " + "; ".join(said) + "."


def kept_runs(result: OptimizeResult) -> tuple[int | None, list[int]]:
    """The run to keep (the final run, else the best trial) and the trials to archive."""
    keep = result.final_run_id if result.final_run_id is not None else result.best_run_id
    return keep, [r for r in result.run_ids if r != keep]


def keep_text(keep: int | None, archived: int) -> str:
    if keep is None:
        return "No run finished, so there is no model to keep."
    trials = f"; {archived} search trial{'s' if archived != 1 else ''} archived" if archived else ""
    return f"Kept run {keep}: it is selected in Runs{trials} (Runs shows archived runs on request)."


__all__ = [
    "GOAL_LABELS",
    "PHASES",
    "PHASE_STAGES",
    "PHASE_TITLES",
    "OptimizeRequest",
    "applied_text",
    "budget_text",
    "card_html",
    "format_seconds",
    "headline",
    "keep_text",
    "kept_runs",
    "make_request",
    "parse_widths",
    "percent",
    "phase_rows",
    "progress_text",
    "share_text",
]
