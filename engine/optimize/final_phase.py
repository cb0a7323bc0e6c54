"""The final phase: the chosen recipe trained on the clock, so that it ends, annealed, in time."""

from __future__ import annotations

import math
from typing import Any

from cnn_lab.engine.optimize.long_run import augments, lengthen
from cnn_lab.engine.optimize.plan import FINAL_MARGIN, size_final
from cnn_lab.engine.optimize.state import Measured, RunState
from cnn_lab.engine.store import open_store


def final(run: RunState, measured: Measured) -> None:
    """Train the chosen recipe on the clock: it ends, annealed, when its time is up.

    The run is modelled as setup + epochs × epoch time (both measured, see
    ``calibrate``) inside the allotment less ``FINAL_MARGIN``, at most
    ``Plan.epoch_cap`` epochs (then its epochs end it); a run much longer than the
    trials adds the shifts the search tried, unless its paired trials showed they hurt
    (``long_run.lengthen``). The time that leaves is
    the run's ``time_limit_s``: its schedule follows the clock as well as its steps, so
    the one-cycle has annealed when the time is up and the run completes there; its
    epochs are set above the estimate (``FINAL_EPOCH_SLACK``) so that the clock, not
    an epoch count from an estimate, is what ends it. The deadline stop stays as a
    guard only. A target goal completes the run at the first validation reaching it.
    """
    began, allot = run.ledger.clock(), run.ledger.allot("final")
    lengthen(run, measured, allot)
    augmented = augments(run.spec)
    cap = run.plan.epoch_cap(augmented)
    size = size_final(allot, measured.epoch_s, measured.setup_s, cap)
    if size.epochs < 1:
        run.timed("final", allot, began, "skipped: no epoch fits what is left")
        run.notes.reject(
            "final",
            "final run",
            f"{allot:.1f} s left hold no epoch of {measured.epoch_s:.2f} s after "
            f"{measured.setup_s:.1f} s of setup; the best trial stands",
        )
        return
    from cnn_lab.engine.jobs.job import create_run
    from cnn_lab.engine.train.events import EpochEnd

    name = run.spec.name or "optimize"
    target = run.plan.target if run.plan.goal == "target" else None
    spec = run.spec.model_copy(
        update={
            "name": f"{name} final",
            "train": run.spec.train.model_copy(
                update={
                    "epochs": size.epochs_cap,
                    "time_limit_s": round(size.train_s, 3),
                    "stop_at_accuracy": target,
                }
            ),
        }
    )
    with open_store(run.db_path) as store:
        run_id = create_run(store, spec, experiment_id=run.experiment_id)
    run.run_ids.append(run_id)
    run.final_run_id = run_id
    best = [math.nan]
    show = run.stage("final")

    def on_event(event: Any) -> None:
        if isinstance(event, EpochEnd):
            best[0] = max(event.val_accuracy, best[0]) if best[0] == best[0] else event.val_accuracy
            show(f"epoch {event.epoch}", event.epoch, size.epochs)

    hard = run.stop_at(run.ledger.end)  # a guard: the run's own clock ends it first
    record = run.tuners.train(
        spec, run.db_path, run_id, emit=on_event, should_stop=hard, sample_system=False
    )
    summary = record.summary if record is not None else {}
    score = summary.get("best_val_accuracy", best[0])
    if score is not None and score == score:
        run.scores[run_id] = float(score)
        run.specs[run_id] = spec
    source = (
        f"measured over {measured.epochs_seen} trial epochs, validation included"
        if measured.epochs_seen
        else "estimated by the epoch probe"
    )
    if size.capped:
        why = (
            f"{size.epochs} epochs, the cap (at {measured.epoch_s:.2f} s an epoch, {source}, "
            f"about {size.epochs * measured.epoch_s:.0f} s of the {size.train_s:.0f} s left): "
            + ("the cap you set" if run.plan.final_epoch_cap else _CAP_REASONS[augmented])
            + ", so the time beyond them went to the search and the optimization ends early"
        )
    else:
        why = (
            f"{size.train_s:.0f} s of training at {measured.epoch_s:.2f} s an epoch ({source}) "
            f"after {measured.setup_s:.1f} s to set the run up, with a "
            f"{FINAL_MARGIN:.0%} margin: about {size.epochs} epochs; the schedule follows the "
            "clock, so its rate has annealed when the time is up"
        )
    reached = summary.get("target_reached_epoch")
    if reached is not None and target is not None:
        why += f"; it completed at epoch {reached}: validation accuracy reached {target:.0%}"
    choice = f"epochs={size.epochs}" if size.capped else f"time_limit_s={size.train_s:.0f}"
    run.notes.decide("final", choice, why)
    run.spec = spec
    status = getattr(record, "status", None)
    outcome = (
        "stopped"
        if run.user_stop()
        else ("out of time" if hard() or status == "stopped" else "done")
    )
    run.timed("final", allot, began, outcome)


_CAP_REASONS = {
    False: "without augmentation, longer one-cycle runs of a small network scored lower in "
    "cnn-lab's benchmark",
    True: "with augmentation, runs twice as long gained nothing in cnn-lab's benchmark",
}
"""Why the final run stops at the default cap, by whether its recipe augments its images
(see ``FINAL_EPOCH_CAP`` and ``AUGMENTED_EPOCH_CAP``)."""


__all__ = ["final"]
