"""The learning-rate range test: which rates make this model learn, measured on its own data.

Leslie Smith's test as fastai runs it: a fresh model takes one optimizer step per rate while
the rate grows exponentially from ``start_lr`` to ``end_lr``. The loss first barely moves
(the rate is too small to matter), then falls (the useful range), then climbs and explodes
(too large). Reading that curve by eye is the point of the chart; ``suggest_lr`` reads it by
rule so a person who does not want to squint still gets a number.

One loss per step is noisy, so the curve is smoothed with an exponential moving average
(beta 0.98) with bias correction, as in Adam: without the correction the first points would
be dragged towards zero. The test stops as soon as the smoothed loss exceeds four times its
minimum or a loss is not finite: the rest of the range can only say "too large" again, and
every further step costs time.

The model is a ``Probe``: built exactly as training builds it (optimizer included), thrown
away afterwards, so the test never touches a run's weights. The spec's schedule is ignored
because the test sets the rate itself before every step.

When the run fine-tunes (engine/specs/train.py ``fine_tuning``: pretrained weights, head
first), the test measures the rate of phase 1, the head alone: the probe's network is frozen
as phase 1 freezes it (body without gradients, its BatchNorms on their running statistics),
and the rate found is the spec's ``lr``, which phase 1 gives the head and phase 2 the head and,
divided down to ``lr / lr_ratio``, the earlier layers. The result's message says so.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from cnn_lab.engine.data.prepare import PreparedDataset
from cnn_lab.engine.errors import UserError
from cnn_lab.engine.specs import RunSpec
from cnn_lab.engine.specs.train import fine_tuning
from cnn_lab.engine.tune.probe import Probe, prepared_for

SMOOTHING = 0.98
"""EMA factor for the loss; fastai's default, about a 50-step memory."""
DIVERGENCE_FACTOR = 4.0
"""Stop once the smoothed loss exceeds this multiple of its minimum (fastai's stop_div)."""
SKIP_START = 0.1
"""Share of the curve left out of the suggestion at the start: the bias-corrected average
still rests on only a few losses there."""
SKIP_END = 5
"""Points left out at the end: the blow-up that stopped the test, not part of any valley."""
MIN_FALL = 0.01
"""The smoothed loss must fall by at least this share of its value for a suggestion."""
MIN_POINTS = 3
MIN_STEPS = 10

STAGE = "lr range test"
HEAD_PHASE_NOTE = (
    "fine-tuning: measured for phase 1, the head alone (body frozen); phase 2 trains the "
    "earlier layers at this rate divided down to rate / ratio"
)


@dataclass(frozen=True)
class LRSuggestion:
    """What ``suggest_lr`` reads off a smoothed curve; rates are None when there is none."""

    suggestion: float | None
    steepest_lr: float | None
    min_loss_lr: float | None
    message: str
    valley: tuple[int, int] | None = None
    """Indices (into the curve given) of the first and last point of the valley."""


@dataclass(frozen=True)
class LRFinderResult:
    """The curve and what it suggests; ``losses`` and ``smoothed`` align with ``lrs``."""

    lrs: tuple[float, ...]
    losses: tuple[float, ...]
    smoothed: tuple[float, ...]
    suggestion: float | None
    steepest_lr: float | None
    min_loss_lr: float | None
    diverged_at: float | None
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "lrs": list(self.lrs),
            "losses": list(self.losses),
            "smoothed": list(self.smoothed),
            "suggestion": self.suggestion,
            "steepest_lr": self.steepest_lr,
            "min_loss_lr": self.min_loss_lr,
            "diverged_at": self.diverged_at,
            "message": self.message,
        }

    def summary_lines(self) -> list[str]:
        lines = [f"LR range test: {len(self.lrs)} steps, {self.message}"]
        if self.lrs:
            lines.append(f"  rates tried     {self.lrs[0]:.2e} to {self.lrs[-1]:.2e}")
        if self.diverged_at is not None:
            lines.append(f"  diverged at     {self.diverged_at:.2e}")
        lines.append(f"  suggestion      {_rate(self.suggestion)}")
        lines.append(f"  steepest fall   {_rate(self.steepest_lr)}")
        if self.min_loss_lr is not None:
            lines.append(
                f"  minimum loss    {self.min_loss_lr:.2e}  "
                f"(a tenth of it, {self.min_loss_lr / 10:.2e}, is the classic pick)"
            )
        return lines


def lr_range_test(
    spec: RunSpec,
    *,
    start_lr: float = 1e-6,
    end_lr: float = 1.0,
    steps: int = 100,
    prepared: PreparedDataset | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    progress: Callable[[str, int, int], None] = lambda *_: None,
) -> LRFinderResult:
    """Run the range test on a fresh model of ``spec`` and suggest a learning rate.

    Raises UserError for arguments that cannot describe a range. A stop request ends the
    test early; what was measured until then is still returned and read.
    """
    check_range(start_lr, end_lr, steps)
    prepared = prepared_for(spec, prepared, should_stop=should_stop, progress=progress)
    growth = (end_lr / start_lr) ** (1.0 / (steps - 1))
    lrs: list[float] = []
    losses: list[float] = []
    smoothed: list[float] = []
    diverged_at: float | None = None
    average, best = 0.0, math.inf
    progress(STAGE, 0, steps)
    recipe = fine_tuning(spec)
    with Probe(spec, prepared=prepared, should_stop=should_stop) as probe:
        if recipe.on:
            from cnn_lab.engine.train.fine_tune import freeze_for_head_phase

            freeze_for_head_phase(probe.model, spec.train)
        for step in probe.steps(steps, lr=lambda i: start_lr * growth**i):
            if not math.isfinite(step.loss):
                diverged_at = step.lr
                break
            average = SMOOTHING * average + (1.0 - SMOOTHING) * step.loss
            value = average / (1.0 - SMOOTHING ** (step.index + 1))
            lrs.append(step.lr)
            losses.append(step.loss)
            smoothed.append(value)
            progress(STAGE, step.index + 1, steps)
            best = min(best, value)
            if value > DIVERGENCE_FACTOR * best:
                diverged_at = step.lr
                break
    stopped = diverged_at is None and len(lrs) < steps
    read = suggest_lr(lrs, smoothed)
    message = read.message
    if diverged_at is not None:
        message = f"the loss diverged at {diverged_at:.2e}; {message}"
    elif stopped:
        message = f"stopped after {len(lrs)} of {steps} steps; {message}"
    if recipe.on:
        message = f"{HEAD_PHASE_NOTE}; {message}"
    return LRFinderResult(
        lrs=tuple(lrs),
        losses=tuple(losses),
        smoothed=tuple(smoothed),
        suggestion=read.suggestion,
        steepest_lr=read.steepest_lr,
        min_loss_lr=read.min_loss_lr,
        diverged_at=diverged_at,
        message=message,
    )


def check_range(start_lr: float, end_lr: float, steps: int) -> None:
    """Refuse, with a sentence, arguments that do not describe a rising range of rates."""
    if not (math.isfinite(start_lr) and math.isfinite(end_lr)) or start_lr <= 0 or end_lr <= 0:
        raise UserError(
            f"The start and end learning rates must be positive numbers, "
            f"not {start_lr:g} and {end_lr:g}.",
            hint="Try --start-lr 1e-6 --end-lr 1.",
        )
    if start_lr >= end_lr:
        raise UserError(
            f"The start learning rate ({start_lr:g}) must be below the end rate ({end_lr:g}).",
            hint="The test raises the rate from start to end.",
        )
    if steps < MIN_STEPS:
        raise UserError(
            f"The range test needs at least {MIN_STEPS} steps, not {steps}.",
            hint="About 100 steps draw a readable curve.",
        )


def suggest_lr(lrs: Sequence[float], smoothed: Sequence[float]) -> LRSuggestion:
    """Read a learning rate off a smoothed range-test curve (fastai's "valley" rule).

    The rule: leave out the first 10% of the points (the average still rests on few
    losses) and the last five (the blow-up), then find the *valley*, the longest run of
    points whose smoothed loss keeps falling: the longest strictly decreasing subsequence,
    so one noisy bump does not cut a long fall in two. The suggestion is the point half-way
    through the valley (in steps, which is half-way in log-rate when the rates grow
    geometrically): well inside the range where the model learns, and safely before the
    minimum, which already sits at the edge of instability.

    Why not the other classic rules, which are reported too: the steepest descent
    (``steepest_lr``, the largest fall per log-rate) lands on one noisy pair of points and
    is often too timid; the minimum (``min_loss_lr``) is already too large to train with,
    hence the rule of thumb of a tenth of it. The valley proved the most robust of these in
    fastai's comparison, and it degrades gently on flat or short curves.

    No suggestion (None, with a message saying why) when the curve never falls by at least
    1% of its value: the start rate was already too large, the end rate too small, or there
    were too few steps to see a fall.
    """
    if len(lrs) != len(smoothed):
        raise ValueError(f"{len(lrs)} rates but {len(smoothed)} losses")
    first = int(len(lrs) * SKIP_START)
    last = len(lrs) - SKIP_END
    if last - first < MIN_POINTS:
        first, last = 0, len(lrs)
    if last - first < MIN_POINTS:
        return LRSuggestion(None, None, None, "too few points to read a curve; take more steps")
    window = list(smoothed[first:last])
    rates = list(lrs[first:last])
    low = min(range(len(window)), key=window.__getitem__)
    min_loss_lr = rates[low]
    steepest = _steepest(rates, window)
    fall_at = _longest_fall(window)
    start, end = fall_at[0], fall_at[-1]
    fall = window[start] - window[end]
    if len(fall_at) < MIN_POINTS or fall <= MIN_FALL * abs(window[start]):
        return LRSuggestion(
            None,
            steepest,
            min_loss_lr,
            "the loss never clearly falls; lower the start rate or raise the end rate",
        )
    middle = start + (end - start) // 2
    return LRSuggestion(
        rates[middle],
        steepest,
        min_loss_lr,
        f"suggested {rates[middle]:.2e}, half-way through the longest fall of the loss "
        f"({rates[start]:.2e} to {rates[end]:.2e})",
        (first + start, first + end),
    )


def _longest_fall(values: Sequence[float]) -> list[int]:
    """The indices of a longest strictly decreasing subsequence of ``values`` (in order).

    Patience sorting on the negated values (O(n log n)): ``tails[k]`` holds the index ending
    the best falling subsequence of length k + 1 found so far, ``parent`` links each index
    to its predecessor so the subsequence can be walked back from its end. When several
    falls are equally long, the one ending at the highest loss is returned (the one patience
    sorting keeps); the valley rule only needs one of them.
    """
    tails: list[int] = []
    keys: list[float] = []  # -values[tails[k]], increasing
    parent = [-1] * len(values)
    for i, value in enumerate(values):
        k = bisect.bisect_left(keys, -value)
        parent[i] = tails[k - 1] if k > 0 else -1
        if k == len(tails):
            tails.append(i)
            keys.append(-value)
        else:
            tails[k], keys[k] = i, -value
    chain = [tails[-1]] if tails else []
    while chain and parent[chain[-1]] != -1:
        chain.append(parent[chain[-1]])
    return chain[::-1]


def _steepest(rates: Sequence[float], values: Sequence[float]) -> float | None:
    """The rate where the loss falls fastest per unit of log-rate; None if it never falls."""
    best, where = 0.0, None
    for i in range(1, len(values)):
        span = math.log(rates[i]) - math.log(rates[i - 1])
        if span <= 0:
            continue
        slope = (values[i] - values[i - 1]) / span
        if slope < best:
            best, where = slope, rates[i]
    return where


def _rate(value: float | None) -> str:
    return "none" if value is None else f"{value:.2e}"
