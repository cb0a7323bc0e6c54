"""Comparing runs: spec differences, result tables, mean-and-spread curves, seed groups."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cnn_lab.engine.specs import DatasetSpec, RunSpec, TrainSpec
from cnn_lab.engine.specs.dataset import AugmentStep
from cnn_lab.engine.store import MetricPoint, RunRecord, RunStore
from cnn_lab.engine.store.compare import (
    METRIC_COLUMNS,
    MISSING,
    aggregate_curves,
    axis_for,
    best_row,
    flatten_spec,
    group_metric_table,
    group_runs,
    metric_table,
    parse_spec,
    read_curves,
    short_number,
    spec_diff,
)


def _spec(name: str = "", **train: Any) -> RunSpec:
    dataset = train.pop("dataset", DatasetSpec())
    return RunSpec(name=name, dataset=dataset, train=TrainSpec(**train))


def _record(run_id: int, spec: RunSpec, **summary: Any) -> RunRecord:
    return RunRecord(
        id=run_id,
        name=spec.name,
        status="completed",
        reason=None,
        hint=None,
        spec_json=spec.to_json(),
        spec_hash=spec.spec_hash(),
        dataset="sample:shapes",
        model="tiny",
        device="cpu",
        host=None,
        pid=None,
        created_at=1000.0 + run_id,
        started_at=100.0,
        ended_at=100.0 + 10 * run_id,
        heartbeat_at=None,
        summary=summary,
    )


def _points(values: dict[int, float], *, epoch_of: int = 1) -> list[MetricPoint]:
    return [MetricPoint(1, s, s // epoch_of, "k", v, float(s)) for s, v in values.items()]


# --------------------------------------------------------------------------- spec diff


def test_the_diff_holds_exactly_the_paths_that_differ() -> None:
    a = _spec("first", lr=0.01)
    b = _spec("second", lr=0.1, weight_decay=1e-3)
    c = _spec("first", lr=0.01, dataset=DatasetSpec(augment=(AugmentStep(name="flip"),)))
    rows = spec_diff({r: parse_spec(s.to_json()) for r, s in ((1, a), (2, b), (3, c))})
    paths = [row.path for row in rows]
    assert paths == [
        "name",
        "dataset.augment.0.name",  # beside its siblings, though only the last run has it
        "dataset.augment.0.strength",
        "dataset.augment",
        "train.lr",
        "train.weight_decay",
    ]
    by_path = {row.path: row.values for row in rows}
    assert by_path["train.lr"] == {1: "0.01", 2: "0.1", 3: "0.01"}
    assert by_path["train.weight_decay"] == {1: "5e-4", 2: "1e-3", 3: "5e-4"}
    # A path one run lacks shows as missing; the empty list stays a comparable leaf.
    assert by_path["dataset.augment.0.name"] == {1: MISSING, 2: MISSING, 3: "flip"}
    assert by_path["dataset.augment"] == {1: "[]", 2: "[]", 3: MISSING}
    # Identical specs, or one run alone, differ in nothing.
    assert spec_diff({1: a.model_dump(mode="json"), 2: a.model_dump(mode="json")}) == []
    assert spec_diff({1: a.model_dump(mode="json")}) == []


def test_flattening_and_numbers_read_as_a_person_writes_them() -> None:
    flat = flatten_spec({"a": {"b": [1, {"c": None}], "d": {}}, "e": True})
    assert flat == {"a.b.0": 1, "a.b.1.c": None, "a.d": {}, "e": True}
    assert [short_number(v) for v in (0.01, 5e-4, 3e-5, 1.5e-4, 0.25, 2e6, 0.0)] == [
        "0.01",
        "5e-4",
        "3e-5",
        "1.5e-4",
        "0.25",
        "2e6",
        "0",
    ]
    # 1 and 1.0 are the same JSON number; true is not 1.
    assert spec_diff({1: {"x": 1, "y": True}, 2: {"x": 1.0, "y": 1}})[0].path == "y"
    assert parse_spec("not json") == {} and parse_spec("[1]") == {}


# ------------------------------------------------------------------------ aggregation


def test_aggregation_is_the_mean_and_sample_std_per_step_with_its_count() -> None:
    curves = [
        _points({0: 1.0, 1: 2.0, 2: 3.0}),
        _points({0: 3.0, 1: 4.0, 2: 5.0}),
        _points({0: 2.0, 1: 3.0}),  # stopped early: counts only where it ran
    ]
    band = aggregate_curves(curves)
    assert band.x.tolist() == [0, 1, 2]
    assert band.mean.tolist() == [2.0, 3.0, 4.0]
    assert band.n.tolist() == [3, 3, 2]
    np.testing.assert_allclose(band.high - band.mean, [1.0, 1.0, math.sqrt(2)])
    np.testing.assert_allclose(band.mean - band.low, [1.0, 1.0, math.sqrt(2)])


def test_aggregation_interpolates_between_a_runs_own_points_and_offers_min_max() -> None:
    # Downsampled runs keep their peaks at different steps: A at even steps, B at odd ones.
    a = _points({0: 0.0, 2: 2.0})
    b = _points({1: 5.0, 3: 7.0})
    band = aggregate_curves([a, b], spread="minmax")
    assert band.x.tolist() == [0, 1, 2, 3]
    assert band.n.tolist() == [1, 2, 2, 1]
    assert band.mean.tolist() == [0.0, 3.0, 4.0, 7.0]
    assert band.low.tolist() == [0.0, 1.0, 2.0, 7.0]
    assert band.high.tolist() == [0.0, 5.0, 6.0, 7.0]
    # One run alone has no spread.
    alone = aggregate_curves([a])
    assert alone.low.tolist() == alone.mean.tolist() == alone.high.tolist() == [0.0, 2.0]
    assert len(aggregate_curves([]).x) == 0 and len(aggregate_curves([[], []]).x) == 0


def test_aggregation_by_epoch_averages_within_an_epoch_and_skips_nan() -> None:
    a = _points({0: 1.0, 1: 3.0, 2: math.nan, 3: 10.0}, epoch_of=2)  # epochs 0,0,1,1
    b = _points({0: 4.0, 2: 6.0}, epoch_of=2)
    band = aggregate_curves([a, b], x="epoch")
    assert band.x.tolist() == [0, 1]
    assert band.mean.tolist() == [3.0, 8.0]  # (2 + 4) / 2 and (10 + 6) / 2
    assert axis_for("val.accuracy") == "epoch" and axis_for("train.loss") == "step"


# ----------------------------------------------------------------------------- groups


def test_runs_differing_only_in_seed_form_one_group_per_recipe() -> None:
    records = [
        _record(i + 1, _spec(f"sweep #{i}", lr=lr, weight_decay=wd, seed=seed))
        for i, (lr, wd, seed) in enumerate(
            [
                (lr, wd, seed)
                for lr, wd in ((0.01, 5e-4), (0.1, 5e-4), (0.01, 1e-3))
                for seed in (0, 1, 2)
            ]
        )
    ]
    groups = group_runs(records)
    assert [g.label for g in groups] == [
        "lr=0.01, wd=5e-4 (3 seeds)",
        "lr=0.1, wd=5e-4 (3 seeds)",
        "lr=0.01, wd=1e-3 (3 seeds)",
    ]
    assert [g.run_ids for g in groups] == [(1, 2, 3), (4, 5, 6), (7, 8, 9)]
    assert groups[1].params == {"train.lr": "0.1", "train.weight_decay": "5e-4"}


def test_folds_of_a_k_fold_sweep_group_and_lone_runs_stay_alone() -> None:
    def folded(fold: int, seed: int = 0) -> RunSpec:
        return _spec(f"cv fold {fold}", seed=seed, dataset=DatasetSpec(folds=3, fold=fold))

    folds = [_record(i + 1, folded(i)) for i in range(3)]
    lone = _record(9, _spec("plain", lr=0.2))
    groups = group_runs([*folds, lone])
    assert [g.run_ids for g in groups] == [(1, 2, 3), (9,)]
    assert groups[0].label.endswith("(3 folds)")
    assert "(" not in groups[1].label and "lr=0.2" in groups[1].label
    both = group_runs(
        [_record(i + 1, folded(f, s)) for i, (f, s) in enumerate([(0, 0), (1, 0), (0, 1), (1, 1)])]
    )
    assert both[0].label == "tiny (4 runs: 2 seeds × 2 folds)"
    twins = group_runs([_record(1, _spec()), _record(2, _spec())])
    assert twins[0].label == "tiny (2 runs)"


# ------------------------------------------------------------------------ metric table


def test_the_metric_table_reads_the_summary_and_groups_show_mean_and_std() -> None:
    summaries = [
        {"best_val_accuracy": 0.8, "test_accuracy": 0.75, "final_train_loss": 0.5, "epochs": 3},
        {
            "best_val_accuracy": 0.9,
            "final_train_loss": 0.3,
            "epochs": 3,
            "train_images_per_s": 1234.4,
        },
    ]
    records = [_record(i + 1, _spec(seed=i), **s) for i, s in enumerate(summaries)]
    rows = metric_table(records)
    assert [r.label for r in rows] == ["#1", "#2"]
    assert rows[0].texts["Best val acc"] == "80.0%" and rows[0].texts["Images/s"] == ""
    assert rows[1].texts["Images/s"] == "1,234" and rows[1].values["Test acc"] is None
    assert rows[0].texts["Duration"] == "10.0 s" and rows[1].values["Duration"] == 20.0
    columns = {c.title: c for c in METRIC_COLUMNS}
    assert best_row(rows, columns["Best val acc"]) == 1
    assert best_row(rows, columns["Final train loss"]) == 1
    assert best_row(rows, columns["Epochs"]) is None  # no direction
    assert best_row(rows, columns["Test acc"]) is None  # only one run has it
    (group,) = group_metric_table(group_runs(records))
    assert group.run_ids == (1, 2)
    assert group.values["Best val acc"] == pytest.approx(0.85)
    assert group.texts["Best val acc"] == "85.0% ± 7.1%"
    assert group.texts["Test acc"] == "75.0%"  # one value: no spread


# ------------------------------------------------------------------------- the store


def test_curves_and_keys_come_from_the_store_downsampled(tmp_path: Path) -> None:
    with RunStore.open(tmp_path / "runs.sqlite") as store:
        ids = [store.create_run(spec_json="{}", spec_hash="h") for _ in range(2)]
        store.add_metrics(
            MetricPoint(ids[0], s, s // 1000, "train.loss", 1.0 / (1 + s), float(s))
            for s in range(10_000)
        )
        store.add_metrics([MetricPoint(ids[1], 0, 1, "val.accuracy", 0.5, 0.0)])
        assert store.keys_logged(ids) == ["train.loss", "val.accuracy"]
        assert store.keys_logged([ids[1]]) == ["val.accuracy"] and store.keys_logged([]) == []
        curves = read_curves(store, ids, "train.loss", buckets=100)
        assert 100 <= len(curves[ids[0]]) <= 200 and curves[ids[1]] == []
