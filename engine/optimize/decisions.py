"""What ``optimize`` decided and why: frozen records a terminal, the window and a report read.

Every choice is a ``Decision`` whose ``evidence`` is one sentence carrying the measurement
behind it ("bf16 was 1.29x as fast as fp32 here"), because a recipe nobody can check is a
recipe nobody trusts. What was measured and not kept is a ``Rejected`` beside it, so the
card answers "did it try X?" too. ``OptimizeResult`` gathers them with the chosen RunSpec
(the recipe the window's Apply puts into the panels), the runs, the time each phase took and
whether the budget held. All records are frozen and JSON round-trippable: they cross from
the worker thread to the GUI thread, and they are stored on the experiment
(``OptimizeResult.to_json``) so a report can read them back later.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

from cnn_lab.engine.specs import RunSpec

OPTIMIZE_KIND = "optimize"
"""The kind of the experiment optimize files its runs and its result under."""


@dataclass(frozen=True)
class Decision:
    """One choice a phase made, with the measured sentence behind it."""

    phase: str
    choice: str
    """What was set, as a person reads it: ``precision=bf16``, ``lr=3.0e-03``."""
    evidence: str


@dataclass(frozen=True)
class Rejected:
    """Something measured and not kept, and why."""

    phase: str
    option: str
    reason: str


@dataclass(frozen=True)
class PhaseTiming:
    """A phase's allotment of the budget, what it spent, and how it ended."""

    phase: str
    allotted_s: float
    spent_s: float
    outcome: str
    """``done``, ``skipped: <why>``, ``stopped`` or ``out of time``."""


@dataclass(frozen=True)
class Progress:
    """A progress report for the window and the terminal: which phase, which stage, how far."""

    phase: str
    stage: str
    done: int
    total: int
    elapsed_s: float
    budget_s: float


@dataclass(frozen=True)
class OptimizeResult:
    """Everything ``optimize`` learned: the recipe, its run, and the reasons."""

    experiment_id: int
    goal: str
    budget_s: float
    elapsed_s: float
    chosen: RunSpec
    """The recipe to Apply: the final run's spec (or the best trial's when none ran)."""
    final_run_id: int | None
    best_run_id: int | None
    """The run with the best validation accuracy of all those optimize trained."""
    best_val_accuracy: float | None
    decisions: tuple[Decision, ...]
    rejected: tuple[Rejected, ...]
    phases: tuple[PhaseTiming, ...]
    run_ids: tuple[int, ...]
    """Every run optimize trained (search trials and the final run), oldest first."""
    budget_held: bool
    """Whether it ended within 10% of the budget."""
    budget_note: str
    """Why the budget did not hold, or how much of it was used."""
    stopped: bool = False
    target: float | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["chosen"] = self.chosen.model_dump(mode="json")
        return _finite(data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), allow_nan=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OptimizeResult:
        """Read back what ``to_dict`` wrote (a report or the window reading an experiment)."""
        fields = dict(data)
        fields["chosen"] = RunSpec.from_dict(fields["chosen"])
        fields["decisions"] = tuple(Decision(**d) for d in fields["decisions"])
        fields["rejected"] = tuple(Rejected(**r) for r in fields["rejected"])
        fields["phases"] = tuple(PhaseTiming(**p) for p in fields["phases"])
        fields["run_ids"] = tuple(fields["run_ids"])
        return cls(**fields)

    @classmethod
    def from_experiment(cls, spec_json: str | None) -> OptimizeResult | None:
        """The result an optimize experiment stores beside its request; None while it runs."""
        saved = json.loads(spec_json).get("result") if spec_json else None
        return None if saved is None else cls.from_dict(saved)

    def summary_lines(self) -> list[str]:
        """The decision card for a terminal."""
        accuracy = "none" if self.best_val_accuracy is None else f"{self.best_val_accuracy:.1%}"
        goal = self.goal if self.target is None else f"{self.goal} {self.target:.0%}"
        lines = [
            f"Optimize ({goal}, budget {self.budget_s:.0f} s, used {self.elapsed_s:.0f} s): "
            f"best val accuracy {accuracy}"
            + (f" (run {self.best_run_id})" if self.best_run_id is not None else "")
            + (", stopped early" if self.stopped else ""),
            "Decisions:",
        ]
        lines += [f"  [{d.phase}] {d.choice}: {d.evidence}" for d in self.decisions]
        if self.rejected:
            lines.append("Tried and rejected:")
            lines += [f"  [{r.phase}] {r.option}: {r.reason}" for r in self.rejected]
        lines.append("Phases:")
        lines += [
            f"  {p.phase:<7} {p.spent_s:6.1f} s of {p.allotted_s:6.1f} s  {p.outcome}"
            for p in self.phases
        ]
        lines.append(
            ("Budget held: " if self.budget_held else "Budget overrun: ") + self.budget_note
        )
        return lines


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinity: such a measurement is stored as None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


@dataclass
class Notebook:
    """The runner's scratch pad: decisions and rejections in the order they were made."""

    decisions: list[Decision] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)

    def decide(self, phase: str, choice: str, evidence: str) -> None:
        self.decisions.append(Decision(phase, choice, evidence))

    def reject(self, phase: str, option: str, reason: str) -> None:
        self.rejected.append(Rejected(phase, option, reason))


__all__ = [
    "OPTIMIZE_KIND",
    "Decision",
    "Notebook",
    "OptimizeResult",
    "PhaseTiming",
    "Progress",
    "Rejected",
]
