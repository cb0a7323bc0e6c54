"""``optimize``: the plan's phases and shares with a fake clock and planted tuners; once for real.

The planted tuners take no torch steps: each advances a fake clock by what its work would
cost and honours the stop flag it is given, so the tests check the plan's arithmetic (shares,
re-division, sizing, refusals, stopping) in milliseconds. The search is engine/search's real
TPE study over a planted trainer that records its runs in a real SQLite store. One test runs
the real tuners and real training on a tiny sample within a small budget.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from cnn_lab.engine.errors import UserError
from cnn_lab.engine.optimize import OPTIMIZE_KIND, Tuners, optimize, real_tuners, stored_result
from cnn_lab.engine.optimize.plan import DEFAULT_SHARES, FINAL_MARGIN, final_need_s
from cnn_lab.engine.optimize.search_phase import run_search
from cnn_lab.engine.specs import RunSpec
from cnn_lab.engine.store import MetricPoint, RunRecord, RunStore
from cnn_lab.engine.store import status as st
from cnn_lab.engine.train.events import EpochEnd
from cnn_lab.engine.tune.batch_size import BatchSizeResult
from cnn_lab.engine.tune.epoch_time import EpochTime
from cnn_lab.engine.tune.lr_finder import LRFinderResult
from cnn_lab.engine.tune.speed_result import Finding, SpeedAdvice

SPEC = RunSpec.from_dict(
    {
        "dataset": {"source": "sample:shapes", "limit": 300, "image_size": 16},
        "architecture": {"preset": "small_cnn", "width": 0.5},
        "train": {"device": "cpu", "batch_size": 32},
    }
)


NO_SHIFTS = "dataset.augment.0.strength"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Planted:
    """Planted tuners over one fake clock; records what each was asked."""

    clock: FakeClock
    epoch_s: float = 1.0
    setup_s: float = 2.0
    train_images: int = 240
    val_images: int = 60
    max_batch: int | None = 256
    stop_after_trials: int | None = None
    calls: list[str] = field(default_factory=list)
    trial_epochs: list[int] = field(default_factory=list)
    final_epochs: list[int] = field(default_factory=list)
    deadlines_met: list[bool] = field(default_factory=list)
    user_stop: list[bool] = field(default_factory=lambda: [False])
    augment_bonus: float = 0.0
    """Accuracy a trial gains per unit of its first augmentation's strength."""

    def tuners(self) -> Tuners:
        return Tuners(self.epoch, self.batch, self.speed, self.rate, run_search, self.train)

    def epoch(self, spec: RunSpec, stop: Any, progress: Any) -> EpochTime:
        self.calls.append("epoch")
        self.clock.now += 3.0
        train_s = self.epoch_s * 0.8
        return EpochTime(train_s, self.epoch_s - train_s, self.train_images / train_s,
                         self.train_images, self.val_images, spec.train.batch_size, "cpu",
                         self.setup_s)  # fmt: skip

    def batch(self, spec: RunSpec, limit: int, stop: Any, progress: Any) -> BatchSizeResult:
        self.calls.append("batch")
        self.clock.now += 1.0
        message = "none fits" if self.max_batch is None else f"a step at {self.max_batch} fit"
        return BatchSizeResult(self.max_batch, "budget", None, None, None, (), message)

    def _burn(self, stop: Callable[[], bool], step: float) -> int:
        """Spend time in steps until told to stop: a tuner that uses all it is given."""
        steps = 0
        while not stop() and steps < 10_000:
            self.clock.now += step
            steps += 1
        return steps

    def speed(
        self, spec: RunSpec, options: Any, min_s: float, stop: Any, progress: Any
    ) -> SpeedAdvice:
        self.calls.append("speed")
        self._burn(stop, 0.5)
        findings = (
            Finding("precision", "bf16", 500.0, 1.7, True, ""),
            Finding("channels_last", False, 280.0, 0.95, False, ""),
        )
        return SpeedAdvice("cpu", {}, 300.0, {"precision": "bf16"}, 510.0,
                           {"precision": "bf16"}, findings, (), 1.0, 3, "bf16 wins")  # fmt: skip

    def rate(self, spec: RunSpec, steps: int, stop: Any, progress: Any) -> LRFinderResult:
        self.calls.append("rate")
        self.clock.now += min(steps * 0.01, 1.0)
        return LRFinderResult((), (), (), 3e-3, 3e-3, 1e-2, None, "suggested 3.00e-03")

    def score(self, spec: RunSpec, epoch: int) -> float:
        """A run's validation accuracy after ``epoch``: the rate decides, epochs add a little."""
        value = round(min(0.99, 0.3 + 20 * spec.train.lr) + epoch / 1000, 4)
        if spec.dataset.augment:
            value += self.augment_bonus * spec.dataset.augment[0].strength
        return value

    def train(self, spec: RunSpec, db_path: str | Path, run_id: int | None = None, *,
              emit: Any, should_stop: Any, sample_system: bool) -> RunRecord:  # fmt: skip
        """One planted run: setup, then epochs of ``epoch_s``, stopping when told."""
        assert run_id is not None
        final = spec.name.endswith("final")
        (self.final_epochs if final else self.trial_epochs).append(spec.train.epochs)
        stops = self.stop_after_trials
        if not final and stops is not None and len(self.trial_epochs) > stops:
            self.user_stop[0] = True
        self.clock.now += self.setup_s
        started, limit, target = (
            self.clock.now,
            spec.train.time_limit_s,
            spec.train.stop_at_accuracy,
        )
        best, summary = 0.0, {}
        with RunStore.open(db_path) as store:
            store.mark_running(run_id, pid=1, device="cpu")
            for epoch in range(1, spec.train.epochs + 1):
                if should_stop():
                    break
                self.clock.now += self.epoch_s
                value = self.score(spec, epoch)
                best = max(best, value)
                emit(EpochEnd(epoch, epoch, 1.0, value, 1.0, value, self.epoch_s, 100.0))
                point = MetricPoint(run_id, epoch, epoch, "val.accuracy", value, time.time())
                store.add_metrics([point])
                if target is not None and value >= target:  # as the loop: a completion
                    summary["target_reached_epoch"] = epoch
                    break
                if limit is not None and self.clock.now - started + self.epoch_s > limit:
                    summary["time_limit_reached"] = True  # the loop's clock ends it
                    break
            status = st.STOPPED if should_stop() else st.COMPLETED
            store.finish_run(run_id, status, summary={"best_val_accuracy": best, **summary})
            return store.get_run(run_id)


def _run(planted: Planted, budget_s: float, db: Path, **kwargs: Any) -> Any:
    stop = planted.user_stop
    return optimize(SPEC, budget_s, db_path=db, clock=planted.clock,
                    should_stop=lambda: stop[0], tuners=planted.tuners(), **kwargs)  # fmt: skip


def test_phases_in_order_within_their_shares_and_the_budget(db_path: Path) -> None:
    planted = Planted(FakeClock())
    seen: list[str] = []
    # a cap above what the budget holds: the shares alone divide the time
    result = optimize(SPEC, 600.0, db_path=db_path, clock=planted.clock, tuners=planted.tuners(),
                      progress=lambda p: seen.append(p.phase), final_epoch_cap=10_000)  # fmt: skip
    assert [p.phase for p in result.phases] == ["speed", "rate", "search", "final"]
    assert planted.calls == ["epoch", "batch", "speed", "rate"]
    assert [p for i, p in enumerate(seen) if p not in seen[:i]] == ["search", "final"]
    speed, rate, search, final = result.phases
    # the speed advisor burns all it is given: stopped by its deadline, at its share
    assert speed.allotted_s == pytest.approx(600 * DEFAULT_SHARES["speed"])
    assert speed.spent_s == pytest.approx(speed.allotted_s, abs=0.5)
    # the rate finished early: the time it left is re-divided among search and final
    left = 600 - speed.spent_s - rate.spent_s
    assert search.allotted_s == pytest.approx(left * 0.45 / 0.85, rel=1e-6)
    assert search.spent_s <= search.allotted_s
    assert final.allotted_s == pytest.approx(600 - speed.spent_s - rate.spent_s - search.spent_s)
    assert result.elapsed_s <= 600 and result.budget_held
    # the search was sized from the epoch time: trials × (setup + epochs × epoch) fit
    epochs = set(planted.trial_epochs)
    assert len(epochs) == 1
    (per_trial,) = epochs
    assert len(planted.trial_epochs) * (2.0 + per_trial * 1.0) <= search.allotted_s
    assert len(planted.trial_epochs) >= 4
    # the final run's time limit is what was left, less the margin and the measured setup;
    # its epochs lie above the estimate, so that its clock (not a count) ends it, completed
    chosen = result.chosen.train
    assert chosen.time_limit_s == pytest.approx(final.allotted_s * (1 - FINAL_MARGIN) - 2.0)
    (final_epochs,) = planted.final_epochs
    assert final_epochs > chosen.time_limit_s / 1.0
    assert result.final_run_id is not None and chosen.epochs == final_epochs
    assert final.outcome == "done" and final.spent_s <= final.allotted_s
    with RunStore.open(db_path) as store:
        final_run = store.get_run(result.final_run_id)
    assert final_run.status == st.COMPLETED and final_run.summary["time_limit_reached"]
    assert result.chosen.train.precision == "bf16"  # the speed phase's pick is kept


def test_a_capped_final_run_hands_the_time_beyond_its_epochs_to_the_search(db_path: Path) -> None:
    """At 1 s an epoch, 600 s would hold a final run of about 260 epochs; capped at 20, the
    final run trains 20 (its epochs end it, not its clock), the search gets all the rest,
    and the optimization ends early rather than train longer."""
    planted = Planted(FakeClock())
    result = _run(planted, 600.0, db_path, final_epoch_cap=20)
    speed, rate, search, final = result.phases
    left = 600 - speed.spent_s - rate.spent_s
    # sized from the probe's epoch, sped up by the speed phase's pick (300 -> 510 images/s)
    epoch_s = 1.0 * 300.0 / 510.0
    assert search.allotted_s == pytest.approx(left - final_need_s(20, epoch_s, 2.0), rel=1e-6)
    assert search.allotted_s > left * 0.45 / 0.85
    assert len(planted.trial_epochs) > 30  # 5-epoch trials of 7 s each
    assert planted.final_epochs == [20]
    with RunStore.open(db_path) as store:
        final_run = store.get_run(result.final_run_id)
    assert final_run.status == st.COMPLETED and not final_run.summary.get("time_limit_reached")
    assert final.spent_s == pytest.approx(2.0 + 20 * 1.0)
    assert result.elapsed_s < 600 and result.budget_held
    decision = next(d for d in result.decisions if d.phase == "final")
    assert decision.choice == "epochs=20" and "the cap" in decision.evidence


def test_the_searched_weight_decay_follows_the_optimizer() -> None:
    """AdamW's decoupled decay is searched a hundredfold higher than SGD's L2 penalty, and a
    person's decay outside the optimizer's range is left to the sampler, not tried first."""
    from cnn_lab.engine.optimize.search_phase import first_points, search_params

    def decay(optimizer: str) -> dict[str, Any]:
        spec = SPEC.model_copy(
            update={"train": SPEC.train.model_copy(update={"optimizer": optimizer})}
        )
        (param,) = [p for p in search_params(spec, (1e-3, 1e-1), (), ()) if "decay" in p["path"]]
        return param["range"]

    assert decay("adamw") == {"low": 1e-4, "high": 0.3, "log": True}
    assert decay("sgd") == {"low": 1e-5, "high": 5e-3, "log": True}
    sgd = SPEC.model_copy(
        update={"train": SPEC.train.model_copy(update={"optimizer": "sgd", "weight_decay": 0.05})}
    )
    assert first_points(sgd, None) == [
        {"train.lr": sgd.train.lr, NO_SHIFTS: 0.0},
        {"train.lr": sgd.train.lr, NO_SHIFTS: 1.0},
    ]


def test_decisions_and_the_result_are_recorded_under_one_experiment(db_path: Path) -> None:
    result = _run(Planted(FakeClock()), 600.0, db_path)
    with RunStore.open(db_path) as store:
        (experiment,) = store.experiments(OPTIMIZE_KIND)
        assert store.experiment_runs(experiment["id"]) == sorted(result.run_ids)
        assert store.experiments("sweep") == []
        assert store.experiment(experiment["id"], OPTIMIZE_KIND) == experiment
        assert store.experiment(experiment["id"], "sweep") is None  # another kind's id
    assert experiment["id"] == result.experiment_id
    assert stored_result(db_path, result.experiment_id) == result
    choices = {d.choice for d in result.decisions}
    assert "precision=bf16" in choices
    assert "lr=3.0e-03" in choices
    speed = next(d for d in result.decisions if d.choice == "precision=bf16")
    assert "1.70x as fast" in speed.evidence
    assert any(r.option == "channels_last=False" for r in result.rejected)
    assert any(r.phase == "search" and r.option.startswith("trial #") for r in result.rejected)
    assert result.best_val_accuracy == max(
        RunStore.open(db_path).get_run(i).summary["best_val_accuracy"] for i in result.run_ids
    )


def test_a_search_the_budget_cannot_afford_gives_its_time_to_the_final_run(db_path: Path) -> None:
    planted = Planted(FakeClock(), epoch_s=8.0, setup_s=4.0)
    result = _run(planted, 60.0, db_path)
    search = next(p for p in result.phases if p.phase == "search")
    assert search.outcome.startswith("skipped")
    assert planted.trial_epochs == []
    assert planted.final_epochs and planted.final_epochs[0] >= 1
    assert result.budget_held


@pytest.mark.parametrize(
    ("planted", "budget", "words"),
    [
        ({"epoch_s": 50.0}, 40.0, "too small"),
        ({"max_batch": None}, 600.0, "at any batch size"),
        ({"train_images": 12, "val_images": 3}, 600.0, "needs at least"),
    ],
    ids=["budget below one epoch", "no batch fits", "too few images"],
)
def test_refusals_come_before_anything_runs(
    db_path: Path, planted: dict[str, Any], budget: float, words: str
) -> None:
    tuners = Planted(FakeClock(), **planted)
    with pytest.raises(UserError, match=words):
        _run(tuners, budget, db_path)
    assert set(tuners.calls) <= {"epoch", "batch"}
    assert tuners.trial_epochs == tuners.final_epochs == []
    with RunStore.open(db_path) as store:
        assert store.experiments(OPTIMIZE_KIND) == []
        assert store.list_runs() == []


def test_stop_mid_search_keeps_the_best_so_far(db_path: Path) -> None:
    planted = Planted(FakeClock(), stop_after_trials=3)
    result = _run(planted, 600.0, db_path)
    assert result.stopped
    assert planted.final_epochs == []
    assert result.final_run_id is None
    assert result.best_run_id is not None and result.best_val_accuracy is not None
    assert result.chosen.train.lr == pytest.approx(
        RunSpec.from_json(RunStore.open(db_path).get_run(result.best_run_id).spec_json).train.lr
    )
    assert [p.outcome for p in result.phases][-1] == "stopped before it began"
    assert stored_result(db_path, result.experiment_id) == result


def test_target_goal_completes_the_final_run_once_reached(db_path: Path) -> None:
    planted = Planted(FakeClock())
    result = _run(planted, 600.0, db_path, goal="target", target=0.31)
    final = next(d for d in result.decisions if d.phase == "final")
    assert "reached 31%" in final.evidence
    assert result.chosen.train.stop_at_accuracy == pytest.approx(0.31)
    with RunStore.open(db_path) as store:
        assert store.get_run(result.final_run_id).status == st.COMPLETED


def test_the_final_run_is_sized_from_the_trials_real_epochs_and_setup(db_path: Path) -> None:
    """The probe says 1 s an epoch and 2 s of setup; the trials take 1.5 s and 2 s: the
    final run's limit and its sentence follow the trials, not the probe."""
    planted = Planted(FakeClock())
    real = planted.train

    def slower(spec: RunSpec, *args: Any, **kwargs: Any) -> RunRecord:
        planted.epoch_s = 1.5
        return real(spec, *args, **kwargs)

    tuners = planted.tuners()
    tuners = Tuners(tuners.epoch, tuners.batch, tuners.speed, tuners.rate, tuners.search, slower)
    result = optimize(SPEC, 600.0, db_path=db_path, clock=planted.clock, tuners=tuners,
                      final_epoch_cap=10_000)  # fmt: skip
    final = next(d for d in result.decisions if d.phase == "final")
    assert "1.50 s an epoch (measured over" in final.evidence
    assert "2.0 s to set the run up" in final.evidence
    assert result.chosen.train.epochs > result.chosen.train.time_limit_s / 1.5


def test_a_skipped_speed_phase_says_why(db_path: Path) -> None:
    # The probe and the batch check (4 s) take the speed phase's whole share (3 s of 30 s).
    result = _run(Planted(FakeClock(), epoch_s=0.5, setup_s=0.5), 30.0, db_path)
    speed = next(p for p in result.phases if p.phase == "speed")
    assert speed.outcome.startswith("skipped")
    (why,) = [r for r in result.rejected if r.phase == "speed"]
    assert "measuring one epoch took" in why.reason and "your speed settings stand" in why.reason


def test_a_real_optimize_on_a_tiny_sample_ends_within_its_budget(db_path: Path) -> None:
    """Real tuners, real training: a behaviour check of the budget, not a benchmark."""
    budget = 45.0
    started = time.monotonic()
    result = optimize(SPEC, budget, db_path=db_path, tuners=real_tuners())
    took = time.monotonic() - started
    if not result.budget_held:  # a machine too slow must say so, not overrun silently
        assert "took" in result.budget_note
    assert took <= budget * 1.25, result.summary_lines()
    assert result.elapsed_s == pytest.approx(took, abs=2.0)
    assert result.best_val_accuracy is not None and 0.0 <= result.best_val_accuracy <= 1.0
    with RunStore.open(db_path) as store:
        (experiment,) = store.experiments(OPTIMIZE_KIND)
        runs = store.experiment_runs(experiment["id"])
        assert runs and set(runs) == set(result.run_ids)
        assert all(store.get_run(i).status in st.FINAL for i in runs)
    assert stored_result(db_path, result.experiment_id) == result
    assert {d.phase for d in result.decisions} >= {"speed", "final"}


def test_the_final_runs_report_explains_each_decision_in_html_and_pdf(db_path: Path) -> None:
    from cnn_lab.engine.report.gather import gather_run
    from cnn_lab.engine.report.html import render_run_html
    from cnn_lab.engine.report.pdf import render_run_pdf
    from tests.engine.test_report import _text, opened_pdf

    result = _run(Planted(FakeClock()), 600.0, db_path)
    assert result.final_run_id is not None
    with RunStore.open(db_path) as store:
        final = gather_run(store, result.final_run_id, images=False, architecture=False)
        trial = gather_run(store, result.run_ids[0], images=False, architecture=False)
        plain = store.create_run(spec_json=SPEC.to_json(), spec_hash=SPEC.spec_hash())
        outside = gather_run(store, plain, images=False, architecture=False)
    assert outside.optimize is None  # a run optimize did not train has no such section
    assert final.optimize is not None and trial.optimize is not None
    assert dict((f.label, f.value) for f in final.optimize.facts)["This run"] == "the final run"
    assert dict((f.label, f.value) for f in trial.optimize.facts)["This run"] == "a search trial"
    rows = final.optimize.decisions.rows
    assert len(rows) == len(result.decisions)
    speed = next(d for d in result.decisions if d.choice == "precision=bf16")
    html = render_run_html(final)
    assert 'id="optimize"' in html and speed.evidence in html
    assert all(r.reason in html for r in result.rejected)
    with opened_pdf(render_run_pdf(final)) as pages:
        texts = [_text(page) for page in pages]
    section = " ".join(t for t in texts if t.startswith("Optimize: why this recipe"))
    # The evidence is wrapped, not cut: its words are all in the section.
    assert all(word in section for word in speed.evidence.split())
    assert all(word in section for r in result.rejected for word in r.reason.split())


def test_a_report_made_while_optimize_runs_says_its_decisions_come_at_the_end(
    db_path: Path,
) -> None:
    from cnn_lab.engine.report.gather import gather_run

    seen: list[Any] = []
    planted = Planted(FakeClock())

    def train(spec: RunSpec, db: str | Path, run_id: int | None = None, **kwargs: Any) -> Any:
        with RunStore.open(db) as store:
            assert run_id is not None
            seen.append(gather_run(store, run_id, images=False, architecture=False).optimize)
        return Planted.train(planted, spec, db, run_id, **kwargs)

    tuners = Tuners(planted.epoch, planted.batch, planted.speed, planted.rate, run_search, train)
    optimize(SPEC, 600.0, db_path=db_path, clock=planted.clock, tuners=tuners)
    assert seen and all(info is not None and "had not finished" in info.note for info in seen)


def test_the_search_starts_from_your_rate_and_the_range_tests_and_spans_both(
    db_path: Path,
) -> None:
    from cnn_lab.engine.optimize.search_phase import first_points, lr_range

    assert lr_range([1e-3]) == pytest.approx((2.5e-4, 4e-3))  # one anchor: x4 either side
    low, high = lr_range([5e-4, 1e-2])  # far apart: both inside, with x2 beyond each
    assert low == pytest.approx(2.5e-4) and high == pytest.approx(2e-2)
    points = first_points(SPEC, 3e-3)
    decay = SPEC.train.weight_decay
    assert points == [
        {"train.lr": SPEC.train.lr, "train.weight_decay": decay, NO_SHIFTS: 0.0},
        {"train.lr": SPEC.train.lr, "train.weight_decay": decay, NO_SHIFTS: 1.0},
        {"train.lr": 3e-3, "train.weight_decay": decay},
    ]
    assert first_points(SPEC, SPEC.train.lr) == points[:2]  # the same rate is tried once
    assert first_points(SPEC, None) == points[:2]

    result = _run(Planted(FakeClock()), 600.0, db_path)  # its range test answers 3e-3
    with RunStore.open(db_path) as store:
        trials = [RunSpec.from_json(store.get_run(i).spec_json).train for i in result.run_ids]
    assert [t.lr for t in trials[:3]] == [SPEC.train.lr, SPEC.train.lr, pytest.approx(3e-3)]
    (span,) = [d for d in result.decisions if d.choice.startswith("lr from")]
    assert "your rate" in span.evidence and "the range test's 3.0e-03" in span.evidence


def test_the_search_varies_shifts_and_an_augmented_recipe_may_train_longer(db_path: Path) -> None:
    """A dataset without augmentation gets random shifts searched from none (the person's own
    recipe, tried first) to full strength; a recipe that keeps them trains up to 120 epochs,
    one without them up to 60, and a person's cap is the cap either way."""
    from cnn_lab.engine.optimize.plan import AUGMENTED_EPOCH_CAP, FINAL_EPOCH_CAP, Plan
    from cnn_lab.engine.optimize.search_phase import (
        search_params,
        with_searched_augmentation,
        without_idle_augmentation,
    )

    assert (Plan(600.0).epoch_cap(False), Plan(600.0).epoch_cap(True)) == (60, 120)
    assert Plan(600.0, final_epoch_cap=20).epoch_cap(True) == 20
    shifted = with_searched_augmentation(SPEC)
    assert [(a.name, a.strength) for a in shifted.dataset.augment] == [("translate", 0.0)]
    assert without_idle_augmentation(shifted) == SPEC
    (strength,) = [
        p for p in search_params(shifted, (1e-3, 1e-1), (), (), SPEC) if p["path"] == NO_SHIFTS
    ]
    assert strength["choices"] == [0.0, 0.25, 0.5, 0.75, 1.0]
    own = SPEC.model_copy(update={"dataset": SPEC.dataset.model_copy(
        update={"augment": ({"name": "hflip", "strength": 0.5},)})})  # fmt: skip
    assert with_searched_augmentation(own) == own  # the person's own augmentation is tuned
    (strength,) = [p for p in search_params(own, (1e-3, 1e-1), (), ()) if p["path"] == NO_SHIFTS]
    assert strength["range"] == {"low": 0.25, "high": 1.0}

    planted = Planted(FakeClock(), augment_bonus=0.5)  # shifts pay: the search keeps them
    result = _run(planted, 600.0, db_path)
    with RunStore.open(db_path) as store:
        specs = [RunSpec.from_json(store.get_run(i).spec_json) for i in result.run_ids]
    trials, final = specs[:-1], specs[-1]
    assert all([a.name for a in t.dataset.augment] == ["translate"] for t in trials)
    # your recipe as it is, first, then with full shifts
    assert [t.dataset.augment[0].strength for t in trials[:2]] == [0.0, 1.0]
    assert len({t.dataset.augment[0].strength for t in trials}) >= 3
    (kept,) = final.dataset.augment
    assert kept.name == "translate" and kept.strength > 0 and result.chosen == final
    # 600 s hold some 260 epochs of 1 s; the augmented cap ends the run at 120
    assert planted.final_epochs == [AUGMENTED_EPOCH_CAP]
    decision = next(d for d in result.decisions if d.phase == "final")
    assert f"epochs={AUGMENTED_EPOCH_CAP}" == decision.choice
    assert "with augmentation" in decision.evidence

    planted = Planted(FakeClock(), augment_bonus=-0.5)  # shifts hurt: the search drops them
    result = _run(planted, 600.0, tmp_db := db_path.with_name("hurt.sqlite"))
    assert result.chosen.dataset.augment == ()  # strength 0 is left out of the recipe
    assert planted.final_epochs == [FINAL_EPOCH_CAP]
    decision = next(d for d in result.decisions if d.phase == "final")
    assert "without augmentation" in decision.evidence and tmp_db.exists()
    # the final run trains long, but your recipe lost far more than a point with shifts
    (refused,) = [r for r in result.rejected if r.phase == "final"]
    assert "added to the final run" in refused.option and "hurt here" in refused.reason


@dataclass
class ShiftsCostEarly(Planted):
    """Every rate trains alike; shifts cost half a point per unit of strength in a trial,
    so the search's pick has none."""

    def score(self, spec: RunSpec, epoch: int) -> float:
        shift = spec.dataset.augment[0].strength if spec.dataset.augment else 0.0
        return round(0.9 + epoch / 1000 - 0.005 * shift, 5)


def test_a_final_run_much_longer_than_the_trials_adds_the_searched_shifts(db_path: Path) -> None:
    """The search picks a recipe without shifts (they cost half a point after 5 epochs), but
    the final run trains far longer than the trials: it adds the shifts your recipe's paired
    trials measured, keeps the search's rate and decay, may train up to the augmented cap,
    and the card says why. Not for the target goal or a cap the person set."""
    from cnn_lab.engine.optimize.plan import AUGMENTED_EPOCH_CAP

    planted = ShiftsCostEarly(FakeClock())
    result = _run(planted, 600.0, db_path)
    with RunStore.open(db_path) as store:
        specs = [RunSpec.from_json(store.get_run(i).spec_json) for i in result.run_ids]
    plain, shifted = specs[0], specs[1]  # your recipe without and with full shifts
    assert (plain.dataset.augment[0].strength, shifted.dataset.augment[0].strength) == (0, 1)
    (step,) = result.chosen.dataset.augment
    assert (step.name, step.strength) == ("translate", 1.0)
    # the rate and decay are the search's pick: its best trial, which had no shifts
    picked = [d.choice for d in result.decisions if d.phase == "search"]
    assert "dataset.augment.0.strength=0" in picked
    assert f"train.lr={result.chosen.train.lr:.3g}" in picked
    assert planted.final_epochs == [AUGMENTED_EPOCH_CAP]
    why = next(d for d in result.decisions if d.phase == "final" and "translate=" in d.choice)
    assert why.choice == "translate=1 added" and "(trial #1) scored" in why.evidence
    assert result.decisions[-1].choice == f"epochs={AUGMENTED_EPOCH_CAP}"

    # a person's cap: they chose the run's length knowing their recipe
    planted = ShiftsCostEarly(FakeClock())
    result = _run(planted, 600.0, db_path.with_name("cap.sqlite"), final_epoch_cap=200)
    assert result.chosen.dataset.augment == () and planted.final_epochs == [200]
    # the target goal wants the fastest run to the target, not the longest
    planted = ShiftsCostEarly(FakeClock())
    result = _run(planted, 600.0, db_path.with_name("target.sqlite"), goal="target", target=0.95)
    assert result.chosen.dataset.augment == ()
