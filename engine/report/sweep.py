"""Read one sweep into ``SweepReportData``: its trials, how they spread, what mattered.

A sweep is an experiment of kind "sweep" in the run store (search/history.py) holding its
SearchSpec; its trials live in the Optuna study beside the database (or in the storage
given). When the study is there, trials, states and values are the study's own, and
parameter importance is Optuna's (search/child.py). When it is not (a sweep run with a
shared ``--storage`` that this machine cannot see), the trials are rebuilt from the
sweep's recorded runs, and the report says so.
"""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnn_lab.engine.errors import SpecError, UserError
from cnn_lab.engine.report import text
from cnn_lab.engine.report.data import (
    ChartData,
    Fact,
    ParallelAxis,
    Series,
    SweepReportData,
    Table,
)
from cnn_lab.engine.report.environment import generated_line
from cnn_lab.engine.report.gather import hyperparameters
from cnn_lab.engine.search.spec import MAXIMISE, ParamSpec, SearchSpec
from cnn_lab.engine.store import COMPLETED, RunRecord, RunStore

SWEEP_KIND = "sweep"  # the same as search/history.py's, which imports Optuna


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
        return text.plain(
            {
                "number": self.number,
                "state": self.state,
                "params": self.params,
                "value": self.value,
                "spread": self.spread,
                "run_ids": list(self.run_ids),
                "epochs": self.epochs,
                "reason": self.reason,
            }
        )


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


def find_sweep(store: RunStore, ref: str | int) -> dict[str, Any]:
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
        f"There is no sweep {wanted!r} in {store.path}.",
        hint=f"The sweeps there are: {known}.",
    )


def load_sweep(store: RunStore, ref: str | int, storage: str | None = None) -> SweepSource:
    row = find_sweep(store, ref)
    try:
        search = SearchSpec.from_json(row["spec_json"])
    except SpecError as exc:
        raise UserError(f"Sweep {row['name']!r} cannot be read: {exc}") from None
    where = _storage(store.path, storage)
    study = _study(row["name"], store.path, storage, where)
    if study is not None:
        trials, queued = _study_trials(study)
        from cnn_lab.engine.search.child import param_importance

        importance = param_importance(search, store.path, storage) if trials else {}
        note = ""
    else:
        trials, queued, importance = run_trials(store, row, search), 0, {}
        note = (
            f"The sweep's study was not found in {where}, so its trials are rebuilt from its "
            "recorded runs, and parameter importance is not available."
        )
    return SweepSource(row, search, tuple(trials), queued, importance, note, where)


def _storage(db_path: Path, storage: str | None) -> str:
    from cnn_lab.engine.search.storage import default_storage_path

    return storage or str(default_storage_path(db_path))


def _study(name: str, db_path: Path, storage: str | None, where: str) -> Any:
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


def run_trials(store: RunStore, row: dict[str, Any], search: SearchSpec) -> list[Trial]:
    """Trials rebuilt from the sweep's runs: named "<study> #N" (and " fold K")."""
    groups: dict[int, list[RunRecord]] = {}
    for run_id in store.experiment_runs(int(row["id"])):
        record = store.get_run(run_id)
        match = _TRIAL_NAME.search(record.name)
        number = int(match.group(1)) if match else 100_000 + run_id
        groups.setdefault(number, []).append(record)
    trials = []
    for number, records in sorted(groups.items()):
        flat = dict(text.flatten(_spec_document(records[0])))
        params = {p.path: flat.get(p.path) for p in search.params}
        scores = [_best(store, r.id, search.metric) for r in records]
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


def _spec_document(record: RunRecord) -> dict[str, Any]:
    import json

    try:
        loaded = json.loads(record.spec_json)
    except ValueError:
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _best(store: RunStore, run_id: int, metric: str) -> float | None:
    pick = "MAX" if MAXIMISE.get(metric, True) else "MIN"
    row = store.db.execute(
        f"SELECT {pick}(value) FROM metrics WHERE run_id = ? AND key = ?", [run_id, metric]
    ).fetchone()
    return None if row is None or row[0] is None else float(row[0])


# ----------------------------------------------------------------------------- report


def gather_sweep(store: RunStore, ref: str | int, *, storage: str | None = None) -> SweepReportData:
    source = load_sweep(store, ref, storage)
    search, trials = source.search, source.trials
    paths = [p.path for p in search.params]
    best = _best_trial(search, trials)
    return SweepReportData(
        experiment_id=int(source.experiment["id"]),
        name=str(source.experiment["name"]),
        facts=_facts(source, best),
        trials=trial_table(search, trials),
        axes=(
            *(
                ParallelAxis(p.path, tuple(t.params.get(p.path) for t in trials), _is_log(p))
                for p in search.params
            ),
            ParallelAxis(search.metric, tuple(t.value for t in trials)),
        ),
        colour=tuple(t.value for t in trials),
        importance=tuple(sorted(source.importance.items(), key=lambda kv: kv[1], reverse=True)),
        importance_note=_importance_note(source, paths),
        history=_history(search, trials),
        space=_space(search),
        base=hyperparameters(search.base),
        runs=_runs(store, trials, search.metric),
        generated=generated_line(),
        notes=(source.note,) if source.note else (),
    )


def _is_log(param: ParamSpec) -> bool:
    return param.range is not None and param.range.log


def _best_trial(search: SearchSpec, trials: tuple[Trial, ...]) -> Trial | None:
    scored = [t for t in trials if t.value is not None]
    if not scored:
        return None
    pick = max if search.maximise else min
    return pick(scored, key=lambda t: t.value)  # type: ignore[arg-type, return-value]


def _facts(source: SweepSource, best: Trial | None) -> tuple[Fact, ...]:
    search, trials = source.search, source.trials
    states: dict[str, int] = {}
    for t in trials:
        states[t.state] = states.get(t.state, 0) + 1
    counts = ", ".join(f"{n} {state}" for state, n in sorted(states.items())) or "none yet"
    if source.queued:
        counts += f", {source.queued} queued"
    budget = search.budget()
    repeat = (
        f"{search.folds}-fold cross-validation"
        if search.folds
        else (f"{search.seeds} seeds per trial" if search.seeds > 1 else "one run per trial")
    )
    facts = [
        Fact("Strategy", search.strategy),
        Fact("Metric", f"{search.metric} ({'higher' if search.maximise else 'lower'} is better)"),
        Fact("Trials", counts),
        Fact("Budget", f"{budget} trials" if budget is not None else "until the time limit"),
        Fact("Pruner", search.pruner),
        Fact("Repeats", repeat),
        Fact("Time limit", text.duration(search.timeout_s) if search.timeout_s else "none"),
        Fact("Epochs spent", f"{sum(t.epochs for t in trials):,}"),
        Fact("Created", text.when(source.experiment.get("created_at"))),
        Fact("Study storage", source.storage),
    ]
    if best is not None:
        facts.insert(
            3,
            Fact(
                "Best trial",
                f"#{best.number}: {text.number(best.value)}"
                + (f" ± {text.number(best.spread)}" if best.spread else "")
                + (f", run {best.run_ids[0]}" if best.run_ids else ""),
            ),
        )
        facts.insert(
            4,
            Fact(
                "Best parameters",
                ", ".join(f"{k} = {text.value(v)}" for k, v in best.params.items()),
            ),
        )
    return tuple(facts)


def trial_table(search: SearchSpec, trials: tuple[Trial, ...]) -> Table:
    paths = [p.path for p in search.params]
    columns = ("#", "State", *paths, search.metric, "Spread", "Runs", "Epochs", "Reason")
    rows = tuple(
        (
            str(t.number),
            t.state,
            *(text.value(t.params.get(p)) if p in t.params else text.MISSING for p in paths),
            text.number(t.value),
            text.number(t.spread),
            ", ".join(str(r) for r in t.run_ids) or text.MISSING,
            str(t.epochs),
            t.reason,
        )
        for t in trials
    )
    numeric = (True, False, *(False for _ in paths), True, True, False, True, False)
    return Table(columns, rows, numeric)


def _importance_note(source: SweepSource, paths: list[str]) -> str:
    if source.importance:
        return ""
    if source.note:
        return "Parameter importance needs the sweep's study."
    if len(paths) < 2:
        return "Importance compares searched parameters; this sweep searches only one."
    return "Not enough complete trials yet to tell which parameter matters (it needs three)."


def _history(search: SearchSpec, trials: tuple[Trial, ...]) -> ChartData | None:
    scored = [t for t in trials if t.value is not None]
    if not scored:
        return None
    best: list[float] = []
    for t in scored:
        v = float(t.value)  # type: ignore[arg-type]
        best.append(v if not best else (max if search.maximise else min)(best[-1], v))
    xs = tuple(float(t.number) for t in scored)
    return ChartData(
        "Trial values and the best so far",
        "trial",
        search.metric,
        (
            Series("trial value", xs, tuple(float(t.value) for t in scored), "points"),  # type: ignore[arg-type]
            Series("best so far", xs, tuple(best)),
        ),
    )


def _space(search: SearchSpec) -> Table:
    rows = []
    for p in search.params:
        if p.range is not None:
            r = p.range
            how = f"{r.low:g} to {r.high:g}" + (" (log)" if r.log else "")
            how += f", step {r.step:g}" if r.step else ""
            how += ", integers" if r.integer else ""
            rows.append((p.path, "range", how))
        else:
            kind = "values" if p.values is not None else "choices"
            options = p.values if p.values is not None else p.choices or ()
            rows.append((p.path, kind, ", ".join(text.value(v) for v in options)))
    return Table(("Parameter", "Kind", "Searched"), tuple(rows))


def _runs(store: RunStore, trials: tuple[Trial, ...], metric: str) -> Table:
    rows = []
    for t in trials:
        for run_id in t.run_ids:
            try:
                r = store.get_run(run_id)
            except UserError:
                rows.append((str(run_id), f"#{t.number}", "deleted", text.MISSING, text.MISSING))
                continue
            rows.append(
                (
                    str(r.id),
                    r.name,
                    r.status,
                    text.number(_best(store, r.id, metric)),
                    text.duration(r.duration_s),
                )
            )
    return Table(
        ("Run", "Name", "Status", f"best {metric}", "Duration"),
        tuple(rows),
        (True, False, False, True, True),
    )
