"""A past sweep read back from the database, as the result a sweep that just ended sends.

The Sweep panel shows a sweep's results from the one dict its child sends at the end
(child.py: ``SweepResult.to_dict()`` plus ``stopped`` and ``importance``). Opening a sweep
the database remembers (one run before a restart, or with ``cnn-lab sweep`` on a terminal)
builds that same dict, so the panel draws it with the code that draws a live sweep.

The trials come from the sweep's Optuna study (``summarise``, exactly what the child uses).
When the study is gone (its journal deleted, moved, damaged, or kept in a shared storage
this machine does not see) they are rebuilt from the sweep's recorded runs, as the sweep
report does (report/sweep.py), and a sentence says so: the runs are never lost with it.

Reading a journal replays it, and importance fits a model over the trials: call this off
the GUI thread.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnn_lab.engine.errors import UserError
from cnn_lab.engine.search.spec import SearchSpec
from cnn_lab.engine.store import RunStore

if TYPE_CHECKING:
    import optuna

    from cnn_lab.engine.report.sweep import Trial

log = logging.getLogger(__name__)

REBUILT = (
    "so its trials are rebuilt from its recorded runs; parameter importance and resuming "
    "need the study"
)


@dataclass(frozen=True)
class OpenedSweep:
    """A past sweep's search and its result, in the shape of the sweep child's last report."""

    name: str
    search: SearchSpec
    result: dict[str, Any]
    """``SweepResult.to_dict()`` with ``stopped`` (False) and ``importance`` ({} if unknown)."""
    note: str = ""
    """Why the trials were rebuilt from the runs; empty when they come from the study."""


def open_sweep(db_path: str | Path, name: str, storage: str | None = None) -> OpenedSweep:
    """Read sweep ``name`` of ``db_path`` back; UserError (a sentence) when it cannot be.

    ``storage`` is where its study lives, the journal beside the database by default.
    """
    from cnn_lab.engine.report.sweep import run_trials
    from cnn_lab.engine.search.child import param_importance
    from cnn_lab.engine.search.history import SWEEP_KIND
    from cnn_lab.engine.search.study import summarise

    with RunStore.open(db_path) as store:
        # By name only: report/sweep.py's find_sweep takes digits for an id.
        rows = [r for r in store.experiments(SWEEP_KIND) if r["name"] == name]
        if not rows:
            raise UserError(
                f"There is no sweep {name!r} in {store.path}.",
                hint="It may have been deleted, or the database changed since the list was made.",
            )
        row = rows[-1]  # newest first: the oldest of that name, as the report picks
        try:
            search = SearchSpec.from_json(row["spec_json"])
        except UserError as exc:
            raise UserError(
                f"Sweep {row['name']!r} cannot be read: {exc.message}",
                hint="It may have been written by a newer cnn-lab.",
            ) from None
        study, note = load_study(str(row["name"]), db_path, storage)
        if study is not None:
            result = summarise(search, study).to_dict()
            result["importance"] = param_importance(search, db_path, storage)
        else:
            result = result_from_runs(search, str(row["name"]), run_trials(store, row, search))
    result["stopped"] = False
    return OpenedSweep(str(row["name"]), search, result, note)


def load_study(
    name: str, db_path: str | Path, storage: str | None = None
) -> tuple[optuna.Study | None, str]:
    """Study ``name`` and "", or None and the sentence that says why it is not there."""
    import optuna

    from cnn_lab.engine.search.storage import default_storage_path, open_storage

    where = storage or str(default_storage_path(db_path))
    if "://" not in where and not Path(where).is_file():  # opening it would create it
        return None, f"The sweep's study journal {where} is missing, {REBUILT}."
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        return optuna.load_study(study_name=name, storage=open_storage(storage, db_path)), ""
    except KeyError:
        return None, f"The sweep's study is not in {where}, {REBUILT}."
    except Exception as exc:  # a damaged journal must not cost the runs it describes
        log.warning("the study of sweep %s in %s cannot be read: %s", name, where, exc)
        why = "cannot be reached" if "://" in where else "cannot be read (it looks damaged)"
        return None, f"The sweep's study storage {where} {why}, {REBUILT}."


def result_from_runs(search: SearchSpec, name: str, trials: list[Trial]) -> dict[str, Any]:
    """A ``SweepResult`` dict from trials rebuilt from runs (no study, so no importance).

    A rebuilt trial has the state of its runs ("complete", else the first failed run's
    status), the mean of their best values, and its first run as its run.
    """
    from cnn_lab.engine.search.study import SweepResult, TrialOutcome

    outcomes = tuple(
        TrialOutcome(
            number=t.number,
            state=t.state,
            params=dict(t.params),
            value=t.value,
            run_id=t.run_ids[0] if t.run_ids else None,
            epochs=t.epochs,
            reason=t.reason or None,
            spread=t.spread,
        )
        for t in trials
    )
    scored = [o for o in outcomes if o.state == "complete" and o.value is not None]
    pick = max if search.maximise else min
    best = pick(scored, key=lambda o: float(o.value or 0.0)) if scored else None
    result = SweepResult(
        study_name=name,
        metric=search.metric,
        maximise=search.maximise,
        best_trial=best.number if best else None,
        best_params=dict(best.params) if best else {},
        best_value=best.value if best else None,
        best_run_id=best.run_id if best else None,
        trials_done=len(scored),
        trials_pruned=0,  # a pruned trial's run reads "stopped": it counts as not complete
        trials_failed=len(outcomes) - len(scored),
        epochs_spent=sum(o.epochs for o in outcomes),
        trials=outcomes,
        best_spread=best.spread if best else None,
    ).to_dict()
    result["importance"] = {}
    return result


__all__ = ["OpenedSweep", "load_study", "open_sweep", "result_from_runs"]
