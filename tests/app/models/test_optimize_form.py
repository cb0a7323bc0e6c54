"""The Optimize panel's rules and texts, without Qt."""

from __future__ import annotations

import pytest

from cnn_lab.app.models import optimize_form as form
from cnn_lab.engine.errors import UserError
from cnn_lab.engine.optimize import Decision, OptimizeResult, PhaseTiming, Rejected
from cnn_lab.engine.specs import RunSpec

SPEC = RunSpec.from_dict(
    {
        "dataset": {"source": "sample:shapes", "limit": 300, "image_size": 16},
        "architecture": {"preset": "small_cnn", "width": 0.5},
        "train": {"device": "cpu", "batch_size": 32},
    }
)


def result_with(chosen: RunSpec, **changes: object) -> OptimizeResult:
    """A result as ``optimize`` returns it, choosing ``chosen``."""
    fields: dict[str, object] = dict(
        experiment_id=1, goal="accuracy", budget_s=600.0, elapsed_s=580.0, chosen=chosen,
        final_run_id=7, best_run_id=5, best_val_accuracy=0.912,
        decisions=(Decision("speed", "precision=bf16", "bf16 was 1.70x as fast as fp32 on cpu"),
                   Decision("rate", "lr=3.0e-03", "the loss fell fastest at 3e-3")),
        rejected=(Rejected("speed", "channels_last=True", "0.95x as fast: slower here"),),
        phases=(PhaseTiming("speed", 60.0, 59.5, "done"), PhaseTiming("rate", 27.0, 3.0, "done"),
                PhaseTiming("search", 241.0, 230.0, "done"),
                PhaseTiming("final", 287.5, 287.5, "done")),
        run_ids=(3, 4, 5, 6, 7), budget_held=True, budget_note="used 97% of the budget",
    )  # fmt: skip
    fields.update(changes)
    return OptimizeResult(**fields)  # type: ignore[arg-type]


def test_every_engine_phase_has_a_title_and_a_stage() -> None:
    from cnn_lab.engine.optimize.plan import PHASES

    assert form.PHASES is PHASES  # the engine's own, not a copy
    assert set(form.PHASE_TITLES) == set(PHASES) == set(form.PHASE_STAGES)


def test_widths_are_parsed_or_refused_with_a_sentence() -> None:
    assert form.parse_widths("") == ()
    assert form.parse_widths("0.5, 1  0.5") == (0.5, 1.0)
    with pytest.raises(UserError, match="'x' is not a width"):
        form.parse_widths("0.5 x")
    with pytest.raises(UserError, match="above 0"):
        form.parse_widths("0")


def test_the_request_is_checked_by_the_engines_plan() -> None:
    request = form.make_request(SPEC, 5.0, "target", 85.0, "0.5, 1")
    assert request.budget_s == 300.0 and request.target == pytest.approx(0.85)
    assert request.to_dict()["widths"] == [0.5, 1.0]
    assert RunSpec.from_json(request.to_dict()["spec_json"]) == SPEC
    assert form.make_request(SPEC, 5.0, "accuracy", 85.0, "").target is None
    with pytest.raises(UserError, match="budget must be a positive"):
        form.make_request(SPEC, 0.0, "accuracy", 90.0, "")


def test_progress_texts_name_the_share_and_the_time_left() -> None:
    assert form.share_text("search", 600.0) == "Search · 45% of the budget (4 min 30 s)"
    text = form.progress_text("trial", 3, 8, 130.0, 600.0)
    assert text == "trial 3/8 · 2 min 10 s used, 7 min 50 s left of 10 min 00 s"
    assert form.percent(3, 4) == 75 and form.percent(1, 0) == 0


def test_the_card_lists_decisions_rejections_phases_and_the_budget() -> None:
    result = result_with(SPEC)
    card = form.card_html(result)
    assert "bf16 was 1.70x as fast as fp32 on cpu" in card
    assert "channels_last=True" in card and "slower here" in card
    assert "Final run" in card and "4 min 48 s of 4 min 48 s" in card
    assert "Budget held: used 97% of the budget" in card
    assert "91.2%" in form.headline(result)
    stopped = result_with(SPEC, stopped=True, budget_held=False, budget_note="ran 12% over")
    assert "best so far" in form.headline(stopped)
    assert form.budget_text(stopped) == "Budget overrun: ran 12% over"
    assert "<script>" not in form.card_html(
        result_with(SPEC, decisions=(Decision("speed", "<script>", "x"),))
    )


def test_apply_and_keep_texts() -> None:
    chosen = SPEC.model_copy(update={"train": SPEC.train.model_copy(update={"lr": 0.003})})
    assert "Hyperparameters: lr 0.01 → 0.003" in form.applied_text(SPEC, chosen)
    assert form.applied_text(SPEC, SPEC) == "The panels already hold the chosen recipe."
    assert form.kept_runs(result_with(SPEC)) == (7, [3, 4, 5, 6])
    assert form.kept_runs(result_with(SPEC, final_run_id=None)) == (5, [3, 4, 6, 7])
    assert "Kept run 7" in form.keep_text(7, 4) and "4 search trials archived" in form.keep_text(
        7, 4
    )
    assert "no model to keep" in form.keep_text(None, 0)
