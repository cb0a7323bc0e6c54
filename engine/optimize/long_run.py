"""Whether a final run with time to spare trains the search's best shifted recipe, and longer.

The search judges trials after a few epochs, and a few epochs are where augmentation looks
worst: it makes the training images harder, and pays back only in a long run, where
without it the network starts memorising them (hence ``FINAL_EPOCH_CAP``). So when the
search picks a recipe without the shifts it searched, and the final run has time for more
epochs than that cap, those epochs would stand idle; a shifted recipe may use them, up to
``AUGMENTED_EPOCH_CAP``. It does so when the search's best shifted trial came within
``SHORT_RUN_COST`` of its best trial: the cost shifts are known to have after a few epochs,
not a sign that they hurt on this data (data where the object's place is its class would
show a gap of many points, and keeps its unshifted recipe).

Measured in cnn-lab's benchmark (benchmarks/optimize.py, small_cnn, 2-core CPU): the
search's paired 5-epoch trials of the same recipe scored 0.3 (sample:digits) and 0.6
(sample:shapes) points lower with full shifts; trained long, the shifted recipe scored
higher: digits 1.000 at 120 epochs against 0.996 at 60 without, shapes 0.9992 against
0.9933.

Applies only where the shifts are the search's own (the person's data has no augmentation:
their own stays as the search tuned it), to the accuracy goal (the target goal wants the
fastest run to a target, not the longest), and to the default caps (a cap the person set
is the same with or without shifts, so no time stands idle).
"""

from __future__ import annotations

from cnn_lab.engine.optimize.plan import final_epochs
from cnn_lab.engine.optimize.state import Measured, RunState
from cnn_lab.engine.specs import RunSpec

SHORT_RUN_COST = 0.01
"""How far below the best trial a shifted trial may score and still be trained long: one
point of validation accuracy, above the 0.3-0.6 points shifts cost after 5 epochs on
cnn-lab's samples and far below what they cost where they change the class."""


def augments(spec: RunSpec) -> bool:
    return any(step.strength > 0 for step in spec.dataset.augment)


def lengthen(run: RunState, measured: Measured, allot_s: float) -> None:
    """Switch ``run.spec`` to the best shifted trial's recipe when the rules above say so,
    and say why either way once the question arises (time beyond the unaugmented cap)."""
    if (
        run.plan.goal != "accuracy"
        or run.plan.final_epoch_cap is not None
        or run.asked.dataset.augment
        or augments(run.spec)
    ):
        return
    cap = run.plan.epoch_cap(augmented=False)
    fit = final_epochs(allot_s, measured.epoch_s, measured.setup_s)
    if fit <= cap or not run.scores:
        return
    shifted = [rid for rid, spec in run.specs.items() if augments(spec) and rid in run.trials]
    if not shifted:
        return
    best_score = max(run.scores[rid] for rid in run.trials)
    pick = max(shifted, key=run.scores.__getitem__)
    gap = best_score - run.scores[pick]
    number = run.trials[pick]
    step = run.specs[pick].dataset.augment[0]
    if gap > SHORT_RUN_COST:
        run.notes.reject(
            "final",
            f"{step.name} at {step.strength:g} (trial #{number}'s recipe), trained longer",
            f"it scored {gap * 100:.1f} points below the best trial, more than the "
            f"{SHORT_RUN_COST * 100:.0f} point shifts cost in a short trial, so the final run "
            f"keeps the unshifted recipe and its cap of {cap} epochs",
        )
        return
    run.spec = run.specs[pick].model_copy(update={"name": run.spec.name})
    run.notes.decide(
        "final",
        f"{step.name}={step.strength:g} (trial #{number}'s recipe)",
        f"the time left holds about {fit} epochs, more than the {cap} a recipe without "
        f"augmentation is capped at; trial #{number} with shifts scored {gap * 100:.1f} points "
        f"below the best trial after {run.specs[pick].train.epochs} epochs, within the "
        f"{SHORT_RUN_COST * 100:.0f} point shifts cost in a short trial, and shifted runs "
        "trained long scored higher in cnn-lab's benchmark, so the final run trains it",
    )


__all__ = ["SHORT_RUN_COST", "augments", "lengthen"]
