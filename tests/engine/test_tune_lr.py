"""The learning-rate range test: the reading rule on hand-made curves, then the real test.

The rule (``suggest_lr``) is a pure function, so its cases are curves drawn by hand: a clean
valley, a noisy one, curves that never fall. The real test runs on the shapes sample with a
narrow small_cnn, and its suggestion is then used to train: a rate that does not make the
loss fall would be a wrong answer however plausible it looked.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Iterator
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

from cnn_lab.engine.data.prepare import PreparedDataset
from cnn_lab.engine.errors import UserError
from cnn_lab.engine.specs import RunSpec
from cnn_lab.engine.tune import lr_finder
from cnn_lab.engine.tune.lr_finder import lr_range_test, suggest_lr
from cnn_lab.engine.tune.probe import Probe, prepare

SPEC = RunSpec.from_dict(
    {
        "dataset": {"source": "sample:shapes", "limit": 600},
        "architecture": {"preset": "small_cnn", "width": 0.5},
        "train": {"batch_size": 32, "optimizer": "adamw", "device": "cpu"},
    }
)
KEYS = {
    "lrs",
    "losses",
    "smoothed",
    "suggestion",
    "steepest_lr",
    "min_loss_lr",
    "diverged_at",
    "message",
}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PreparedDataset]:
    """The sample decoded once for the module, into a cache folder of its own."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CNN_LAB_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield prepare(SPEC.dataset)


def geometric(n: int, start: float = 1e-6, end: float = 1.0) -> list[float]:
    return [start * (end / start) ** (i / (n - 1)) for i in range(n)]


def valley_curve(lrs: list[float], noise: float = 0.0) -> list[float]:
    """Flat at 2.3 below 1e-4, falling to 0.5 at 1e-2 (linear in log-rate), then exploding."""
    losses = []
    for i, lr in enumerate(lrs):
        x = math.log10(lr)
        if x < -4:
            value = 2.3
        elif x < -2:
            value = 2.3 - 1.8 * (x + 4) / 2
        else:
            value = 0.5 + 30.0 * (x + 2) ** 2
        wobble = noise * math.sin(i * 2.7) * (1 if i % 3 else -1)
        losses.append(value + wobble)
    return losses


# ------------------------------------------------------------------------------ the rule


def test_a_clean_valley_is_read_inside_the_fall_and_before_the_minimum() -> None:
    lrs = geometric(100)
    read = suggest_lr(lrs, valley_curve(lrs))
    assert read.suggestion is not None
    assert 1e-4 < read.suggestion < 1e-2
    assert read.min_loss_lr is not None and 0.5e-2 < read.min_loss_lr < 2e-2
    assert read.suggestion < read.min_loss_lr
    assert read.steepest_lr is not None and 1e-4 < read.steepest_lr <= 1e-2
    assert read.valley is not None
    start, end = read.valley
    assert lrs[start] <= read.suggestion <= lrs[end]
    assert "suggested" in read.message


def test_a_noisy_valley_is_still_read_inside_the_fall() -> None:
    lrs = geometric(120)
    read = suggest_lr(lrs, valley_curve(lrs, noise=0.05))
    assert read.suggestion is not None
    assert 1e-4 < read.suggestion < 1e-2


@pytest.mark.parametrize(
    ("name", "curve"),
    [
        ("rising from the start", lambda lrs: [1.0 + i * 0.1 for i in range(len(lrs))]),
        ("flat", lambda lrs: [2.3] * len(lrs)),
        ("flat with noise", lambda lrs: [2.3 + 0.001 * math.sin(i) for i in range(len(lrs))]),
    ],
)
def test_a_curve_that_never_falls_gets_no_suggestion(name: str, curve: object) -> None:
    lrs = geometric(60)
    read = suggest_lr(lrs, curve(lrs))  # type: ignore[operator]
    assert read.suggestion is None, name
    assert "never" in read.message
    assert read.min_loss_lr is not None  # the minimum is still a fact worth reporting


def test_a_rising_curve_has_no_steepest_descent() -> None:
    lrs = geometric(40)
    read = suggest_lr(lrs, [1.0 + i for i in range(40)])
    assert read.steepest_lr is None


def test_too_few_points_are_refused_with_a_reason() -> None:
    read = suggest_lr([1e-3, 1e-2], [2.0, 1.0])
    assert read.suggestion is None and read.min_loss_lr is None
    assert "too few" in read.message


def test_curves_of_different_lengths_are_a_programming_error() -> None:
    with pytest.raises(ValueError, match="rates"):
        suggest_lr([1e-3, 1e-2, 1e-1], [1.0, 0.5])


def _longest_fall_length(values: list[float]) -> int:
    best = [1] * len(values)
    for i in range(len(values)):
        for j in range(i):
            if values[j] > values[i]:
                best[i] = max(best[i], best[j] + 1)
    return max(best, default=0)


@settings(max_examples=300, deadline=None)
@given(hs.lists(hs.integers(0, 20), max_size=40))
def test_the_valley_is_a_longest_fall(values: list[int]) -> None:
    """The valley is a strictly falling subsequence, as long as any (checked by brute force)."""
    floats = [float(v) for v in values]
    chain = lr_finder._longest_fall(floats)
    assert chain == sorted(chain)
    assert all(floats[a] > floats[b] for a, b in pairwise(chain))
    assert len(chain) == _longest_fall_length(floats)


@pytest.mark.parametrize(
    ("start", "end", "steps", "words"),
    [
        (1e-2, 1e-3, 50, "below the end"),
        (1e-3, 1e-3, 50, "below the end"),
        (0.0, 1.0, 50, "positive"),
        (-1e-3, 1.0, 50, "positive"),
        (1e-6, math.inf, 50, "positive"),
        (1e-6, 1.0, 5, "at least 10 steps"),
    ],
)
def test_arguments_that_describe_no_range_are_refused(
    start: float, end: float, steps: int, words: str
) -> None:
    with pytest.raises(UserError, match=words) as caught:
        lr_range_test(SPEC, start_lr=start, end_lr=end, steps=steps)
    assert str(caught.value).endswith(".")


# ------------------------------------------------------------------------------ the real test


def test_the_range_test_suggests_a_rate_that_trains(prepared: PreparedDataset) -> None:
    seen: list[tuple[str, int, int]] = []
    result = lr_range_test(
        SPEC,
        start_lr=1e-5,
        end_lr=1.0,
        steps=40,
        prepared=prepared,
        progress=lambda *args: seen.append(args),
    )
    n = len(result.lrs)
    assert n == len(result.losses) == len(result.smoothed)
    assert 10 <= n <= 40
    # The rate rises geometrically from start_lr, whatever the spec's schedule says (onecycle).
    assert SPEC.train.schedule == "onecycle"
    assert result.lrs[0] == pytest.approx(1e-5)
    ratios = [b / a for a, b in pairwise(result.lrs)]
    assert all(r == pytest.approx((1.0 / 1e-5) ** (1 / 39), rel=1e-6) for r in ratios)
    # The smoothed curve is the bias-corrected EMA of the recorded losses.
    average = 0.0
    for i, (loss, smooth) in enumerate(zip(result.losses, result.smoothed, strict=True)):
        average = 0.98 * average + 0.02 * loss
        assert smooth == pytest.approx(average / (1 - 0.98 ** (i + 1)))
    assert result.smoothed[0] == pytest.approx(result.losses[0])
    assert seen[-1][1] == n and seen[-1][0] == lr_finder.STAGE

    assert result.suggestion is not None, result.message
    assert 1e-5 <= result.suggestion <= 1.0
    assert result.suggestion in result.lrs
    assert result.min_loss_lr in result.lrs

    data = result.to_dict()
    assert set(data) == KEYS
    json.dumps(data, allow_nan=False)
    assert any("suggestion" in line for line in result.summary_lines())

    # Training a few steps at the suggestion must lower the loss.
    with Probe(SPEC, prepared=prepared) as probe:
        losses = [s.loss for s in probe.steps(30, lr=lambda _: result.suggestion)]
    first, last = statistics.mean(losses[:5]), statistics.mean(losses[-5:])
    assert last < 0.95 * first, (first, last)


@pytest.mark.parametrize("optimizer", ["adamw", "sgd"])
def test_a_huge_end_rate_stops_early_at_divergence(
    prepared: PreparedDataset, optimizer: str
) -> None:
    spec = RunSpec.from_dict(
        {
            **SPEC.model_dump(mode="json"),
            "train": {**SPEC.train.model_dump(), "optimizer": optimizer},
        }
    )
    result = lr_range_test(spec, start_lr=1e-4, end_lr=1e5, steps=40, prepared=prepared)
    assert result.diverged_at is not None
    assert len(result.lrs) < 40
    assert 1e-4 < result.diverged_at <= 1e5
    assert "diverged" in result.message
    assert len(result.lrs) == len(result.losses) == len(result.smoothed)
    assert all(math.isfinite(x) for x in (*result.losses, *result.smoothed))
    json.dumps(result.to_dict(), allow_nan=False)


def test_a_stop_request_ends_the_test_with_what_was_measured(prepared: PreparedDataset) -> None:
    stop = [False]

    def progress(stage: str, done: int, total: int) -> None:
        if done == 12:
            stop[0] = True

    result = lr_range_test(
        SPEC, steps=60, prepared=prepared, should_stop=lambda: stop[0], progress=progress
    )
    assert len(result.lrs) == 12
    assert result.diverged_at is None
    assert "stopped after 12 of 60 steps" in result.message
