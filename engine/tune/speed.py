"""The speed advisor: which speed options make this model train fastest here, measured.

Which options pay depends on the model, the data and the device (bf16 pays on big
convolutions on a tensor-core GPU and costs on a small, launch-bound model; channels-last
helps convolutions and hurts a tiny MLP), so the advisor does not guess: it takes short
training probes (``probe.Probe``) and compares images per second, which is fair across batch
sizes. Trying every combination multiplies quickly, so ``advise`` searches one option at a
time (coordinate descent) in the registry's order, keeping a value only when its loss stays
finite and it beats the best so far by more than the noise margin twice (measured beside it,
then again in the other order). It then re-measures your settings and its pick turn about,
so that a machine getting busier or quieter during the search does not decide the speed-up
it reports. ``exhaustive`` tries every combination with the same measurement code; the
benchmark (benchmarks/speed_advisor.py) uses it to check the advisor's pick against the best.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch

from cnn_lab.engine.data.prepare import PreparedDataset
from cnn_lab.engine.specs import RunSpec
from cnn_lab.engine.train.devices import describe_device, resolve_device
from cnn_lab.engine.tune.probe import prepared_for
from cnn_lab.engine.tune.speed_measure import (
    MIN_TIMED_S,
    Measure,
    MeasureSession,
    Outcome,
    Progress,
    probe_measurer,
)
from cnn_lab.engine.tune.speed_options import (
    OptionContext,
    SpeedOption,
    option_context,
    select_options,
)
from cnn_lab.engine.tune.speed_result import (
    COMBINATION,
    Finding,
    Settings,
    SpeedAdvice,
    describe,
    rate_text,
)

__all__ = ["Finding", "SpeedAdvice", "advise", "exhaustive", "probe_measurer"]

NOISE_MARGIN = 0.03
"""A value must beat the best so far by more than this share to be kept: smaller gains are
within what two probes of the same settings differ by on a shared machine."""
CONFIRM_ROUNDS = 2
"""Back-to-back re-measurements of your settings and the pick for the reported speed-up."""


def advise(
    spec: RunSpec,
    *,
    options: Sequence[str] | None = None,
    warmup: int = 3,
    steps: int = 8,
    min_seconds: float = MIN_TIMED_S,
    prepared: PreparedDataset | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    progress: Progress = lambda *_: None,
    measure: Measure | None = None,
    margin: float = NOISE_MARGIN,
    confirm_rounds: int = CONFIRM_ROUNDS,
) -> SpeedAdvice:
    """Search the speed options one at a time and recommend the fastest finite combination.

    ``options`` names the registry's options to try (all that apply, by default). Each
    option's values are compared with the best settings so far measured right before them,
    so a machine whose load drifts during the search compares like with like, and a value
    that seems to win is measured once more beside them before it is kept. Raises
    UserError when your own settings cannot run (the same sentence training would give).
    Each probe takes ``warmup`` untimed steps and at least ``steps`` timed ones (more while
    they add up to under ``min_seconds``). ``measure`` replaces the real probe (tests plant
    their answers through it).
    """
    plan = _Plan.make(
        spec, options, (warmup, steps, min_seconds), prepared, should_stop, progress, measure
    )
    searched = [o for o in plan.options if plan.alternatives(o, plan.baseline)]
    tries = sum(len(plan.alternatives(o, plan.baseline)) for o in searched)
    session = plan.session(1 + tries + max(len(searched) - 1, 0) + 2 * confirm_rounds)
    base = session.run(plan.baseline, "baseline")
    descent = _Descent(plan, session, base, margin)
    for option in searched if base is not None else []:
        if not descent.step(option):
            break
    return plan.finish(
        session, base, descent.best, descent.best_outcome, descent.findings, confirm_rounds
    )


class _Descent:
    """Coordinate descent's state: the best settings so far and how they were measured."""

    def __init__(
        self, plan: _Plan, session: MeasureSession, base: Outcome | None, margin: float
    ) -> None:
        self.plan, self.session, self.margin = plan, session, margin
        self.best: Settings = dict(plan.baseline)
        self.best_outcome = base
        self.reference, self.measured_at = base, session.probes
        self.gain = 1.0
        """The best so far against your settings, chained from paired measurements."""
        self.findings: list[Finding] = []

    def step(self, option: SpeedOption) -> bool:
        """Try ``option``'s values on the best settings so far; False once stopped."""
        session = self.session
        if session.probes != self.measured_at:  # pair the values with a fresh best
            self.reference = session.run(self.best, option.name, fresh=True)
            self.measured_at = session.probes
        reference = self.reference
        if reference is None:
            return False
        tried: list[tuple[Settings, Outcome, int]] = []
        for value in self.plan.alternatives(option, self.best):
            trial = self.best | {option.field: value}
            outcome = session.run(trial, option.name)
            if outcome is None:
                return False
            self.findings.append(self.plan.finding(option, value, outcome, reference, self.gain))
            tried.append((trial, outcome, len(self.findings) - 1))
        winner = _fastest([(s, o) for s, o, _ in tried])
        if winner is None or not _beats(winner[1], reference, self.margin):
            return True
        index = next(i for s, _, i in tried if s is winner[0])
        found = self.findings[index]
        if not reference.usable:  # your settings' loss was not finite: any finite value wins
            ratio, accept = _ratio(winner[1], reference) or 1.0, True
        else:
            challenged = self._challenge(option, winner[0], winner[1], reference)
            if challenged is None:
                return False
            ratio, accept = challenged, challenged > 1.0 + self.margin
        if accept:
            self.gain *= ratio
            self.best, self.best_outcome = winner
            self.measured_at = -1  # the next option pairs with the new best, measured anew
            self.findings[index] = replace(found, accepted=True, speedup=self.gain)
        else:
            note = f"{found.note} Measured again beside the best so far it was x{ratio:.2f}."
            self.findings[index] = replace(found, note=note.strip())
        return True

    def _challenge(
        self, option: SpeedOption, trial: Settings, first: Outcome, reference: Outcome
    ) -> float | None:
        """Measure an apparent winner and the best so far once more, in the other order.

        A single pair can be won by chance: the very first probe of a process is often slow
        (allocator growth, thread pools, kernel caches), and a busy machine slows one probe
        and not the next. So both pairs must show the gain; in the order best, winner,
        winner, best a steady drift favours the winner in one pair and the best in the
        other, and the geometric mean of the two ratios cancels it. Returns that speed-up
        (or the losing pair's ratio): None when stopped, 0 when it failed this time.
        """
        again = self.session.run(trial, option.name, fresh=True)
        best = self.session.run(self.best, option.name, fresh=True)
        if again is None or best is None:
            return None
        self.reference, self.measured_at = best, self.session.probes
        before, after = _ratio(first, reference), _ratio(again, best)
        if not (again.usable and best.usable) or before is None or after is None:
            return 0.0
        if min(before, after) <= 1.0 + self.margin:  # one of the two looks was not a win
            return min(before, after)
        return math.sqrt(before * after)


def exhaustive(
    spec: RunSpec,
    *,
    options: Sequence[str] | None = None,
    warmup: int = 3,
    steps: int = 8,
    min_seconds: float = MIN_TIMED_S,
    prepared: PreparedDataset | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    progress: Progress = lambda *_: None,
    measure: Measure | None = None,
    confirm_rounds: int = CONFIRM_ROUNDS,
) -> SpeedAdvice:
    """Measure every combination of the options' values and pick the fastest finite one.

    The yardstick for ``advise``: same measurements, many more probes.
    """
    plan = _Plan.make(
        spec, options, (warmup, steps, min_seconds), prepared, should_stop, progress, measure
    )
    grids = [
        [(option.field, value) for value in [plan.baseline[option.field]]]
        + [(option.field, value) for value in plan.alternatives(option, plan.baseline)]
        for option in plan.options
    ]
    # Each grid starts with your value, so the first combination is your settings.
    combos = [plan.baseline | dict(pairs) for pairs in itertools.product(*grids)]
    session = plan.session(len(combos) + 2 * confirm_rounds)
    base = session.run(combos[0], "baseline")
    measured: list[tuple[Settings, Outcome]] = [] if base is None else [(combos[0], base)]
    for settings in combos[1:] if base is not None else []:
        outcome = session.run(settings, COMBINATION)
        if outcome is None:
            break
        measured.append((settings, outcome))
    winner = _fastest(measured) or (plan.baseline, base)
    findings = [
        Finding(
            option=COMBINATION,
            value=_differences(settings, plan.baseline),
            images_per_s=outcome.images_per_s,
            speedup=_ratio(outcome, base),
            accepted=settings == winner[0] and settings != plan.baseline,
            note=outcome.problem or (describe(_differences(settings, plan.baseline)) or "yours"),
            first_step_s=outcome.first_step_s,
        )
        for settings, outcome in measured
    ]
    return plan.finish(session, base, winner[0], winner[1], findings, confirm_rounds)


@dataclass(frozen=True)
class _Plan:
    """What both searches share: the spec, device, options, their context and measurement."""

    spec: RunSpec
    device: torch.device
    options: list[SpeedOption]
    context: OptionContext
    baseline: Settings
    measure: Measure
    should_stop: Callable[[], bool]
    progress: Progress

    @classmethod
    def make(
        cls,
        spec: RunSpec,
        names: Sequence[str] | None,
        lengths: tuple[int, int, float],
        prepared: PreparedDataset | None,
        should_stop: Callable[[], bool],
        progress: Progress,
        measure: Measure | None,
    ) -> _Plan:
        options = select_options(None if names is None else list(names))
        device = resolve_device(spec.train.device)
        prepared = prepared_for(spec, prepared, should_stop=should_stop, progress=progress)
        context = option_context(spec, device, prepared)
        if measure is None:
            warmup, steps, min_seconds = lengths
            measure = probe_measurer(
                prepared,
                device,
                warmup=warmup,
                steps=steps,
                min_seconds=min_seconds,
                should_stop=should_stop,
            )
        baseline = {option.field: getattr(spec.train, option.field) for option in options}
        return cls(spec, device, options, context, baseline, measure, should_stop, progress)

    def alternatives(self, option: SpeedOption, settings: Settings) -> list[Any]:
        current = settings[option.field]
        values = option.candidates(self.context)
        return [
            value for i, value in enumerate(values) if value != current and value not in values[:i]
        ]

    def session(self, total: int) -> MeasureSession:
        return MeasureSession(
            self.spec, self.device, self.measure, self.progress, self.should_stop, total
        )

    def finding(
        self, option: SpeedOption, value: Any, outcome: Outcome, reference: Outcome, gain: float
    ) -> Finding:
        """A measured value, its speed-up over your settings estimated as ``gain`` (the best
        so far over yours) times its ratio to the best so far measured just before it."""
        ratio = _ratio(outcome, reference)
        note = outcome.problem or option.note_for(value, self.context)
        if outcome.images_per_s is not None and not outcome.finite:
            note = "The loss was not finite with this value, so it is never picked. " + note
        if option.name == "compile" and value and outcome.first_step_s is not None:
            note += f" The first step (compiling) took {outcome.first_step_s:.1f} s."
        return Finding(
            option.name,
            value,
            outcome.images_per_s,
            None if ratio is None else ratio * gain,
            False,
            note,
            outcome.first_step_s,
        )

    def finish(
        self,
        session: MeasureSession,
        base: Outcome | None,
        best: Settings,
        best_outcome: Outcome | None,
        findings: list[Finding],
        confirm_rounds: int,
    ) -> SpeedAdvice:
        """Confirm the pick against your settings turn about, and word the answer."""
        base_rate = base.images_per_s if base is not None else None
        best_rate = best_outcome.images_per_s if best_outcome is not None else None
        reverted = ""
        if best != self.baseline and not session.stopped and confirm_rounds > 0:
            confirmed = _confirm(session, self.baseline, best, confirm_rounds)
            if confirmed is not None:
                base_rate, best_rate = confirmed
                if best_rate is None or base_rate is None or best_rate < base_rate:
                    reverted = describe(_differences(best, self.baseline))
                    best, best_rate = dict(self.baseline), base_rate
                    findings = [replace(f, accepted=False) for f in findings]
        session.progress("done", session.total, session.total)
        changes = {k: v for k, v in best.items() if v != getattr(self.spec.train, k)}
        return SpeedAdvice(
            device=describe_device(self.device),
            baseline_settings=dict(self.baseline),
            baseline_images_per_s=base_rate,
            best_settings=dict(best),
            best_images_per_s=best_rate,
            changes=changes,
            findings=tuple(findings),
            warnings=tuple(session.warnings),
            probe_seconds=session.probe_seconds,
            probes=session.probes,
            message=_message(session, base, base_rate, best_rate, changes, reverted),
        )


def _confirm(
    session: MeasureSession, baseline: Settings, best: Settings, rounds: int
) -> tuple[float | None, float | None] | None:
    """Median rates of your settings and the pick, measured turn about; None if stopped.

    The order alternates round by round (yours, pick, pick, yours, ...), so a load that
    rises or falls steadily during the confirmation favours neither.
    """
    rates: dict[str, list[float]] = {"base": [], "best": []}
    pair = [("base", baseline), ("best", best)]
    for round_ in range(rounds):
        for name, settings in pair if round_ % 2 == 0 else pair[::-1]:
            outcome = session.run(settings, "confirm", fresh=True)
            if outcome is None:
                return None
            if outcome.usable and outcome.images_per_s is not None:
                rates[name].append(outcome.images_per_s)
    base, best_rates = rates["base"], rates["best"]
    return (
        statistics.median(base) if base else None,
        statistics.median(best_rates) if len(best_rates) == rounds else None,
    )


def _fastest(measured: Sequence[tuple[Settings, Outcome]]) -> tuple[Settings, Outcome] | None:
    usable = [(s, o) for s, o in measured if o.usable]
    return max(usable, key=lambda pair: pair[1].images_per_s or 0.0, default=None)


def _beats(candidate: Outcome, best: Outcome | None, margin: float) -> bool:
    if best is None or not best.usable or best.images_per_s is None:
        return candidate.usable
    return (candidate.images_per_s or 0.0) > best.images_per_s * (1.0 + margin)


def _ratio(outcome: Outcome, base: Outcome | None) -> float | None:
    if outcome.images_per_s is None or base is None or not base.images_per_s:
        return None
    return outcome.images_per_s / base.images_per_s


def _differences(settings: Settings, baseline: Settings) -> Settings:
    return {k: v for k, v in settings.items() if baseline.get(k) != v}


def _message(
    session: MeasureSession,
    base: Outcome | None,
    base_rate: float | None,
    best_rate: float | None,
    changes: Settings,
    reverted: str,
) -> str:
    if base is None:
        return "Stopped before your settings were measured; nothing to recommend."
    stopped = f"Stopped after {session.probes} probes. " if session.stopped else ""
    if base_rate is not None and not base.finite and not changes:
        return stopped + "The loss was not finite with your settings or any other measured."
    if reverted:
        return stopped + (
            f"The combination found ({reverted}) was not faster when measured again beside "
            "your settings; keep them."
        )
    if not changes or base_rate is None or best_rate is None:
        return stopped + (
            f"Your settings are already the fastest measured ({rate_text(base_rate).strip()})."
        )
    return stopped + (
        f"{describe(changes)} trains {best_rate / base_rate:.2f}x as fast as your settings "
        f"({best_rate:.0f} vs. {base_rate:.0f} images/s)."
    )
