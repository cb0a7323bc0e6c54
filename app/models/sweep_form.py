"""The Sweep panel's state and rules, without its widgets.

What the panel shows follows from a few facts: which sweep is on the results side (one
launched here, or a past one opened from the database), whether one is running, and the
last epoch the probe timed. This model holds those facts and answers the panel's questions
from them: which empty-state message shows, what the estimate, best-trial, importance and
progress sentences say, and what "Train the best" trains. The time estimate itself is the
engine's (engine/search/estimates.py); the past sweeps' chooser has its own model
(sweep_past.py).
"""

from __future__ import annotations

from typing import Any

from cnn_lab.engine.search.estimates import RECENT_RUNS, MeasuredEpoch, estimate_text, trial_count
from cnn_lab.engine.search.past import OpenedSweep
from cnn_lab.engine.search.paths import apply
from cnn_lab.engine.search.spec import SearchSpec
from cnn_lab.engine.specs import RunSpec
from cnn_lab.engine.store import RunRecord, RunRepository
from cnn_lab.engine.store import status as st

Curve = tuple[list[int], list[float]]

CURVE_KEY = "val.accuracy"
"""The stored per-epoch metric drawn for the selected trials."""

NO_SWEEP = (
    "No sweep yet",
    "A sweep trains the current recipe several times, each trial with other values for the "
    "fields you vary, to find the values that do best. On the left, pick a field, press Add "
    "parameter and type the values to try (or a range); choose a strategy (grid tries every "
    "combination, random and TPE draw the number of trials you set) and press Launch sweep. "
    "The trials table, the trials' validation curves, parallel coordinates and each "
    "parameter's importance appear here as the trials end.",
)
WAITING = (
    "Waiting for the first trial",
    "Each trial's result appears here when it ends; the bar on the left says how many are "
    "done and how long the rest should take.",
)
NO_TRIALS = (
    "No trial finished",
    "The sweep ended before its first trial did (see the sentence on the left). Launch it "
    "again to resume it.",
)
OPENED_EMPTY = (
    "No trial finished",
    "This sweep has no finished trial yet. If its list entry says unfinished, press Resume "
    "to run its trials.",
)
IMPORTANCE_LATER = "Parameter importance appears after three trials."
IMPORTANCE_NEEDS_STUDY = "Parameter importance needs the sweep's study."


def plural(count: int, word: str) -> str:
    return f"{count} {word}{'s' if count != 1 else ''}"


def importance_text(importance: dict[str, float]) -> str:
    """Each parameter's share as a bar of up to 30 blocks, largest first (monospace)."""
    if not importance:
        return "Parameter importance needs three or more finished trials."
    lines = [
        f"{path:<28} {'█' * max(1, round(share * 30))} {share:.0%}"
        for path, share in sorted(importance.items(), key=lambda kv: -kv[1])
    ]
    return "How much each parameter moved the value:\n\n" + "\n".join(lines)


def best_text(result: dict[str, Any]) -> str:
    """``Best: trial 2, val.accuracy 0.9100 (run 7).``; empty before any trial counts."""
    best = result.get("best_value")
    if best is None:
        return ""
    run = result.get("best_run_id")
    return f"Best: trial {result['best_trial']}, {result['metric']} {best:.4f}" + (
        f" (run {run})." if run is not None else "."
    )


def launchable(search: SearchSpec) -> SearchSpec:
    """``search`` if it can launch; a grid must be enumerable (UserError, a sentence, if not)."""
    if search.strategy == "grid":
        search.check_grid()
    return search


def finished_text(result: dict[str, Any], done: int) -> str:
    """What the progress line says when a sweep's child ends it, stopped or spent."""
    if result.get("stopped"):
        return f"Stopped after {done} trials; launch the same sweep again to resume it."
    return f"Done: {done} trials."


class SweepForm:
    """The sweep on the results side, what is running, the past sweeps, and the probe's epoch."""

    def __init__(self) -> None:
        self.search: SearchSpec | None = None
        """The sweep on the results side: launched last, or opened."""
        self.result: dict[str, Any] | None = None
        """Its end: the child's result dict, or one read back from the database."""
        self.opened: OpenedSweep | None = None
        """The past sweep shown, until a sweep launches or the database changes."""
        self.total: int | None = None
        """Trials the running sweep will run (None: a budget in time only)."""
        self.sweeping = False
        """From launch on (the runner says running only once its child has started)."""
        self.measured: MeasuredEpoch | None = None
        self.probed_hash = ""
        """The spec hash of the base the probe is timing now."""
        self.history: list[RunRecord] = []
        """The store's newest finished runs as last read: they time an unprobed sweep."""

    # ------------------------------------------------------------------ results side

    def clear(self) -> None:
        """Nothing on the results side (before a launch, an opened sweep, another database)."""
        self.search = self.result = self.opened = None

    def launched(self, search: SearchSpec) -> None:
        self.clear()
        self.search, self.total = search, trial_count(search)

    def show_opened(self, opened: OpenedSweep) -> None:
        self.clear()
        self.search, self.opened, self.result = opened.search, opened, opened.result

    def empty_message(self, *, has_trials: bool, running: bool) -> tuple[str, str] | None:
        """The results side's empty state (title, text), or None when it shows trials."""
        if has_trials:
            return None
        if running:
            return WAITING
        if self.opened is not None:
            return OPENED_EMPTY
        if self.search is not None:
            return NO_TRIALS
        return NO_SWEEP

    def opened_text(self, done: int) -> str:
        name = self.opened.name if self.opened else ""
        return f"Sweep {name}: {plural(done, 'trial')}, read from the database."

    def owner(self) -> str | None:
        """The name the running sweep holds the job queue's slots by."""
        return f"sweep {self.search.study_name()}" if self.search is not None else None

    def progress_text(self, done: int) -> str:
        """A budget in time only has no count for the bar to go by: the label counts instead."""
        return "" if self.total else f"{done} trials finished."

    def best_on_all_data(self) -> tuple[RunSpec, str] | None:
        """The best trial's run on all the data, and its parameters as a line; None before a
        sweep has a best trial.

        "Train the best on all the data" puts this run into the recipe (state, so the other
        panels show it): the dataset's quick-trial ``limit`` and k-fold split are lifted,
        since a sweep's trials often train on a part of the data for speed.
        """
        search, result = self.search, self.result
        if search is None or not result or not result.get("best_params"):
            return None
        spec = apply(search.base, result["best_params"])
        dataset = spec.dataset.model_copy(update={"limit": None, "folds": None, "fold": 0})
        shown = ", ".join(f"{k}={v}" for k, v in result["best_params"].items())
        return spec.model_copy(update={"dataset": dataset}), shown

    # ------------------------------------------------------------------ estimate

    def probe_finished(self, result: dict[str, Any]) -> None:
        self.measured = MeasuredEpoch.from_probe(self.probed_hash, result)

    def estimate(self, search: SearchSpec, at_once: int) -> tuple[str, bool]:
        """The estimate sentence, from the probe's epoch when it timed this base, else from
        the store's newest finished runs as last read (``take_history``); and whether those
        were needed, so the panel reads them again (runs finish, and another sweep may)."""
        asked: list[bool] = []

        def history() -> list[RunRecord]:
            asked.append(True)
            return self.history

        text = estimate_text(search, at_once=at_once, measured=self.measured, history=history)
        return text, bool(asked)

    def take_history(self, runs: list[RunRecord]) -> bool:
        """Keep the newest finished runs as read (``read_history``); whether they changed."""
        changed = runs != self.history
        self.history = list(runs)
        return changed


def read_history(store: RunRepository) -> list[RunRecord]:
    """The newest finished runs, which time a sweep that no probe has timed."""
    return store.list_runs(status=st.COMPLETED, limit=RECENT_RUNS)


def trial_curves(store: RunRepository, run_ids: list[int]) -> dict[str, Curve]:
    """The stored validation accuracy, per epoch, of each run: ``run N`` -> (epochs, values)."""
    curves: dict[str, Curve] = {}
    for run_id in run_ids:
        points = store.metrics(run_id, CURVE_KEY)
        curves[f"run {run_id}"] = ([p.epoch for p in points], [p.value for p in points])
    return curves
