"""Read one run from the store into ``RunReportData``: the only place a run report reads.

Curves are read downsampled (store/curves.py keeps each bucket's extremes, so spikes
survive) and system gauges thinned the same way, so a week-long run gives a report of the
same size as a minute-long one. The CSV and JSON exports, not this, carry every point.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from cnn_lab.engine.report import text
from cnn_lab.engine.report.architecture import architecture_info, unmeasured
from cnn_lab.engine.report.data import ChartData, Fact, RunReportData, Series, Table
from cnn_lab.engine.report.dataset_info import (
    Loaded,
    class_table,
    dataset_facts,
    examples,
    import_report,
    load_images,
)
from cnn_lab.engine.report.environment import generated_line, run_environment, writer_environment
from cnn_lab.engine.report.groups import CURVE_GROUPS, SYSTEM_GROUPS, group_keys
from cnn_lab.engine.report.optimize_info import optimize_info
from cnn_lab.engine.report.verdicts import bottleneck_info, evaluation_info
from cnn_lab.engine.specs import RunSpec
from cnn_lab.engine.store import RunRecord, RunRepository
from cnn_lab.engine.util.formatting import format_bytes

CURVE_BUCKETS = 300
"""Buckets per training curve: two points each, plenty for a chart 640 px wide."""
SYSTEM_BUCKETS = 150
"""Buckets per system gauge (a few hundred points at most)."""


def gather_run(
    store: RunRepository, run_id: int, *, images: bool = True, architecture: bool = True
) -> RunReportData:
    """Everything a report of ``run_id`` shows. ``RunNotFound`` for an unknown run.

    ``images`` loads the dataset for example and mistake thumbnails (seconds for a large
    dataset); ``architecture`` measures the network (loads torch).
    """
    record = store.get_run(run_id)
    spec = RunSpec.from_json(record.spec_json)
    notes: list[str] = []
    loaded = load_images(spec, record.summary.get("input_shape")) if images else Loaded(None)
    if loaded.note:
        notes.append(loaded.note)
    report = import_report(record, loaded)
    artifacts = store.artifacts(run_id)
    arch = architecture_info(spec, record, artifacts, loaded) if architecture else unmeasured(spec)
    system, system_table = _system(store, record)
    return RunReportData(
        run_id=record.id,
        name=record.name,
        status=record.status,
        reason=record.reason,
        hint=record.hint,
        headline=_headline(record),
        overview=_overview(record, spec),
        dataset=dataset_facts(spec, record, report, loaded),
        classes=class_table(record, report, loaded),
        examples=examples(loaded),
        architecture=arch,
        hyperparameters=hyperparameters(spec),
        curves=_curves(store, run_id),
        system=system,
        system_table=system_table,
        bottleneck=bottleneck_info(record),
        evaluation=evaluation_info(record, loaded),
        environment=run_environment(record) + writer_environment(),
        artifacts=_artifacts(artifacts),
        generated=generated_line(),
        notes=tuple(notes),
        optimize=optimize_info(store, record),
    )


def _headline(record: RunRecord) -> tuple[Fact, ...]:
    s = record.summary
    best = text.percent(s.get("best_val_accuracy"))
    if s.get("best_epoch") is not None and best != text.MISSING:
        best += f" (epoch {s['best_epoch']})"
    return (
        Fact("Status", record.status),
        Fact("Duration", text.duration(record.duration_s)),
        Fact("Epochs", text.number(s.get("epochs"))),
        Fact("Best val accuracy", best),
        Fact("Test accuracy", text.percent(s.get("test_accuracy"))),
        Fact("Final train loss", text.number(s.get("final_train_loss"))),
        Fact("Training speed", f"{text.number(s.get('train_images_per_s'))} images/s"),
        Fact("Parameters", text.number(s.get("params"))),
    )


def _overview(record: RunRecord, spec: RunSpec) -> tuple[Fact, ...]:
    facts = [
        Fact("Run", str(record.id)),
        Fact("Name", record.name or "(unnamed)"),
        # The store's tags: the ones the run was given, as edited since in the Runs panel.
        Fact("Tags", ", ".join(record.tags or spec.tags) or "none"),
        *([Fact("Note", record.note)] if record.note else []),
        Fact("Dataset", record.dataset),
        Fact("Model", record.model),
        Fact("Device", str(record.summary.get("device") or record.device or "unknown")),
        Fact("Created", text.when(record.created_at)),
        Fact("Started", text.when(record.started_at)),
        Fact("Ended", text.when(record.ended_at)),
        Fact("Spec hash", record.spec_hash),
    ]
    if record.experiment_id is not None:
        facts.append(Fact("Experiment", str(record.experiment_id)))
    if record.summary.get("train_time_s") is not None:
        facts.append(Fact("Time training", text.duration(record.summary["train_time_s"])))
    if record.summary.get("compile_s"):
        facts.append(Fact("Compile time", text.duration(record.summary["compile_s"])))
    return tuple(facts)


def hyperparameters(spec: RunSpec) -> Table:
    """Every field of the spec (data, architecture, training) as a dotted path and value."""
    document = spec.model_dump(mode="json", exclude={"name", "tags", "schema_version"})
    rows = tuple((path, text.value(item)) for path, item in text.flatten(document))
    return Table(("Setting", "Value"), rows)


def _curves(store: RunRepository, run_id: int) -> tuple[ChartData, ...]:
    charts = []
    for title, unit, keys in group_keys(store.metric_keys(run_id), CURVE_GROUPS):
        series = []
        for key in keys:
            points = store.curve(run_id, key, CURVE_BUCKETS)
            series.append(
                Series(key, tuple(float(p.step) for p in points), tuple(p.value for p in points))
            )
        charts.append(ChartData(title, "step", unit, tuple(series)))
    return tuple(charts)


def _system(store: RunRepository, record: RunRecord) -> tuple[tuple[ChartData, ...], Table]:
    gauges = store.gauge_stats(record.id)
    table = Table(
        ("Gauge", "Samples", "Mean", "Min", "Max"),
        tuple(
            (g.key, f"{g.count:,}", text.number(g.mean), text.number(g.low), text.number(g.high))
            for g in gauges
        ),
        (False, True, True, True, True),
    )
    if not gauges:
        return (), table
    start = record.started_at or min(g.first_time for g in gauges)
    charts = []
    for title, unit, keys in group_keys([g.key for g in gauges], SYSTEM_GROUPS):
        series = []
        for key in keys:
            samples = store.system_samples(record.id, key)
            xs, ys = thin([s.time - start for s in samples], [s.value for s in samples])
            series.append(Series(key, tuple(xs), tuple(ys)))
        charts.append(ChartData(title, "seconds since start", unit, tuple(series)))
    return tuple(charts), table


def thin(
    xs: Sequence[float], ys: Sequence[float], buckets: int = SYSTEM_BUCKETS
) -> tuple[list[float], list[float]]:
    """At most ``2 × buckets`` points: each bucket's lowest and highest, in order."""
    if len(xs) <= 2 * buckets:
        return list(xs), list(ys)
    out: list[tuple[float, float]] = []
    size = len(xs) / buckets
    for b in range(buckets):
        chunk = [
            (xs[i], ys[i])
            for i in range(int(b * size), int((b + 1) * size))
            if not math.isnan(ys[i])
        ]
        if not chunk:
            continue
        low = min(chunk, key=lambda p: p[1])
        high = max(chunk, key=lambda p: p[1])
        out += sorted({low, high})
    return [p[0] for p in out], [p[1] for p in out]


def _artifacts(artifacts: list[dict]) -> Table:  # type: ignore[type-arg]
    return Table(
        ("Kind", "File", "Size", "SHA-256"),
        tuple(
            (
                str(a.get("kind", "")),
                str(a.get("path", "")),
                format_bytes(int(a.get("bytes") or 0)),
                str(a.get("sha256", ""))[:16],
            )
            for a in artifacts
        ),
        (False, False, True, False),
    )
