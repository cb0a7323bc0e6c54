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
    FINAL_MARGIN,
    Goal,
    Ledger,
    Plan,
    check_budget,
    check_dataset,
    check_fits,
    rate_steps,
    size_final,
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
    epochs_seen: int = 0
    """Trial epochs behind ``epoch_s`` (0: it is still the probe's estimate)."""
    setup_from_runs: int = 0
    """Trial runs behind ``setup_s`` (0: still the probe's)."""


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
            self.notes.reject(
                "speed",
                "speed probes",
                f"skipped: reading the data and measuring one epoch took "
                f"{self.ledger.clock() - began:.1f} s of its {allot:.1f} s share, and one probe "
                f"needs about {measured.setup_s:.1f} s to set up; your speed settings stand",
            )
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
        epoch_times: dict[int, list[float]] = {}
        current: list[float] = []  # the running trial's epochs (trials run one at a time)

        def on_trial(outcome: Any) -> None:
            now = self.ledger.clock()
            if outcome.run_id is not None:
                walls[outcome.run_id] = now - last[0]
                epoch_times[outcome.run_id] = list(current)
            current.clear()
            last[0] = now
            show(f"trial {outcome.number} {outcome.state}", len(walls), size.trials)

        def on_event(event: Any) -> None:
            from cnn_lab.engine.train.events import EpochEnd

            if isinstance(event, EpochEnd) and event.epoch_s > 0:
                current.append(float(event.epoch_s))

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
        self.calibrate(walls, epoch_times, measured)
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
        self, walls: dict[int, float], epoch_times: dict[int, list[float]], measured: _Measured
    ) -> None:
        """The trials' real epoch time and per-run setup replace the probe's estimates.

        The probe times a few steps; the trials ran whole epochs (validation included) and
        whole runs (the store, the data, the model, the test pass, the weights), so the final
        run is sized from them: an epoch is the larger of the median and the mean of every
        trial epoch (a slow epoch now and then counts), and a run's setup is its wall time
        less its own epochs, the larger of median and mean over the trials.
        """
        every = sorted(t for times in epoch_times.values() for t in times)
        if not every:
            return
        measured.epoch_s = max(every[len(every) // 2], sum(every) / len(every))
        measured.epochs_seen = len(every)
        overheads = sorted(
            max(0.0, walls[run] - sum(times))
            for run, times in epoch_times.items()
            if run in walls and times
        )
        if overheads:
            middle = overheads[len(overheads) // 2]
            measured.setup_s = max(middle, sum(overheads) / len(overheads))
            measured.setup_from_runs = len(overheads)

    def final(self, measured: _Measured) -> None:
        """Train the chosen recipe on the clock: it ends, annealed, when its time is up.

        The run is modelled as setup + epochs × epoch time (both measured, see
        ``calibrate``) inside the allotment less ``FINAL_MARGIN``. The time that leaves is
        the run's ``time_limit_s``: its schedule follows the clock as well as its steps, so
        the one-cycle has annealed when the time is up and the run completes there; its
        epochs are set above the estimate (``FINAL_EPOCH_SLACK``) so that the clock, not
        an epoch count from an estimate, is what ends it. The deadline stop stays as a
        guard only. A target goal completes the run at the first validation reaching it.
        """
        began, allot = self.ledger.clock(), self.ledger.allot("final")
        size = size_final(allot, measured.epoch_s, measured.setup_s)
        if size.epochs < 1:
            self.timed("final", allot, began, "skipped: no epoch fits what is left")
            self.notes.reject(
                "final",
                "final run",
                f"{allot:.1f} s left hold no epoch of {measured.epoch_s:.2f} s after "
                f"{measured.setup_s:.1f} s of setup; the best trial stands",
            )
            return
        from cnn_lab.engine.jobs.job import create_run
        from cnn_lab.engine.train.events import EpochEnd

        name = self.spec.name or "optimize"
        target = self.plan.target if self.plan.goal == "target" else None
        spec = self.spec.model_copy(
            update={
                "name": f"{name} final",
                "train": self.spec.train.model_copy(
                    update={
                        "epochs": size.epochs_cap,
                        "time_limit_s": round(size.train_s, 3),
                        "stop_at_accuracy": target,
                    }
                ),
            }
        )
        with RunStore.open(self.db_path) as store:
            run_id = create_run(store, spec, experiment_id=self.experiment_id)
        self.run_ids.append(run_id)
        self.final_run_id = run_id
        best = [math.nan]
        show = self.stage("final")

        def on_event(event: Any) -> None:
            if isinstance(event, EpochEnd):
                best[0] = (
                    max(event.val_accuracy, best[0]) if best[0] == best[0] else event.val_accuracy
                )
                show(f"epoch {event.epoch}", event.epoch, size.epochs)

        hard = self.stop_at(self.ledger.end)  # a guard: the run's own clock ends it first
        record = self.tuners.train(
            spec, self.db_path, run_id, emit=on_event, should_stop=hard, sample_system=False
        )
        summary = record.summary if record is not None else {}
        score = summary.get("best_val_accuracy", best[0])
        if score is not None and score == score:
            self.scores[run_id] = float(score)
            self.specs[run_id] = spec
        source = (
            f"measured over {measured.epochs_seen} trial epochs, validation included"
            if measured.epochs_seen
            else "estimated by the epoch probe"
        )
        why = (
            f"{size.train_s:.0f} s of training at {measured.epoch_s:.2f} s an epoch ({source}) "
            f"after {measured.setup_s:.1f} s to set the run up, with a "
            f"{FINAL_MARGIN:.0%} margin: about {size.epochs} epochs; the schedule follows the "
            "clock, so its rate has annealed when the time is up"
        )
        reached = summary.get("target_reached_epoch")
        if reached is not None and target is not None:
            why += f"; it completed at epoch {reached}: validation accuracy reached {target:.0%}"
        self.notes.decide("final", f"time_limit_s={size.train_s:.0f}", why)
        self.spec = spec
        status = getattr(record, "status", None)
        outcome = (
            "stopped"
            if self.user_stop()
            else ("out of time" if hard() or status == "stopped" else "done")
        )
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
