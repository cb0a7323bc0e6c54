"""Read one sweep into ``SweepReportData``: its trials, how they spread, what mattered.

The sweep itself is read back by engine/search/past.py (``load_sweep``): its trials from the
Optuna study when it is there, else rebuilt from the sweep's recorded runs, which the report
then says. Here they become the report's facts, tables and charts.
"""

from __future__ import annotations

from cnn_lab.engine.errors import UserError
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
from cnn_lab.engine.search.past import SweepSource, Trial, best_value, load_sweep
from cnn_lab.engine.search.spec import ParamSpec, SearchSpec
from cnn_lab.engine.store import RunRepository


def gather_sweep(
    store: RunRepository, ref: str | int, *, storage: str | None = None
) -> SweepReportData:
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


def _runs(store: RunRepository, trials: tuple[Trial, ...], metric: str) -> Table:
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
                    text.number(best_value(store, r.id, metric)),
                    text.duration(r.duration_s),
                )
            )
    return Table(
        ("Run", "Name", "Status", f"best {metric}", "Duration"),
        tuple(rows),
        (True, False, False, True, True),
    )
