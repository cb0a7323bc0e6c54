"""A past sweep read back from the database: for the sweep report, and for the Sweep panel as
the result a sweep that just ended sends.

``load_sweep`` reads a sweep for its report (report/sweep.py, report/sweep_export.py): its
search, its trials (``Trial``) from the study or, without one, rebuilt from its runs
(``run_trials``), and parameter importance.

The Sweep panel shows a sweep's results from the one dict its child sends at the end
(child.py: ``SweepResult.to_dict()`` plus ``stopped`` and ``importance``). Opening a sweep
the database remembers (one run before a restart, or with ``cnn-lab sweep`` on a terminal)
builds that same dict, so the panel draws it with the code that draws a live sweep.

The trials come from the sweep's Optuna study (``summarise``, exactly what the child uses).
When the study is gone (its journal deleted, moved, damaged, or kept in a shared storage
this machine does not see) they are rebuilt from the sweep's recorded runs, as the sweep
report's are (``run_trials``), and a sentence says so: the runs are never lost with it.

Reading a journal replays it, and importance fits a model over the trials: call this off
the GUI thread.
"""

from __future__ import annotations

import logging
import re
import statistics
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnn_lab.engine.errors import SpecError, UserError
from cnn_lab.engine.search.history import SWEEP_KIND
from cnn_lab.engine.search.spec import MAXIMISE, SearchSpec
from cnn_lab.engine.store import COMPLETED, RunRecord, RunRepository, open_store
from cnn_lab.engine.store.compare import flatten_spec, parse_spec
from cnn_lab.engine.store.locations import describe

if TYPE_CHECKING:
    import optuna

log = logging.getLogger(__name__)

REBUILT = (
    "so its trials are rebuilt from its recorded runs; parameter importance and resuming "
    "need the study"
)


@dataclass(frozen=True)
class Trial:
    """One trial as a report lists it, from the study or rebuilt from its runs."""

    number: int
    state: str
    params: dict[str, Any]
    value: float | None
    spread: float | None
    run_ids: tuple[int, ...]
    epochs: int
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """Its fields, for JSON (a NaN value stays NaN: report/text.py's plain makes it null)."""
        return {**asdict(self), "run_ids": list(self.run_ids)}


@dataclass(frozen=True)
class SweepSource:
    """A sweep found in the store: its experiment row, search, trials and importance."""

    experiment: dict[str, Any]
    search: SearchSpec
    trials: tuple[Trial, ...]
    queued: int
    importance: dict[str, float]
    note: str
    storage: str


def find_sweep(store: RunRepository, ref: str | int) -> dict[str, Any]:
    """The sweep experiment with id ``ref`` (digits) or name ``ref``; UserError if none."""
    sweeps = store.experiments(SWEEP_KIND)
    wanted = str(ref).strip()
    if wanted.isdigit():
        found = [s for s in sweeps if int(s["id"]) == int(wanted)]
    else:
        found = [s for s in sweeps if s["name"] == wanted]
    if found:
        return found[-1]  # experiments() is newest first: the oldest of that name
    known = ", ".join(f"{s['id']} ({s['name']})" for s in sweeps[:10]) or "none yet"
    raise UserError(
        f"There is no sweep {wanted!r} in {describe(store.location)}.",
        hint=f"The sweeps there are: {known}.",
    )


def load_sweep(store: RunRepository, ref: str | int, storage: str | None = None) -> SweepSource:
    row = find_sweep(store, ref)
    try:
        search = SearchSpec.from_json(row["spec_json"])
    except SpecError as exc:
        raise UserError(f"Sweep {row['name']!r} cannot be read: {exc}") from None
    where = _storage(store.location, storage)
    study = _study(row["name"], store.location, storage, where)
    if study is not None:
        trials, queued = _study_trials(study)
        from cnn_lab.engine.search.child import param_importance

        importance = param_importance(search, store.location, storage) if trials else {}
        note = ""
    else:
        trials, queued, importance = run_trials(store, row, search), 0, {}
        note = (
            f"The sweep's study was not found in {where}, so its trials are rebuilt from its "
            "recorded runs, and parameter importance is not available."
        )
    return SweepSource(row, search, tuple(trials), queued, importance, note, where)


def _storage(db_path: str, storage: str | None) -> str:
    from cnn_lab.engine.search.storage import default_storage

    return storage or default_storage(db_path)


def _study(name: str, db_path: str, storage: str | None, where: str) -> Any:
    """The sweep's Optuna study, or None when its storage or the study is not there."""
    if "://" not in where and not Path(where).is_file():
        return None  # opening a missing journal would create an empty one
    import optuna

    from cnn_lab.engine.search.storage import open_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        return optuna.load_study(study_name=name, storage=open_storage(storage, db_path))
    except KeyError:
        return None


def _study_trials(study: Any) -> tuple[list[Trial], int]:
    from cnn_lab.engine.search.storage import INTERRUPTED

    trials, queued = [], 0
    for t in study.get_trials(deepcopy=False):
        state = t.state.name.lower()
        if state == "waiting":
            queued += 1
            continue
        if state == "fail" and t.user_attrs.get(INTERRUPTED):
            state = "interrupted"
        run_ids = t.user_attrs.get("run_ids") or (
            [t.user_attrs["run_id"]] if t.user_attrs.get("run_id") is not None else []
        )
        trials.append(
            Trial(
                number=t.number,
                state="failed" if state == "fail" else state,
                params=dict(t.params),
                value=t.value if state == "complete" else None,
                spread=t.user_attrs.get("spread"),
                run_ids=tuple(int(r) for r in run_ids),
                epochs=int(t.user_attrs.get("epochs", 0)),
                reason=str(t.user_attrs.get("reason") or ""),
            )
        )
    return trials, queued


_TRIAL_NAME = re.compile(r" #(\d+)(?: fold \d+)?$")


def run_trials(store: RunRepository, row: dict[str, Any], search: SearchSpec) -> list[Trial]:
    """Trials rebuilt from the sweep's runs: named "<study> #N" (and " fold K")."""
    groups: dict[int, list[RunRecord]] = {}
    for run_id in store.experiment_runs(int(row["id"])):
        record = store.get_run(run_id)
        match = _TRIAL_NAME.search(record.name)
        number = int(match.group(1)) if match else 100_000 + run_id
        groups.setdefault(number, []).append(record)
    trials = []
    for number, records in sorted(groups.items()):
        flat = flatten_spec(parse_spec(records[0].spec_json))
        params = {p.path: flat.get(p.path) for p in search.params}
        scores = [best_value(store, r.id, search.metric) for r in records]
        failed = [r for r in records if r.status != COMPLETED]
        finite = [s for s in scores if s is not None]
        done = not failed and len(finite) == len(records)
        trials.append(
            Trial(
                number=number,
                state="complete" if done else (failed[0].status if failed else "no value"),
                params=params,
                value=statistics.fmean(finite) if done else None,
                spread=statistics.pstdev(finite) if done else None,
                run_ids=tuple(r.id for r in records),
                epochs=sum(int(r.summary.get("epochs") or 0) for r in records),
                reason=(failed[0].reason or "") if failed else "",
            )
        )
    return trials


def best_value(store: RunRepository, run_id: int, metric: str) -> float | None:
    """The best value run ``run_id`` recorded for ``metric`` (the highest, or the lowest for a
    metric scored lower-is-better)."""
    return store.best_metric(run_id, metric, highest=MAXIMISE.get(metric, True))


# ----------------------------------------------------------------------- the Sweep panel


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
    from cnn_lab.engine.search.child import param_importance
    from cnn_lab.engine.search.study import summarise

    with open_store(db_path) as store:
        # By name only: find_sweep takes digits for an id.
        rows = [r for r in store.experiments(SWEEP_KIND) if r["name"] == name]
        if not rows:
            raise UserError(
                f"There is no sweep {name!r} in {describe(store.location)}.",
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

    from cnn_lab.engine.search.storage import default_storage, open_storage

    where = storage or default_storage(db_path)
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
