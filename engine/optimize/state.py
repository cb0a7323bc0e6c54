"""What one optimization carries from phase to phase: the plan, the recipe so far, the clock.

``RunState`` is the runner's state, shared by the phase modules (probe_phases, search_phase,
final_phase): each phase reads the recipe (``spec``) and the measurements (``Measured``),
updates them, and writes its decisions to ``notes`` and its time to ``timings``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from cnn_lab.engine.optimize.decisions import Notebook, PhaseTiming, Progress
from cnn_lab.engine.optimize.plan import Ledger, Plan
from cnn_lab.engine.optimize.tuners import Stop, Tuners
from cnn_lab.engine.specs import RunSpec


@dataclass
class Measured:
    """The epoch probe's answer, corrected as later phases measure better."""

    epoch_s: float
    setup_s: float
    images_per_s: float
    epochs_seen: int = 0
    """Trial epochs behind ``epoch_s`` (0: it is still the probe's estimate)."""
    setup_from_runs: int = 0
    """Trial runs behind ``setup_s`` (0: still the probe's)."""


@dataclass
class RunState:
    """One optimization in progress: what was asked, the recipe so far, and what was learned."""

    plan: Plan
    spec: RunSpec
    """The recipe so far: each phase replaces it with what it chose."""
    db_path: str
    """The run store's location: a SQLite path or a postgresql:// address (locations.py)."""
    ledger: Ledger
    user_stop: Stop
    report: Callable[[Progress], None]
    tuners: Tuners
    notes: Notebook = field(default_factory=Notebook)
    timings: list[PhaseTiming] = field(default_factory=list)
    run_ids: list[int] = field(default_factory=list)
    scores: dict[int, float] = field(default_factory=dict)
    specs: dict[int, RunSpec] = field(default_factory=dict)
    """Each scored run's spec, so the best can be applied."""
    trials: dict[int, int] = field(default_factory=dict)
    """The search's completed trials: run id to trial number (the final run is not one)."""
    experiment_id: int = 0
    final_run_id: int | None = None
    found_lr: float | None = None
    """The range test's suggestion (None: no test, or no clear fall in its curve)."""
    asked: RunSpec = field(init=False)
    """The recipe as the person gave it, before any phase changed it (the search starts
    from it: a recipe that already works is the first point to beat)."""

    def __post_init__(self) -> None:
        self.asked = self.spec

    def stop_at(self, deadline: float) -> Stop:
        """A stop flag for a tool: true once the person stops, at ``deadline`` or at the
        budget's end, whichever comes first."""
        return lambda: self.user_stop() or self.ledger.clock() >= min(deadline, self.ledger.end)

    def stage(self, phase: str) -> Callable[[str, int, int], None]:
        """A tool's (stage, done, total) progress, reported as ``phase``'s."""

        def show(stage: str, done: int, total: int) -> None:
            elapsed = self.ledger.elapsed()
            self.report(Progress(phase, stage, done, total, elapsed, self.plan.budget_s))

        return show

    def timed(self, phase: str, allot: float, began: float, outcome: str) -> None:
        """Record how ``phase`` spent its allotment and how it ended."""
        spent = self.ledger.clock() - began
        self.timings.append(PhaseTiming(phase, round(allot, 3), round(spent, 3), outcome))


__all__ = ["Measured", "RunState"]
