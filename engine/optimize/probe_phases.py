"""The measuring phases: the epoch probe and batch check (and the refusals they allow), the
speed advisor over the settings worth probing, and the LR range test.

Functions over the runner's ``RunState``; each is bounded by the phase's deadline (the stop
flag) and by a size chosen from the measured step time.
"""

from __future__ import annotations

from cnn_lab.engine.errors import Cancelled, UserError
from cnn_lab.engine.optimize.plan import (
    DEFAULT_SHARES,
    check_budget,
    check_dataset,
    check_fits,
    rate_steps,
)
from cnn_lab.engine.optimize.state import Measured, RunState

BATCH_CHECK_LIMIT = 256
"""The batch check tries sizes up to this (or the spec's batch, if larger): enough to say
whether the network fits at all, bounded so the check costs a few steps."""
COMPILE_PAYS_S = 600.0
"""torch.compile's first step takes tens of seconds; below this final allotment it is not
probed, because it could not pay that back."""


def measure(run: RunState) -> Measured:
    """The epoch probe and the batch check, and the refusals they allow."""
    try:
        return _measure(run)
    except Cancelled:
        if run.user_stop():
            raise UserError("Stopped while measuring; nothing was recorded.") from None
        raise UserError(
            f"A budget of {run.plan.budget_s:.0f} s is too small: it ended while the "
            "data was read and one epoch measured.",
            hint="Give a larger budget, or fewer or smaller images.",
        ) from None


def _measure(run: RunState) -> Measured:
    stop = run.stop_at(run.ledger.end)
    epoch = run.tuners.epoch(run.spec, stop, run.stage("speed"))
    check_dataset(epoch.train_images, epoch.val_images)
    if epoch.images_per_s <= 0:
        raise UserError(
            f"A budget of {run.plan.budget_s:.0f} s is too small: not one training step "
            "finished within it.",
            hint="Give a larger budget, or fewer or smaller images.",
        )
    limit = max(run.spec.train.batch_size, min(BATCH_CHECK_LIMIT, epoch.train_images))
    fits = run.tuners.batch(run.spec, limit, stop, run.stage("speed"))
    check_fits(fits.max_batch, fits.message)
    check_budget(run.plan.budget_s, run.ledger.elapsed(), epoch.setup_s, epoch.epoch_s)
    run.notes.decide(
        "speed",
        f"batch_size={run.spec.train.batch_size}",
        f"batch {run.spec.train.batch_size} fits; the largest that fits is "
        f"{fits.max_batch} ({fits.message})",
    )
    return Measured(epoch.epoch_s, epoch.setup_s, epoch.images_per_s)


# ------------------------------------------------------------------ phases


def speed(run: RunState, measured: Measured, allot: float, began: float) -> None:
    deadline = began + allot
    left = deadline - run.ledger.clock()
    if left <= measured.setup_s or run.user_stop():
        run.timed("speed", allot, began, "skipped: the measurements used its share")
        run.notes.reject(
            "speed",
            "speed probes",
            f"skipped: reading the data and measuring one epoch took "
            f"{run.ledger.clock() - began:.1f} s of its {allot:.1f} s share, and one probe "
            f"needs about {measured.setup_s:.1f} s to set up; your speed settings stand",
        )
        return
    options = None
    if run.plan.budget_s * DEFAULT_SHARES["final"] < COMPILE_PAYS_S:
        from cnn_lab.engine.tune.speed_options import select_options

        options = [o.name for o in select_options(None) if o.name != "compile"]
        run.notes.reject(
            "speed",
            "compile=True",
            f"not probed: compiling takes tens of seconds, which a "
            f"{run.plan.budget_s / 60:.0f}-minute budget cannot pay back",
        )
    min_seconds = min(0.5, max(0.05, left / 40))
    advice = run.tuners.speed(
        run.spec, options, min_seconds, run.stop_at(deadline), run.stage("speed")
    )
    for finding in advice.findings:
        rate = f"{finding.images_per_s:.0f} images/s" if finding.images_per_s else "no rate"
        ratio = f"{finding.speedup:.2f}x as fast as" if finding.speedup else "not comparable to"
        sentence = (
            f"{finding.option}={finding.value} was {ratio} your settings "
            f"on {advice.device} ({rate})"
        )
        if finding.accepted:
            run.notes.decide("speed", f"{finding.option}={finding.value}", sentence)
        else:
            run.notes.reject("speed", f"{finding.option}={finding.value}", sentence)
    if advice.changes:
        train = run.spec.train.model_copy(update=dict(advice.changes))
        run.spec = run.spec.model_copy(update={"train": train})
        if advice.speedup and advice.speedup > 0:
            share = measured.images_per_s / (measured.images_per_s * advice.speedup)
            measured.epoch_s *= share
            measured.images_per_s *= advice.speedup
    else:
        run.notes.decide("speed", "your settings", advice.message)
    run.timed("speed", allot, began, "stopped" if run.user_stop() else "done")


def rate(run: RunState, measured: Measured) -> None:
    began, allot = run.ledger.clock(), run.ledger.allot("rate")
    step_s = run.spec.train.batch_size / measured.images_per_s
    steps = rate_steps(allot - measured.setup_s, step_s)
    if steps == 0:
        run.timed("rate", allot, began, "skipped: its share holds too few steps")
        run.notes.reject(
            "rate",
            "range test",
            f"{allot:.1f} s hold too few steps; lr stays {run.spec.train.lr:.1e}",
        )
        return
    found = run.tuners.rate(run.spec, steps, run.stop_at(began + allot), run.stage("rate"))
    run.found_lr = found.suggestion
    if found.suggestion is not None:
        lr = found.suggestion
        run.spec = run.spec.model_copy(
            update={"train": run.spec.train.model_copy(update={"lr": lr})}
        )
        run.notes.decide(
            "rate", f"lr={lr:.1e}", f"the loss fell fastest around {lr:.1e} ({found.message})"
        )
    else:
        run.notes.reject("rate", "range test", f"{found.message}; lr stays {run.spec.train.lr:.1e}")
    run.timed("rate", allot, began, "stopped" if run.user_stop() else "done")


__all__ = ["measure", "rate", "speed"]
