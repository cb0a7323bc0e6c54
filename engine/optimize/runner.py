"""``optimize``: speed, rate, search and final run, each bounded by its share of the budget.

The phases live in probe_phases (epoch probe, batch check, speed, rate), search_phase and
final_phase, as functions over the shared ``RunState`` (state.py); this module runs them in
order and stores the answer. ``optimize`` is a plain function that reports ``Progress``
records and checks a stop flag (the Orange3 TaskState shape): the CLI calls it on a
terminal, the window from a worker thread. Every phase's tools get a stop flag that turns
true at the phase's deadline, so a probe or a trial that would run past it ends at its next
step; sizes (range-test steps, trials × epochs, the final run's epochs) are chosen from the
measured epoch time so that they normally end before it. Stopping at any moment returns the
best run so far and every decision made until then.

Everything is recorded under one experiment of kind "optimize": the search trials and the
final run as ordinary runs, and the result (``OptimizeResult.to_json``) as the experiment's
spec, which ``stored_result`` reads back (and a run's report, engine/report/optimize_info.py).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from cnn_lab.engine.optimize import final_phase, probe_phases, search_phase
from cnn_lab.engine.optimize.decisions import (
    OPTIMIZE_KIND,
    OptimizeResult,
    PhaseTiming,
    Progress,
)
from cnn_lab.engine.optimize.plan import (
    BUDGET_TOLERANCE,
    DEFAULT_SHARES,
    Goal,
    Ledger,
    Plan,
)
from cnn_lab.engine.optimize.state import RunState
from cnn_lab.engine.optimize.tuners import Stop, Tuners, real_tuners
from cnn_lab.engine.specs import RunSpec
from cnn_lab.engine.specs.network_name import network_name
from cnn_lab.engine.store import RunRepository, open_store


def optimize(
    spec: RunSpec,
    budget_s: float,
    goal: Goal = "accuracy",
    *,
    db_path: str | Path,
    target: float | None = None,
    widths: tuple[float, ...] = (),
    networks: tuple[str, ...] = (),
    clock: Callable[[], float] = time.monotonic,
    should_stop: Stop = lambda: False,
    progress: Callable[[Progress], None] = lambda _: None,
    tuners: Tuners | None = None,
    shares: Mapping[str, float] = DEFAULT_SHARES,
    final_epoch_cap: int | None = None,
) -> OptimizeResult:
    """Find a fast, accurate recipe for ``spec`` within ``budget_s`` seconds and train it.

    ``goal`` "accuracy" keeps the best validation accuracy the budget reaches; "target"
    the fastest configuration reaching ``target``, whose final run stops once it does.
    ``widths`` and ``networks`` are candidates the search may choose among;
    ``final_epoch_cap`` bounds the final run (time beyond it goes to the search; None: 60
    epochs, 120 for a recipe that augments, see ``Plan.epoch_cap``). Raises
    UserError, before anything is recorded, for a budget too small for one epoch, a network
    that fits at no batch size, or a dataset too small to split.
    """
    plan = Plan(
        budget_s, goal, target, tuple(widths), tuple(networks), dict(shares), final_epoch_cap
    )
    run = _Run(
        plan,
        spec,
        str(db_path),
        Ledger(plan, clock),
        should_stop,
        progress,
        tuners or real_tuners(),
    )
    return run.go()


def stored_result(db_path: str | Path, experiment_id: int) -> OptimizeResult | None:
    """The result stored on an optimize experiment; None while it still runs (or if none)."""
    with open_store(db_path) as store:
        experiment = store.experiment(experiment_id, OPTIMIZE_KIND)
    return None if experiment is None else OptimizeResult.from_experiment(experiment["spec_json"])


@dataclass
class _Run(RunState):
    """One optimization: the phases in order, then the answer stored on the experiment."""

    def go(self) -> OptimizeResult:
        began = self.ledger.clock()
        allot = self.ledger.allot("speed")
        measured = probe_phases.measure(self)  # refusals raise here, before anything is recorded
        with open_store(self.db_path) as store:
            self.experiment_id = store.find_or_create_experiment(
                self.experiment_name(), kind=OPTIMIZE_KIND, spec_json=self.request_json()
            )
        probe_phases.speed(self, measured, allot, began)
        for phase in (probe_phases.rate, search_phase.search, final_phase.final):
            if self.user_stop():
                name = phase.__name__
                self.timings.append(PhaseTiming(name, 0.0, 0.0, "stopped before it began"))
                continue
            phase(self, measured)
        return self.finish()

    def experiment_name(self) -> str:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        return (
            f"optimize {self.spec.dataset.source} {network_name(self.spec.architecture)} "
            f"{stamp} {uuid.uuid4().hex[:6]}"
        )

    def request_json(self, result: OptimizeResult | None = None) -> str:
        request = {
            "spec": self.spec.model_dump(mode="json"),
            "budget_s": self.plan.budget_s,
            "goal": self.plan.goal,
            "target": self.plan.target,
        }
        return json.dumps({"request": request, "result": result and result.to_dict()})

    def finish(self) -> OptimizeResult:
        elapsed = self.ledger.elapsed()
        budget = self.plan.budget_s
        held = elapsed <= budget * (1.0 + BUDGET_TOLERANCE)
        if held:
            note = f"used {elapsed:.0f} s of {budget:.0f} s"
        else:
            worst = max(self.timings, key=lambda t: t.spent_s - t.allotted_s)
            note = (
                f"took {elapsed:.0f} s of {budget:.0f} s: the {worst.phase} phase took "
                f"{worst.spent_s:.0f} s of its {worst.allotted_s:.0f} s; one step or one run's "
                "setup on this machine is longer than the plan measured"
            )
        best = max(self.scores, key=self.scores.__getitem__, default=None)
        chosen = self.specs.get(self.final_run_id or -1) or (self.specs.get(best) if best else None)
        result = OptimizeResult(
            experiment_id=self.experiment_id,
            goal=self.plan.goal,
            budget_s=budget,
            elapsed_s=round(elapsed, 3),
            chosen=chosen or self.spec,
            final_run_id=self.final_run_id,
            best_run_id=best,
            best_val_accuracy=None if best is None else self.scores[best],
            decisions=tuple(self.notes.decisions),
            rejected=tuple(self.notes.rejected),
            phases=tuple(self.timings),
            run_ids=tuple(self.run_ids),
            budget_held=held,
            budget_note=note,
            stopped=self.user_stop(),
            target=self.plan.target,
        )
        with open_store(self.db_path) as store:
            store.find_or_create_experiment(
                self._name_of(store), kind=OPTIMIZE_KIND, spec_json=self.request_json(result)
            )
        return result

    def _name_of(self, store: RunRepository) -> str:
        experiment = store.experiment(self.experiment_id, OPTIMIZE_KIND)
        assert experiment is not None  # go() made it before any phase ran
        return str(experiment["name"])


__all__ = ["OPTIMIZE_KIND", "optimize", "stored_result"]
