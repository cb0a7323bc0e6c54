"""The plan as data: four phases with their shares of the budget, the goal, and the sizing rules.

Shares (``DEFAULT_SHARES``): speed 10%, rate 5%, search 45%, final 40%. Why these:

* speed 10%: the advisor's probes are a few seconds each and most of what they find (batch
  size, precision, layout) multiplies every later epoch, so a tenth pays back many times; more
  would only add probes of options already settled.
* rate 5%: the range test is one pass of at most ~100 steps on a fresh model; it needs
  steps, not epochs.
* search 45% and final 40%: a short search at few epochs per trial ranks configurations, the
  final run turns the winner into a model. Nearly even, leaning to the search, because a
  final run twice as long gains little when the rate or width was wrong, and a search
  whose winner is not trained to the end leaves nothing to keep.

Time left over is re-divided: a phase is allotted ``share / (sum of the shares still to
run)`` of the time remaining when it starts (``Ledger.allot``), so a phase finishing early
(or skipped) hands its time to those after it, and the final run takes whatever is left, up
to ``FINAL_EPOCH_CAP`` epochs (``AUGMENTED_EPOCH_CAP`` when the recipe augments its
images); when that cap leaves time over, the search gets it instead
(``search_allotment``), and the optimization ends early rather than train longer.

Refusals come before anything is spent beyond the bounded measurements they need (the epoch
probe and the batch check): ``check_dataset``, ``check_fits`` and ``check_budget`` each
raise a UserError sentence that says what to change.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from cnn_lab.engine.errors import UserError

Goal = Literal["accuracy", "target"]
GOALS: tuple[str, ...] = ("accuracy", "target")
PHASES: tuple[str, ...] = ("speed", "rate", "search", "final")
DEFAULT_SHARES: Mapping[str, float] = MappingProxyType(
    {"speed": 0.10, "rate": 0.05, "search": 0.45, "final": 0.40}
)

BUDGET_TOLERANCE = 0.10
"""The whole optimization ends within this share over the budget, or says why."""
FINAL_MARGIN = 0.10
"""The final run's epochs fill this much less than its allotment: an epoch's time varies by
a few percent from probe to run, and the run's last evaluation and checkpoint take time too."""
MIN_TRAIN_IMAGES = 20
MIN_VAL_IMAGES = 10
"""Fewer validation images than this cannot tell two configurations apart: one image is
10 points of accuracy."""
MIN_TRIALS = 4
"""A search affording fewer trials than this is skipped: TPE's first trials are random, so
two or three only sample, and their time trains the final run better."""
MAX_TRIALS = 40
MAX_TRIAL_EPOCHS = 5
"""Trials train short: enough epochs to rank configurations, not to finish them."""
MAX_FINAL_EPOCHS = 100_000
"""TrainSpec's own bound: on tiny data an epoch takes tens of milliseconds."""
FINAL_EPOCH_CAP = 60
"""The final run trains at most this many epochs when its recipe has no augmentation
(``Plan.epoch_cap``); time a longer run would take goes to the search instead
(``search_allotment``). Why: the trials rank configurations over a few epochs and say
nothing of length, and length without augmentation was measured to hurt: on sample:shapes
(benchmarks/optimize.py, 2-core CPU) small_cnn's one-cycle runs of about 60 epochs reached
0.993-0.997 validation accuracy and its runs of about 260 epochs 0.978-0.981, both for the
final run and for cnn-lab's defaults. Sixty epochs is also where common small-CNN recipes
end (fastai's, airbench's are shorter)."""
AUGMENTED_EPOCH_CAP = 120
"""The cap when the recipe augments its images: augmentation is what keeps a long run from
memorising the training set. On sample:shapes with random shifts (small_cnn, AdamW
one-cycle at 0.01, bf16, 2-core CPU) 60 epochs reached 0.9983 validation accuracy, 120
epochs 0.9992 and 240 epochs 0.9992 again: doubling past 120 bought nothing, so the time it
would take goes to the search instead."""
FINAL_EPOCH_SLACK = 1.5
"""The final run's epochs are this many times the estimate: its time limit ends it, and
its step count only has to stay behind the clock, so an estimate off by up to a third
still leaves the schedule following the clock."""
MIN_RATE_STEPS = 10
MAX_RATE_STEPS = 100


@dataclass(frozen=True)
class Plan:
    """What the person asked for: budget, goal, candidates; and the phases' shares."""

    budget_s: float
    goal: Goal = "accuracy"
    target: float | None = None
    widths: tuple[float, ...] = ()
    """Candidate widths the search may pick from (empty: keep the spec's width)."""
    networks: tuple[str, ...] = ()
    """Candidate presets the search may pick from (empty: keep the spec's network)."""
    shares: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_SHARES))
    final_epoch_cap: int | None = None
    """The most epochs the final run trains; None: ``FINAL_EPOCH_CAP``, or
    ``AUGMENTED_EPOCH_CAP`` for a recipe that augments (``epoch_cap``)."""

    def __post_init__(self) -> None:
        if not math.isfinite(self.budget_s) or self.budget_s <= 0:
            raise UserError(
                f"The budget must be a positive number of minutes, not {self.budget_s / 60:g}.",
                hint="Try --budget 10.",
            )
        if self.goal not in GOALS:
            raise UserError(f"The goal must be one of {', '.join(GOALS)}, not {self.goal!r}.")
        if self.goal == "target" and (self.target is None or not 0.0 < self.target <= 1.0):
            raise UserError(
                "The target goal needs a target accuracy between 0 and 1.",
                hint="Try --goal target --target 0.9.",
            )
        if self.final_epoch_cap is not None and self.final_epoch_cap < 1:
            raise UserError(
                f"The final run's epoch cap must be at least 1, not {self.final_epoch_cap}."
            )
        if set(self.shares) != set(PHASES) or any(v < 0 for v in self.shares.values()):
            raise ValueError(f"shares must give each of {PHASES} a non-negative share")

    def epoch_cap(self, augmented: bool) -> int:
        """The final run's epoch cap for a recipe that augments its images or not."""
        if self.final_epoch_cap is not None:
            return self.final_epoch_cap
        return AUGMENTED_EPOCH_CAP if augmented else FINAL_EPOCH_CAP


class Ledger:
    """The budget's clock: when it started, and each phase's allotment as it starts."""

    def __init__(self, plan: Plan, clock: Callable[[], float]) -> None:
        self.plan, self.clock = plan, clock
        self.start = clock()
        self.end = self.start + plan.budget_s

    def elapsed(self) -> float:
        return self.clock() - self.start

    def remaining(self) -> float:
        return max(0.0, self.end - self.clock())

    def allot(self, phase: str) -> float:
        """Seconds for ``phase``: its share of what remains among the phases from it on."""
        ahead = PHASES[PHASES.index(phase) :]
        total = sum(self.plan.shares[p] for p in ahead)
        share = self.plan.shares[phase] / total if total > 0 else 1.0
        return self.remaining() * share


# --------------------------------------------------------------------------- refusals


def check_dataset(train_images: int, val_images: int) -> None:
    """Refuse a dataset too small to split into training and a telling validation set."""
    if train_images < MIN_TRAIN_IMAGES or val_images < MIN_VAL_IMAGES:
        raise UserError(
            f"The dataset splits into {train_images} training and {val_images} validation "
            f"images; optimize needs at least {MIN_TRAIN_IMAGES} and {MIN_VAL_IMAGES} to tell "
            "configurations apart.",
            hint="Add images, raise --limit, or raise --val.",
        )


def check_fits(max_batch: int | None, message: str) -> None:
    """Refuse an architecture that fits the device's memory at no batch size."""
    if not max_batch:
        raise UserError(
            f"The network does not fit in memory at any batch size ({message}).",
            hint="Pick a smaller network or width, smaller images, or another device.",
        )


def check_budget(budget_s: float, spent_s: float, run_setup_s: float, epoch_s: float) -> None:
    """Refuse a budget that cannot hold one epoch of one run after the measurements so far."""
    need = spent_s + run_setup_s + epoch_s
    if need > budget_s:
        raise UserError(
            f"A budget of {budget_s:.0f} s is too small: measuring took {spent_s:.1f} s, and one "
            f"epoch takes about {epoch_s:.1f} s plus {run_setup_s:.1f} s to set a run up.",
            hint=f"Give at least {math.ceil(need * 2 / 60)} minutes, or fewer or smaller images.",
        )


# --------------------------------------------------------------------------- sizing


@dataclass(frozen=True)
class SearchSize:
    """How many trials of how many epochs the search's allotment affords."""

    trials: int
    epochs: int
    trial_s: float

    @property
    def affordable(self) -> bool:
        return self.trials >= MIN_TRIALS


def size_search(allot_s: float, epoch_s: float, run_setup_s: float) -> SearchSize:
    """Trials × epochs that fit ``allot_s``: as many epochs per trial (up to
    ``MAX_TRIAL_EPOCHS``) as still leave ``MIN_TRIALS`` trials, then as many trials as fit."""
    per_trial = allot_s / MIN_TRIALS
    epochs = int((per_trial - run_setup_s) // max(epoch_s, 1e-9))
    epochs = max(1, min(MAX_TRIAL_EPOCHS, epochs))
    trial_s = run_setup_s + epochs * epoch_s
    trials = min(MAX_TRIALS, int(allot_s // max(trial_s, 1e-9)))
    return SearchSize(trials, epochs, trial_s)


def final_epochs(allot_s: float, epoch_s: float, run_setup_s: float) -> int:
    """The final run's epochs: as many as end within its allotment less ``FINAL_MARGIN``."""
    usable = allot_s * (1.0 - FINAL_MARGIN) - run_setup_s
    return max(0, min(MAX_FINAL_EPOCHS, int(usable // max(epoch_s, 1e-9))))


def final_need_s(cap: int, epoch_s: float, run_setup_s: float) -> float:
    """The allotment a final run of ``cap`` epochs needs, its margin included."""
    return (run_setup_s + cap * epoch_s) / (1.0 - FINAL_MARGIN)


def search_allotment(shared_s: float, remaining_s: float, final_s: float) -> float:
    """The search's seconds: its share of what remains (``shared_s``), or more when the final
    run, capped at its epochs, needs less than the rest (``final_s``): the search gets all
    but that, since a capped final run cannot use it."""
    return max(shared_s, remaining_s - final_s)


@dataclass(frozen=True)
class FinalSize:
    """The final run: seconds of training (its time limit), the epochs they should hold,
    and the epoch count given to the spec (above the estimate, so the clock ends the run;
    or the cap itself when ``capped``, so the epochs end it and the clock only guards)."""

    train_s: float
    epochs: int
    epochs_cap: int
    capped: bool = False


def size_final(
    allot_s: float, epoch_s: float, run_setup_s: float, cap: int = FINAL_EPOCH_CAP
) -> FinalSize:
    """Model the final run as setup + epochs × epoch time within the allotment less
    ``FINAL_MARGIN``, at most ``cap`` epochs; ``epochs`` 0 when not one epoch fits."""
    train_s = max(0.0, allot_s * (1.0 - FINAL_MARGIN) - run_setup_s)
    epochs = final_epochs(allot_s, epoch_s, run_setup_s)
    if epochs > cap:
        return FinalSize(train_s, cap, cap, capped=True)
    slack = min(MAX_FINAL_EPOCHS, math.ceil(epochs * FINAL_EPOCH_SLACK) + 1)
    return FinalSize(train_s, epochs, slack)


def rate_steps(allot_s: float, step_s: float) -> int:
    """Range-test steps that fit the rate phase's allotment (0: too few to read a curve)."""
    steps = int(allot_s // max(step_s, 1e-9))
    return 0 if steps < MIN_RATE_STEPS else min(MAX_RATE_STEPS, steps)


__all__ = [
    "AUGMENTED_EPOCH_CAP",
    "DEFAULT_SHARES",
    "FINAL_EPOCH_CAP",
    "GOALS",
    "PHASES",
    "FinalSize",
    "Goal",
    "Ledger",
    "Plan",
    "SearchSize",
    "check_budget",
    "check_dataset",
    "check_fits",
    "final_epochs",
    "final_need_s",
    "rate_steps",
    "search_allotment",
    "size_final",
    "size_search",
]
