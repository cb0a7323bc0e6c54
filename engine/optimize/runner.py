"""``optimize``: speed, rate, search and final run, each bounded by its share of the budget.

A plain function that reports ``Progress`` records and checks a stop flag (the Orange3
TaskState shape): the CLI calls it on a terminal, the window from a worker thread. Every
phase's tools get a stop flag that turns true at the phase's deadline, so a probe or a
trial that would run past it ends at its next step; sizes (range-test steps, trials ×
epochs, the final run's epochs) are chosen from the measured epoch time so that they
normally end before it. Stopping at any moment returns the best run so far and every
decision made until then.

Everything is recorded under one experiment of kind "optimize": the search trials and the
final run as ordinary runs, and the result (``OptimizeResult.to_json``) as the experiment's
spec, which ``stored_result`` reads back.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cnn_lab.engine.errors import Cancelled, UserError
from cnn_lab.engine.optimize import search_phase
from cnn_lab.engine.optimize.decisions import (
    Notebook,
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
    check_budget,
    check_dataset,
    check_fits,
    final_epochs,
    rate_steps,
    size_search,
)
from cnn_lab.engine.optimize.tuners import Stop, Tuners, real_tuners
from cnn_lab.engine.specs import RunSpec
from cnn_lab.engine.specs.network_name import network_name
from cnn_lab.engine.store import RunStore

OPTIMIZE_KIND = "optimize"
BATCH_CHECK_LIMIT = 256
"""The batch check tries sizes up to this (or the spec's batch, if larger): enough to say
whether the network fits at all, bounded so the check costs a few steps."""
COMPILE_PAYS_S = 600.0
"""torch.compile's first step takes tens of seconds; below this final allotment it is not
probed, because it could not pay that back."""


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
) -> OptimizeResult:
    """Find a fast, accurate recipe for ``spec`` within ``budget_s`` seconds and train it.

    ``goal`` "accuracy" keeps the best validation accuracy the budget reaches; "target"
    the fastest configuration reaching ``target``, whose final run stops once it does.
    ``widths`` and ``networks`` are candidates the search may choose among. Raises
    UserError, before anything is recorded, for a budget too small for one epoch, a network
    that fits at no batch size, or a dataset too small to split.
    """
    plan = Plan(budget_s, goal, target, tuple(widths), tuple(networks), dict(shares))
    run = _Run(
        plan,
        spec,
        Path(db_path),
        Ledger(plan, clock),
        should_stop,
        progress,
        tuners or real_tuners(),
    )
    return run.go()


def stored_result(db_path: str | Path, experiment_id: int) -> OptimizeResult | None:
    """The result stored on an optimize experiment; None while it still runs (or if none)."""
    with RunStore.open(db_path) as store:
        rows = [e for e in store.experiments(OPTIMIZE_KIND) if e["id"] == experiment_id]
    if not rows or not rows[0]["spec_json"]:
        return None
    saved = json.loads(rows[0]["spec_json"]).get("result")
    return None if saved is None else OptimizeResult.from_dict(saved)


@dataclass
class _Measured:
    """The epoch probe's answer, corrected as later phases measure better."""

    epoch_s: float
    setup_s: float
    images_per_s: float


@dataclass
class _Run:
    plan: Plan
    spec: RunSpec
    db_path: Path
    ledger: Ledger
    user_stop: Stop
    report: Callable[[Progress], None]
    tuners: Tuners
    notes: Notebook = field(default_factory=Notebook)
    timings: list[PhaseTiming] = field(default_factory=list)
    run_ids: list[int] = field(default_factory=list)
    scores: dict[int, float] = field(default_factory=dict)
    specs: dict[int, RunSpec] = field(default_factory=dict)
    experiment_id: int = 0
    final_run_id: int | None = None

    # ------------------------------------------------------------------ helpers

    def stop_at(self, deadline: float) -> Stop:
        return lambda: self.user_stop() or self.ledger.clock() >= min(deadline, self.ledger.end)

    def stage(self, phase: str) -> Callable[[str, int, int], None]:
        def show(stage: str, done: int, total: int) -> None:
            elapsed = self.ledger.elapsed()
            self.report(Progress(phase, stage, done, total, elapsed, self.plan.budget_s))

        return show

    def timed(self, phase: str, allot: float, began: float, outcome: str) -> None:
        spent = self.ledger.clock() - began
        self.timings.append(PhaseTiming(phase, round(allot, 3), round(spent, 3), outcome))

    # ------------------------------------------------------------------ the plan

    def go(self) -> OptimizeResult:
        began = self.ledger.clock()
        allot = self.ledger.allot("speed")
        measured = self.measure()  # refusals raise here, before anything is recorded
        with RunStore.open(self.db_path) as store:
            self.experiment_id = store.find_or_create_experiment(
                self.experiment_name(), kind=OPTIMIZE_KIND, spec_json=self.request_json()
            )
        self.speed(measured, allot, began)
        for phase in (self.rate, self.search, self.final):
            if self.user_stop():
                name = phase.__name__
                self.timings.append(PhaseTiming(name, 0.0, 0.0, "stopped before it began"))
                continue
            phase(measured)
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

    def measure(self) -> _Measured:
        """The epoch probe and the batch check, and the refusals they allow."""
        try:
            return self._measure()
        except Cancelled:
            if self.user_stop():
                raise UserError("Stopped while measuring; nothing was recorded.") from None
            raise UserError(
                f"A budget of {self.plan.budget_s:.0f} s is too small: it ended while the "
                "data was read and one epoch measured.",
                hint="Give a larger budget, or fewer or smaller images.",
            ) from None

    def _measure(self) -> _Measured:
        stop = self.stop_at(self.ledger.end)
        epoch = self.tuners.epoch(self.spec, stop, self.stage("speed"))
        check_dataset(epoch.train_images, epoch.val_images)
        if epoch.images_per_s <= 0:
            raise UserError(
                f"A budget of {self.plan.budget_s:.0f} s is too small: not one training step "
                "finished within it.",
                hint="Give a larger budget, or fewer or smaller images.",
            )
        limit = max(self.spec.train.batch_size, min(BATCH_CHECK_LIMIT, epoch.train_images))
        fits = self.tuners.batch(self.spec, limit, stop, self.stage("speed"))
        check_fits(fits.max_batch, fits.message)
        check_budget(self.plan.budget_s, self.ledger.elapsed(), epoch.setup_s, epoch.epoch_s)
        self.notes.decide(
            "speed",
            f"batch_size={self.spec.train.batch_size}",
            f"batch {self.spec.train.batch_size} fits; the largest that fits is "
            f"{fits.max_batch} ({fits.message})",
        )
        return _Measured(epoch.epoch_s, epoch.setup_s, epoch.images_per_s)

    # ------------------------------------------------------------------ phases

    def speed(self, measured: _Measured, allot: float, began: float) -> None:
        deadline = began + allot
        left = deadline - self.ledger.clock()
        if left <= measured.setup_s or self.user_stop():
            self.timed("speed", allot, began, "skipped: the measurements used its share")
            return
        options = None
        if self.plan.budget_s * DEFAULT_SHARES["final"] < COMPILE_PAYS_S:
            from cnn_lab.engine.tune.speed_options import select_options

            options = [o.name for o in select_options(None) if o.name != "compile"]
            self.notes.reject(
                "speed",
                "compile=True",
                f"not probed: compiling takes tens of seconds, which a "
                f"{self.plan.budget_s / 60:.0f}-minute budget cannot pay back",
            )
        min_seconds = min(0.5, max(0.05, left / 40))
        advice = self.tuners.speed(
            self.spec, options, min_seconds, self.stop_at(deadline), self.stage("speed")
        )
        for finding in advice.findings:
            rate = f"{finding.images_per_s:.0f} images/s" if finding.images_per_s else "no rate"
            ratio = f"{finding.speedup:.2f}x as fast as" if finding.speedup else "not comparable to"
            sentence = (
                f"{finding.option}={finding.value} was {ratio} your settings "
                f"on {advice.device} ({rate})"
            )
            if finding.accepted:
                self.notes.decide("speed", f"{finding.option}={finding.value}", sentence)
            else:
                self.notes.reject("speed", f"{finding.option}={finding.value}", sentence)
        if advice.changes:
            train = self.spec.train.model_copy(update=dict(advice.changes))
            self.spec = self.spec.model_copy(update={"train": train})
            if advice.speedup and advice.speedup > 0:
                share = measured.images_per_s / (measured.images_per_s * advice.speedup)
                measured.epoch_s *= share
                measured.images_per_s *= advice.speedup
        else:
            self.notes.decide("speed", "your settings", advice.message)
        self.timed("speed", allot, began, "stopped" if self.user_stop() else "done")

    def rate(self, measured: _Measured) -> None:
        began, allot = self.ledger.clock(), self.ledger.allot("rate")
        step_s = self.spec.train.batch_size / measured.images_per_s
        steps = rate_steps(allot - measured.setup_s, step_s)
        if steps == 0:
            self.timed("rate", allot, began, "skipped: its share holds too few steps")
            self.notes.reject(
                "rate",
                "range test",
                f"{allot:.1f} s hold too few steps; lr stays {self.spec.train.lr:.1e}",
            )
            return
        found = self.tuners.rate(self.spec, steps, self.stop_at(began + allot), self.stage("rate"))
        if found.suggestion is not None:
            lr = found.suggestion
            self.spec = self.spec.model_copy(
                update={"train": self.spec.train.model_copy(update={"lr": lr})}
            )
            self.notes.decide(
                "rate", f"lr={lr:.1e}", f"the loss fell fastest around {lr:.1e} ({found.message})"
            )
        else:
            self.notes.reject(
                "rate", "range test", f"{found.message}; lr stays {self.spec.train.lr:.1e}"
            )
        self.timed("rate", allot, began, "stopped" if self.user_stop() else "done")

    def search(self, measured: _Measured) -> None:
        began, allot = self.ledger.clock(), self.ledger.allot("search")
        size = size_search(allot, measured.epoch_s, measured.setup_s)
        if not size.affordable:
            why = f"{allot:.0f} s afford {size.trials} trials of {size.trial_s:.1f} s"
            self.timed("search", allot, began, f"skipped: {why}")
            self.notes.reject("search", "search", f"skipped: {why}; the final run gets the time")
            return
        base = self.spec.model_copy(
            update={"train": self.spec.train.model_copy(update={"epochs": size.epochs})}
        )
        params = search_phase.search_params(
            base, base.train.lr, self.plan.widths, self.plan.networks
        )
        search = search_phase.search_spec(
            base, params, f"optimize-{self.experiment_id}", size.trials
        )
        walls: dict[int, float] = {}
        last = [self.ledger.clock()]
        show = self.stage("search")

        def on_trial(outcome: Any) -> None:
            now = self.ledger.clock()
            if outcome.run_id is not None:
                walls[outcome.run_id] = now - last[0]
            last[0] = now
            show(f"trial {outcome.number} {outcome.state}", len(walls), size.trials)

        epoch_times: list[float] = []

        def on_event(event: Any) -> None:
            from cnn_lab.engine.train.events import EpochEnd

            if isinstance(event, EpochEnd) and event.epoch_s > 0:
                epoch_times.append(float(event.epoch_s))

        result = self.tuners.search(
            search,
            self.db_path,
            self.experiment_id,
            self.tuners.train,
            self.stop_at(began + allot),
            on_trial,
            on_event,
        )
        completed = [t for t in result.trials if t.state == "complete" and t.run_id is not None]
        for trial in result.trials:
            if trial.run_id is not None:
                self.run_ids.append(trial.run_id)
        for trial in completed:
            self.scores[trial.run_id] = float(trial.value or 0.0)
            self.specs[trial.run_id] = search.trial_spec(trial.params, trial.number)
        self.pick(search, size, result.trials, walls, measured)
        self.calibrate(size, result.trials, walls, epoch_times, measured)
        self.timed("search", allot, began, "stopped" if self.user_stop() else "done")

    def pick(
        self, search: Any, size: Any, trials: Any, walls: dict[int, float], measured: _Measured
    ) -> None:
        """Choose the trial the final run trains, word why, and recalibrate the epoch time."""
        from cnn_lab.engine.optimize.choice import choose, trial_sentences

        completed = [t for t in trials if t.state == "complete" and t.run_id is not None]
        if not completed:
            self.notes.reject(
                "search", "search", "no trial completed; the final run keeps the measured recipe"
            )
            return
        chosen, why = choose(completed, walls, self.plan.goal, self.plan.target)
        self.spec = search.trial_spec(chosen.params, chosen.number).model_copy(
            update={"name": self.spec.name}
        )
        for choice, evidence in why:
            self.notes.decide("search", choice, evidence)
        for option, reason in trial_sentences(trials, chosen, walls):
            self.notes.reject("search", option, reason)

    def calibrate(
        self,
        size: Any,
        trials: Any,
        walls: dict[int, float],
        epoch_times: list[float],
        measured: _Measured,
    ) -> None:
        """The trials' real epoch time and per-run setup replace the probe's estimates.

        The probe times a few steps; the trials ran whole epochs and whole runs (the store,
        the loaders, the evaluation), so the final run's epochs are sized from them.
        """
        if not epoch_times:
            return
        epoch_times.sort()  # the larger of median and mean: a slow epoch now and then counts
        median = epoch_times[len(epoch_times) // 2]
        measured.epoch_s = max(median, sum(epoch_times) / len(epoch_times))
        runs = [walls[t.run_id] for t in trials if t.run_id in walls and t.epochs]
        overheads = [
            walls[t.run_id] - t.epochs * measured.epoch_s
            for t in trials
            if t.run_id in walls and t.epochs
        ]
        if runs:
            measured.setup_s = max(0.0, sorted(overheads)[len(overheads) // 2])

    def final(self, measured: _Measured) -> None:
        began, allot = self.ledger.clock(), self.ledger.allot("final")
        epochs = final_epochs(allot, measured.epoch_s, measured.setup_s)
        if epochs < 1:
            self.timed("final", allot, began, "skipped: no epoch fits what is left")
            self.notes.reject(
                "final", "final run", f"{allot:.1f} s left hold no epoch; the best trial stands"
            )
            return
        from cnn_lab.engine.jobs.job import create_run
        from cnn_lab.engine.train.events import EpochEnd

        name = self.spec.name or "optimize"
        spec = self.spec.model_copy(
            update={
                "name": f"{name} final",
                "train": self.spec.train.model_copy(update={"epochs": epochs}),
            }
        )
        with RunStore.open(self.db_path) as store:
            run_id = create_run(store, spec, experiment_id=self.experiment_id)
        self.run_ids.append(run_id)
        self.final_run_id = run_id
        reached = [False]
        best = [math.nan]
        show = self.stage("final")

        def on_event(event: Any) -> None:
            if isinstance(event, EpochEnd):
                best[0] = (
                    max(event.val_accuracy, best[0]) if best[0] == best[0] else event.val_accuracy
                )
                show(f"epoch {event.epoch}", event.epoch, epochs)
                target = self.plan.target
                reached[0] = (
                    self.plan.goal == "target"
                    and target is not None
                    and event.val_accuracy >= target
                )

        hard = self.stop_at(self.ledger.end)
        record = self.tuners.train(
            spec,
            self.db_path,
            run_id,
            emit=on_event,
            should_stop=lambda: reached[0] or hard(),
            sample_system=False,
        )
        summary = record.summary if record is not None else {}
        score = summary.get("best_val_accuracy", best[0])
        if score is not None and score == score:
            self.scores[run_id] = float(score)
            self.specs[run_id] = spec
        why = (
            f"{epochs} epochs of {measured.epoch_s:.2f} s fit the {allot:.0f} s left "
            f"(less {measured.setup_s:.1f} s to set the run up and a 10% margin)"
        )
        if reached[0]:
            why += f"; it stopped once validation accuracy reached {self.plan.target:.0%}"
        self.notes.decide("final", f"epochs={epochs}", why)
        self.spec = spec
        outcome = "stopped" if self.user_stop() else ("out of time" if hard() else "done")
        self.timed("final", allot, began, outcome)

    # ------------------------------------------------------------------ the answer

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
        with RunStore.open(self.db_path) as store:
            store.find_or_create_experiment(
                self._name_of(store), kind=OPTIMIZE_KIND, spec_json=self.request_json(result)
            )
        return result

    def _name_of(self, store: RunStore) -> str:
        rows = [e for e in store.experiments(OPTIMIZE_KIND) if e["id"] == self.experiment_id]
        return str(rows[0]["name"])


__all__ = ["OPTIMIZE_KIND", "optimize", "stored_result"]
