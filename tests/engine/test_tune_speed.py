"""The speed advisor: which values it tries, what it picks, and what it reports.

Most tests plant the answers through an injected measuring function, so the search itself is
checked exactly (a real probe's timing is noise on a shared CPU); one test runs real probes to
check that the pieces fit together and the result is JSON the CLI and panel can use.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Callable, Iterator
from contextlib import redirect_stderr, redirect_stdout
from typing import Any

import pytest
import torch

from cnn_lab.engine.cli.common import EXIT_USAGE
from cnn_lab.engine.cli.main import main
from cnn_lab.engine.data.prepare import PreparedDataset
from cnn_lab.engine.specs import RunSpec, TrainSpec
from cnn_lab.engine.tune.probe import StepResult, Throughput, prepare
from cnn_lab.engine.tune.speed import advise, exhaustive
from cnn_lab.engine.tune.speed_measure import throughput
from cnn_lab.engine.tune.speed_options import SPEED_OPTIONS, OptionContext, speed_option

BATCH = 16


def make_spec(**train: Any) -> RunSpec:
    return RunSpec.from_dict(
        {
            "dataset": {"source": "sample:shapes", "limit": 300},
            "architecture": {"preset": "small_cnn", "width": 0.5},
            "train": {"batch_size": BATCH, "device": "cpu", **train},
        }
    )


class Planted:
    """A fake probe: images/s is a product of per-setting factors; records every call."""

    def __init__(
        self,
        factors: dict[tuple[str, Any], float],
        *,
        not_finite: frozenset[tuple[str, Any]] = frozenset(),
    ) -> None:
        self.factors = factors
        self.not_finite = not_finite
        self.calls: list[dict[str, Any]] = []

    def rate(self, train: TrainSpec) -> float:
        rate = 100.0
        for (field, value), factor in self.factors.items():
            if getattr(train, field) == value:
                rate *= factor
        return rate

    def __call__(self, spec: RunSpec) -> Throughput:
        t = spec.train
        self.calls.append({name: getattr(t, name) for name in type(t).model_fields})
        finite = not any(getattr(t, f) == v for f, v in self.not_finite)
        rate = self.rate(t)
        return Throughput(rate, 1000.0 * t.batch_size / rate, 8, finite, 0.01)


# The planted truth: host placement, NCHW and the largest batch are faster; bf16 is fastest
# of all but its loss is not finite, so it must never be picked.
FACTORS = {
    ("data_placement", "host"): 1.2,
    ("channels_last", False): 1.3,
    ("batch_size", 2 * BATCH): 1.5,
    ("batch_size", 4 * BATCH): 1.8,
    ("precision", "bf16"): 3.0,
    ("compile", True): 0.9,
}
BEST = {"data_placement": "host", "channels_last": False, "batch_size": 4 * BATCH}


@pytest.fixture(scope="module")
def prepared() -> PreparedDataset:
    """The dataset decoded once for the module, as a tuner shares it between its probes."""
    return prepare(make_spec().dataset)


@pytest.fixture
def temporary_option() -> Iterator[Callable[..., Any]]:
    added: list[str] = []

    def add(name: str, **kwargs: Any) -> Callable[..., Any]:
        added.append(name)
        return speed_option(name, **kwargs)

    yield add
    for name in added:
        SPEED_OPTIONS.pop(name, None)


def context(device: str, **train: Any) -> OptionContext:
    """A hand-made context: a CUDA device need not exist to ask what it would be offered."""
    return OptionContext(torch.device(device), make_spec(**train), 10_000, "device")


# ---- the registry --------------------------------------------------------------------------


def test_fp16_is_offered_only_on_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    precision = SPEED_OPTIONS["precision"].candidates
    assert "fp16" not in precision(context("cpu"))
    assert "bf16" in precision(context("cpu"))
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert {"fp16", "bf16"} <= set(precision(context("cuda")))
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    on_old_gpu = precision(context("cuda"))
    assert "fp16" in on_old_gpu and "bf16" not in on_old_gpu


def test_cudnn_benchmark_is_tried_only_on_cuda_and_auto_counts_as_on() -> None:
    cudnn = SPEED_OPTIONS["cudnn_benchmark"].candidates
    assert cudnn(context("cpu")) == []
    assert cudnn(context("cuda")) == [False]  # None already means on
    assert cudnn(context("cuda", cudnn_benchmark=False)) == [True]


def test_auto_placement_is_not_tried_again_as_what_it_resolves_to() -> None:
    placement = SPEED_OPTIONS["data_placement"].candidates
    assert placement(context("cpu")) == ["host"]  # auto resolves to device in the context
    assert placement(context("cpu", data_placement="host")) == ["device"]


def test_larger_batches_stop_where_the_memory_estimate_or_the_data_ends() -> None:
    batches = SPEED_OPTIONS["batch_size"].candidates
    ctx = context("cpu")
    assert batches(ctx) == [2 * BATCH, 4 * BATCH]
    capped = OptionContext(
        ctx.device,
        ctx.spec,
        10_000,
        "device",
        memory_for_batch=lambda b: 1000 * b,
        memory_budget=1000 * 3 * BATCH,
    )
    assert batches(capped) == [2 * BATCH]
    few_images = OptionContext(ctx.device, ctx.spec, 5 * BATCH, "device")
    assert batches(few_images) == [2 * BATCH]  # x4 would leave no two full batches


def test_unknown_option_is_refused_in_a_sentence(prepared: PreparedDataset) -> None:
    from cnn_lab.engine.errors import UserError

    with pytest.raises(UserError, match="Unknown speed option 'turbo'"):
        advise(make_spec(), prepared=prepared, options=["turbo"], measure=Planted({}))


# ---- the search with planted measurements -------------------------------------------------


def test_advise_picks_the_planted_fastest_finite_combination(prepared: PreparedDataset) -> None:
    planted = Planted(FACTORS, not_finite=frozenset({("precision", "bf16")}))
    advice = advise(make_spec(), prepared=prepared, measure=planted)
    assert advice.changes == BEST
    assert advice.best_images_per_s == pytest.approx(100 * 1.2 * 1.3 * 1.8)
    assert advice.speedup == pytest.approx(1.2 * 1.3 * 1.8)
    bf16 = next(f for f in advice.findings if f.value == "bf16")
    assert not bf16.accepted and "not finite" in bf16.note
    accepted = {f.option: f.value for f in advice.findings if f.accepted}
    assert accepted == BEST
    # speed-ups of the findings are against your settings, chained through the best so far
    batch64 = next(f for f in advice.findings if f.value == 4 * BATCH)
    assert batch64.speedup == pytest.approx(1.2 * 1.3 * 1.8)


def test_exhaustive_finds_the_true_best_and_advise_needs_far_fewer_probes(
    prepared: PreparedDataset,
) -> None:
    planted = Planted(FACTORS, not_finite=frozenset({("precision", "bf16")}))
    found = exhaustive(make_spec(), prepared=prepared, measure=planted)
    assert found.changes == BEST
    assert found.probes == len(planted.calls) == 2 * 2 * 2 * 3 * 2 + 4  # + confirmation
    advised = Planted(FACTORS, not_finite=frozenset({("precision", "bf16")}))
    advise(make_spec(), prepared=prepared, measure=advised)
    assert len(advised.calls) < len(planted.calls) / 2


def test_a_gain_within_the_noise_margin_is_not_taken(prepared: PreparedDataset) -> None:
    advice = advise(
        make_spec(), prepared=prepared, measure=Planted({("channels_last", False): 1.02})
    )
    assert advice.changes == {}
    assert "already the fastest" in advice.message


def test_a_pick_that_is_slower_on_confirmation_is_dropped(prepared: PreparedDataset) -> None:
    class Fickle(Planted):
        def __call__(self, spec: RunSpec) -> Throughput:
            result = super().__call__(spec)
            # NCHW is fast in the search and its second look, slow in the confirmation
            if len(self.calls) > 4 and not spec.train.channels_last:
                return Throughput(50.0, 1.0, 8, True, 0.01)
            return result

    advice = advise(
        make_spec(), prepared=prepared, options=["channels_last"], measure=Fickle(FACTORS)
    )
    assert advice.changes == {}
    assert not any(f.accepted for f in advice.findings)
    assert "not faster when measured again" in advice.message


def test_a_slow_first_probe_does_not_make_the_next_value_a_winner(
    prepared: PreparedDataset,
) -> None:
    class ColdStart(Planted):  # the process's first probe is slow; no option really helps
        def __call__(self, spec: RunSpec) -> Throughput:
            result = super().__call__(spec)
            if len(self.calls) == 1:
                return Throughput(result.images_per_s * 0.7, 1.0, 8, True, 0.01)
            return result

    advice = advise(make_spec(), prepared=prepared, measure=ColdStart({}))
    assert advice.changes == {}
    host = next(f for f in advice.findings if f.value == "host")
    assert not host.accepted and "Measured again" in host.note


def test_refused_values_become_warnings_not_crashes(
    temporary_option: Any, prepared: PreparedDataset
) -> None:
    @temporary_option("half", field="precision", why="Half precision.")
    def _half(ctx: OptionContext) -> list[str]:
        return ["fp16"]  # the CPU refuses it (check_options)

    advice = advise(
        make_spec(), prepared=prepared, options=["half", "channels_last"], measure=Planted(FACTORS)
    )
    assert any("fp16 mixed precision needs a GPU" in w for w in advice.warnings)
    half = next(f for f in advice.findings if f.option == "half")
    assert half.images_per_s is None and not half.accepted
    assert advice.changes == {"channels_last": False}


def test_a_value_that_fails_is_a_warning_and_never_picked(prepared: PreparedDataset) -> None:
    class Oom(Planted):
        def __call__(self, spec: RunSpec) -> Throughput:
            if spec.train.batch_size == 4 * BATCH:
                raise RuntimeError("CUDA out of memory. Tried to allocate 2 GiB")
            return super().__call__(spec)

    advice = advise(make_spec(), prepared=prepared, options=["batch_size"], measure=Oom(FACTORS))
    assert advice.changes == {"batch_size": 2 * BATCH}
    assert any("ran out of memory at batch size 64" in w for w in advice.warnings)


def test_stop_between_probes_returns_what_was_measured(prepared: PreparedDataset) -> None:
    planted = Planted(FACTORS)
    advice = advise(
        make_spec(), prepared=prepared, measure=planted, should_stop=lambda: len(planted.calls) >= 3
    )
    assert advice.probes == len(planted.calls) == 3
    assert advice.message.startswith("Stopped after 3 probes")
    json.dumps(advice.to_dict(), allow_nan=False)


def test_progress_counts_up_to_its_total(prepared: PreparedDataset) -> None:
    seen: list[tuple[str, int, int]] = []
    advise(
        make_spec(), prepared=prepared, measure=Planted(FACTORS), progress=lambda *a: seen.append(a)
    )
    dones = [done for _, done, _ in seen]
    assert dones == sorted(dones) and all(done <= total for _, done, total in seen)
    assert seen[0][0] == "baseline" and seen[-1][0] == "done" and seen[-1][1] == seen[-1][2]


def test_throughput_counts_full_batches_per_step() -> None:
    steps = [
        StepResult(i, 1.0, s, n, 0.1)
        for i, (s, n) in enumerate([(5.0, 64), (0.1, 64), (0.1, 64), (0.01, 8), (0.2, 64)])
    ]
    result = throughput(steps, batch_size=64, warmup=1)
    assert result.images_per_s == pytest.approx(640.0)  # the 8-image tail is left out
    assert result.first_step_s == 5.0 and result.finite


# ---- real probes --------------------------------------------------------------------------


def test_real_advice_on_the_cpu_is_sane_and_its_changes_apply(prepared: PreparedDataset) -> None:
    spec = make_spec()
    advice = advise(
        spec,
        prepared=prepared,
        options=["channels_last", "batch_size"],
        warmup=1,
        steps=3,
        confirm_rounds=1,
    )
    data = json.loads(json.dumps(advice.to_dict(), allow_nan=False))
    assert data["device"].startswith("cpu")
    assert set(data) >= {"baseline", "best", "speedup", "changes", "findings", "warnings"}
    assert data["baseline"]["settings"] == {"channels_last": True, "batch_size": BATCH}
    assert data["baseline"]["images_per_s"] > 0 and data["speedup"] > 0
    assert len(data["findings"]) == 3  # NCHW, then two larger batches
    assert {f["option"] for f in data["findings"]} == {"channels_last", "batch_size"}
    assert all(f["speedup"] > 0 and math.isfinite(f["speedup"]) for f in data["findings"])
    for field, value in data["changes"].items():
        assert getattr(spec.train, field) != value
    applied = TrainSpec.model_validate(spec.train.model_copy(update=data["changes"]).model_dump())
    assert applied.batch_size in (BATCH, 2 * BATCH, 4 * BATCH)
    assert advice.message in advice.summary_lines()


# ---- the command line ---------------------------------------------------------------------

CLI_DATA = ["--data", "sample:shapes", "--limit", "300", "--batch-size", "16", "--device", "cpu"]


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """``cnn-lab ARGV`` in this process, with what it wrote to stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def test_cli_tune_speed_json_prints_one_advice_object() -> None:
    argv = ["tune", "speed", *CLI_DATA, "--options", "channels_last", "--steps", "2", "--json"]
    code, out, err = run_cli([*argv, "--warmup", "1"])
    assert code == 0, err
    data = json.loads(out)  # exactly one JSON object on stdout
    assert data["baseline"]["settings"] == {"channels_last": True}
    assert [(f["option"], f["value"]) for f in data["findings"]] == [("channels_last", False)]
    assert data["baseline"]["images_per_s"] > 0
    assert set(data["changes"]) <= {"channels_last"}
    assert "baseline" in err  # progress goes to stderr


def test_cli_tune_speed_refuses_an_unknown_option_in_one_line() -> None:
    code, out, err = run_cli(["tune", "speed", *CLI_DATA, "--options", "turbo"])
    assert code == EXIT_USAGE and out == ""
    assert err.startswith("cnn-lab") and "Unknown speed option 'turbo'" in err
    assert len(err.splitlines()) == 1
