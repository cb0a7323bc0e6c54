"""Whether the final run adds the search's shifts to the recipe the search picked.

The search judges trials after a few epochs, and a few epochs are where augmentation looks
worst: it makes the training images harder, and pays back only in a longer run, where
without it the network starts memorising them (hence ``FINAL_EPOCH_CAP``). So when the
search picks a recipe without the shifts it searched, and the final run trains at least
``LONGER`` times the trials' epochs, the final run adds them, unless the search's paired
trials showed they hurt: your recipe with full shifts (trial #1) scored more than
``SHORT_RUN_COST`` below the same recipe without them (trial #0). The pair isolates what
shifts do; comparing the best shifted trial with the best trial would blame the shifts for
a worse rate. Data where the object's place is its class shows a gap of many points there,
and keeps its unshifted recipe.

Measured (small_cnn, 2-core CPU): the paired 5-epoch trials in ``benchmarks/optimize.py``
scored 0.25 points higher to 0.6 points lower with shifts (sample:shapes and sample:digits,
batch 64 and 128); trained longer, shifts scored higher: shapes 0.9983 against 0.9892 at 15
epochs and 0.9983 against 0.9933 at 60 (``cnn-lab train --precision bf16 [--augment
translate=1]``), digits 1.000 and 0.999 at 120 epochs against 0.996 and 0.998 at 60 without
(two seeds).

Applies only where the shifts are the search's own (the person's data has no augmentation:
their own stays as the search tuned it), to the accuracy goal (the target goal wants the
fastest run to a target, not the longest), and without a cap the person set (they chose the
run's length knowing their recipe).
"""

from __future__ import annotations

from cnn_lab.engine.optimize.plan import final_epochs
from cnn_lab.engine.optimize.search_phase import searches_shifts
from cnn_lab.engine.optimize.state import Measured, RunState
from cnn_lab.engine.specs import RunSpec

SHORT_RUN_COST = 0.01
"""How much lower the shifted twin may score and still have its shifts trained: one point
of validation accuracy, above the 0.6 points shifts cost after 5 epochs on cnn-lab's
samples and far below what they cost where they change the class."""
LONGER = 3
"""The final run adds shifts when it trains at least this many times the trials' epochs:
at 15 epochs, three times the trials' 5, shifts already won on sample:shapes."""


def augments(spec: RunSpec) -> bool:
    return any(step.strength > 0 for step in spec.dataset.augment)


def lengthen(run: RunState, measured: Measured, allot_s: float) -> None:
    """Add the paired trial's shifts to ``run.spec`` when the rules above say so, and say
    why either way once the question arises (a final run ``LONGER`` than the trials)."""
    if (
        run.plan.goal != "accuracy"
        or run.plan.final_epoch_cap is not None
        or not searches_shifts(run.asked)
        or augments(run.spec)
    ):
        return
    trial = {number: rid for rid, number in run.trials.items()}
    if 0 not in trial or 1 not in trial:  # the pair did not complete: nothing to judge by
        return
    plain, shifted = run.specs[trial[0]], run.specs[trial[1]]
    if augments(plain) or not augments(shifted):
        return
    epochs = min(
        final_epochs(allot_s, measured.epoch_s, measured.setup_s), run.plan.epoch_cap(True)
    )
    if epochs < LONGER * shifted.train.epochs:
        return
    gap = run.scores[trial[0]] - run.scores[trial[1]]
    step = shifted.dataset.augment[0]
    measured_pair = (
        f"your recipe with {step.name} at {step.strength:g} (trial #1) scored "
        f"{run.scores[trial[1]]:.1%} after {shifted.train.epochs} epochs, against "
        f"{run.scores[trial[0]]:.1%} without (trial #0)"
    )
    if gap > SHORT_RUN_COST:
        run.notes.reject(
            "final",
            f"{step.name}={step.strength:g} added to the final run",
            f"{measured_pair}: {gap * 100:.1f} points lower, more than the "
            f"{SHORT_RUN_COST * 100:.0f} point shifts cost in a short trial, so they hurt here",
        )
        return
    dataset = run.spec.dataset.model_copy(update={"augment": shifted.dataset.augment})
    run.spec = run.spec.model_copy(update={"dataset": dataset})
    run.notes.decide(
        "final",
        f"{step.name}={step.strength:g} added",
        f"the final run trains about {epochs} epochs, {epochs / shifted.train.epochs:.0f}x "
        f"the trials', and short trials under-rate augmentation; {measured_pair}, within the "
        f"{SHORT_RUN_COST * 100:.0f} point shifts cost in a short trial, and shifted runs "
        "trained longer scored higher in cnn-lab's benchmark",
    )


__all__ = ["LONGER", "SHORT_RUN_COST", "augments", "lengthen"]
