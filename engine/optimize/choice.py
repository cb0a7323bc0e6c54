"""Which search trial the final run trains, per goal, and the sentences that say why.

Goal "accuracy": the best validation accuracy, unless a trial within ``CLOSE_POINTS`` of it
trained at least ``FASTER`` times as fast per epoch: then the faster one, because the final
run trains for a fixed time and a configuration twice as fast gets twice the epochs, which
on a short budget is worth more than a fraction of a point measured after a few epochs.
Goal "target": the fastest per epoch of the trials that reached the target; when none did,
the most accurate.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from cnn_lab.engine.search.study import TrialOutcome

CLOSE_POINTS = 0.01
FASTER = 1.3

Reasons = list[tuple[str, str]]


def _per_epoch(walls: Mapping[int, float]) -> Callable[[TrialOutcome], float]:
    def seconds(trial: TrialOutcome) -> float:
        wall = walls.get(trial.run_id or -1)
        return float("inf") if wall is None or not trial.epochs else wall / trial.epochs

    return seconds


def _accuracy(
    trials: Sequence[TrialOutcome], seconds: Callable[[TrialOutcome], float]
) -> tuple[TrialOutcome, str]:
    best = max(trials, key=lambda t: t.value or 0.0)
    close = [t for t in trials if (best.value or 0.0) - (t.value or 0.0) <= CLOSE_POINTS]
    fastest = min(close, key=seconds)
    if fastest is not best and seconds(best) >= FASTER * seconds(fastest):
        lost = ((best.value or 0.0) - (fastest.value or 0.0)) * 100
        ratio = seconds(best) / seconds(fastest)
        return fastest, (
            f"trial #{fastest.number} lost {lost:.1f} points to trial #{best.number} but trained "
            f"{ratio:.1f}x faster per epoch, so the final run, trained for a fixed time, keeps it"
        )
    return best, f"trial #{best.number} reached {best.value:.1%}, the best of {len(trials)} trials"


def _target(
    trials: Sequence[TrialOutcome], seconds: Callable[[TrialOutcome], float], target: float
) -> tuple[TrialOutcome, str]:
    reached = [t for t in trials if (t.value or 0.0) >= target]
    if not reached:
        best, _ = _accuracy(trials, seconds)
        return best, (
            f"no trial reached {target:.0%}; trial #{best.number} came closest at {best.value:.1%}"
        )
    fastest = min(reached, key=seconds)
    return fastest, (
        f"trial #{fastest.number} reached {fastest.value:.1%} (target {target:.0%}) at "
        f"{seconds(fastest):.2f} s per epoch, the fastest of {len(reached)} that reached it"
    )


def choose(
    trials: Sequence[TrialOutcome], walls: Mapping[int, float], goal: str, target: float | None
) -> tuple[TrialOutcome, Reasons]:
    """The trial to train and one (choice, evidence) per parameter it sets."""
    seconds = _per_epoch(walls)
    if goal == "target" and target is not None:
        chosen, why = _target(trials, seconds, target)
    else:
        chosen, why = _accuracy(trials, seconds)
    return chosen, [(f"{path}={_show(value)}", why) for path, value in chosen.params.items()]


def trial_sentences(
    trials: Sequence[TrialOutcome], chosen: TrialOutcome, walls: Mapping[int, float]
) -> Reasons:
    """Every other trial, as (what it tried, why it was not kept)."""
    seconds = _per_epoch(walls)
    reasons: Reasons = []
    for trial in trials:
        if trial.number == chosen.number:
            continue
        tried = (
            f"trial #{trial.number} ("
            + ", ".join(f"{path}={_show(value)}" for path, value in trial.params.items())
            + ")"
        )
        if trial.state != "complete":
            reasons.append((tried, f"{trial.state}: {trial.reason or 'no result'}"))
            continue
        speed = seconds(trial)
        per_epoch = "" if speed == float("inf") else f", {speed:.2f} s per epoch"
        reasons.append((tried, f"reached {trial.value:.1%} in {trial.epochs} epochs{per_epoch}"))
    return reasons


def _show(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else f"{value}"


__all__ = ["choose", "trial_sentences"]
