"""The Compare panel's state over a real store: runs, recipes, the chosen metric, the lines."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cnn_lab.app.models.compare_form import EMPTY_TEXT, Comparison
from cnn_lab.engine.specs import RunSpec, TrainSpec
from cnn_lab.engine.store import MetricPoint, RunStore


def _write_run(store: RunStore, name: str, *, lr: float, seed: int = 0, offset: float = 0) -> int:
    """A finished run of 3 epochs × 10 steps, its loss shifted by ``offset``."""
    spec = RunSpec(name=name, train=TrainSpec(lr=lr, seed=seed, epochs=3))
    run_id = store.create_run(
        spec_json=spec.to_json(), spec_hash=spec.spec_hash(), name=name, status="completed"
    )
    points = [
        MetricPoint(run_id, step, step // 10, "train.loss", 1.0 + offset, step)
        for step in range(30)
    ]
    points += [
        MetricPoint(run_id, 10 * e + 9, e, "val.accuracy", 0.5 + 0.1 * e, 10 * e + 9)
        for e in range(3)
    ]
    store.add_metrics(points)
    return run_id


@pytest.fixture
def comparison() -> Comparison:
    return Comparison()


def _load(comparison: Comparison, db_path: Path, run_ids: list[int]) -> None:
    with RunStore.open(db_path) as store:
        comparison.load(store, run_ids)


def test_runs_are_read_once_each_with_their_differences(
    comparison: Comparison, db_path: Path
) -> None:
    with RunStore.open(db_path) as store:
        first = _write_run(store, "slow", lr=0.01)
        second = _write_run(store, "fast", lr=0.1)
    _load(comparison, db_path, [first, second, first])
    assert comparison.run_ids() == [first, second] and comparison.comparable()
    assert [row.path for row in comparison.diff] == ["name", "train.lr"]
    assert comparison.describe() == "2 runs; they differ in 2 spec settings."
    assert comparison.keys == ["train.loss", "val.accuracy"]
    # Nothing preferred was logged, so the first key; a key shown before stays chosen.
    assert comparison.pick_metric("") == "train.loss"
    assert comparison.pick_metric("val.accuracy") == "val.accuracy"
    lines = comparison.lines("val.accuracy", aggregate=False)
    assert [(line.name, line.colour) for line in lines] == [
        (f"#{first} slow", 0),
        (f"#{second} fast", 1),
    ]
    assert lines[0].xs.tolist() == [0, 1, 2]  # per epoch
    assert lines[0].band is None


def test_gone_runs_are_named_and_one_run_is_not_a_comparison(
    comparison: Comparison, db_path: Path
) -> None:
    with RunStore.open(db_path) as store:
        only = _write_run(store, "only", lr=0.01)
    _load(comparison, db_path, [only, 98, 99])
    assert not comparison.comparable()
    assert comparison.note == "Runs #98, #99 are no longer in the store."
    assert comparison.empty_text() == f"{comparison.note}\n\n{EMPTY_TEXT}"
    _load(comparison, db_path, [])
    assert comparison.empty_text() == EMPTY_TEXT


def test_seeds_of_one_recipe_become_one_mean_line_with_a_band(
    comparison: Comparison, db_path: Path
) -> None:
    with RunStore.open(db_path) as store:
        a = _write_run(store, "r", lr=0.01, seed=1, offset=0.0)
        b = _write_run(store, "r", lr=0.01, seed=2, offset=0.2)
        c = _write_run(store, "r", lr=0.1, seed=1)
    _load(comparison, db_path, [a, b, c])
    assert len(comparison.groups) == 2
    assert comparison.describe().startswith(
        "3 runs in 2 recipes (runs differing only in seed or fold)"
    )
    repeated, single = comparison.lines("train.loss", aggregate=True, spread="minmax")
    assert np.allclose(repeated.ys, 1.1)
    assert repeated.band is not None
    assert np.allclose(repeated.band[0], 1.0) and np.allclose(repeated.band[1], 1.2)
    assert single.band is None and single.colour == 1
    assert len(comparison.metric_rows(aggregate=True)) == 2
    assert len(comparison.metric_rows(aggregate=False)) == 3


def test_a_chosen_metric_is_read_once_then_kept(comparison: Comparison, db_path: Path) -> None:
    with RunStore.open(db_path) as store:
        first = _write_run(store, "a", lr=0.01)
        second = _write_run(store, "b", lr=0.1)
        store.add_metrics([MetricPoint(first, 5, 0, "lr", 0.5, 5)])
    _load(comparison, db_path, [first, second])
    assert comparison.pick_metric("") == "lr"  # preferred over the first key
    with RunStore.open(db_path) as store:
        assert comparison.needs("lr")
        assert comparison.read_metric(store, "lr") == ""
        store.add_metrics([MetricPoint(first, 6, 0, "lr", 0.25, 6)])
        assert not comparison.needs("lr")
        assert comparison.read_metric(store, "lr") == ""
    (line, empty) = comparison.lines("lr", aggregate=False)
    assert line.ys.tolist() == [0.5] and len(empty.xs) == 0  # the curve read before
