"""The largest-batch finder: the search on planted thresholds, then real steps on the CPU.

``bisect_max`` is pure, so a fake ``fits`` with a planted threshold checks it exhaustively.
The probe method runs real steps with a simulated out-of-memory above a planted size (a real
one on the CPU would swap or kill the test run); the budget method runs real steps and
measures the process's memory, and once with a meter that reports twice the estimate, to
check that an answer the real step contradicts is scaled down.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as hs

from cnn_lab.engine.data.loader import Batch
from cnn_lab.engine.data.prepare import PreparedDataset
from cnn_lab.engine.errors import UserError
from cnn_lab.engine.models.architecture_summary import summarize_architecture
from cnn_lab.engine.specs import RunSpec
from cnn_lab.engine.tune import batch_size as bs
from cnn_lab.engine.tune.batch_size import align, bisect_max, find_max_batch
from cnn_lab.engine.tune.probe import Probe, prepare

SPEC = RunSpec.from_dict(
    {
        "dataset": {"source": "sample:shapes", "limit": 300},
        "architecture": {"preset": "small_cnn", "width": 0.5},
        "train": {"batch_size": 16, "optimizer": "adamw", "device": "cpu"},
    }
)
KEYS = {
    "max_batch",
    "method",
    "estimate_batch",
    "per_image_bytes",
    "budget_bytes",
    "probes",
    "message",
}
MIB = 1 << 20


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PreparedDataset]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CNN_LAB_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield prepare(SPEC.dataset)


# --------------------------------------------------------------------------- the search


def expected(threshold: int, limit: int) -> int | None:
    best = min(threshold, limit)
    return align(best) if best >= 1 else None


@settings(max_examples=400, deadline=None)
@given(
    threshold=hs.integers(0, 5000),
    start=hs.integers(-5, 6000),
    limit=hs.integers(1, 6000),
)
def test_bisect_finds_the_planted_threshold(threshold: int, start: int, limit: int) -> None:
    tried: list[int] = []

    def fits(n: int) -> bool:
        tried.append(n)
        return n <= threshold

    assert bisect_max(fits, start, limit) == expected(threshold, limit)
    assert all(1 <= n <= limit for n in tried)
    assert len(tried) == len(set(tried)), tried  # no size is probed twice
    assert len(tried) <= 2 * math.ceil(math.log2(limit + 1)) + 4, tried


def test_bisect_doubles_then_bisects_to_multiples_of_8() -> None:
    tried: list[int] = []

    def fits(n: int) -> bool:
        tried.append(n)
        return n <= 50

    assert bisect_max(fits, 16, 4096) == 48
    assert tried == [16, 32, 64, 48, 56]


def test_bisect_halves_when_the_start_does_not_fit_and_is_exact_below_8() -> None:
    tried: list[int] = []

    def fits(n: int) -> bool:
        tried.append(n)
        return n <= 5

    assert bisect_max(fits, 64, 4096) == 5
    assert tried[:4] == [64, 32, 16, 8]
    assert bisect_max(lambda n: False, 64, 4096) is None


@pytest.mark.parametrize(("size", "aligned"), [(1, 1), (7, 7), (8, 8), (15, 8), (100, 96)])
def test_align_rounds_down_to_8_from_8_on(size: int, aligned: int) -> None:
    assert align(size) == aligned


@pytest.mark.parametrize(
    ("size", "used", "budget", "fixed", "at_most"),
    [
        (64, 200 * MIB, 100 * MIB, 0, 32),  # twice over: about half
        (64, None, 100 * MIB, 0, 32),  # out of memory: half
        (8, 101 * MIB, 100 * MIB, 0, 7),  # barely over: still smaller
        (64, 150 * MIB, 100 * MIB, 90 * MIB, 16),  # most of it fixed: the rest shrinks more
    ],
)
def test_scaling_down_is_always_smaller(
    size: int, used: int | None, budget: int, fixed: int, at_most: int
) -> None:
    smaller = bs._scaled_down(size, used, budget, fixed)
    assert 0 <= smaller <= at_most
    assert smaller == align(smaller)


# --------------------------------------------------------------------------- the estimate


def test_the_estimate_is_the_summarys_line(prepared: PreparedDataset) -> None:
    shape = bs.input_shape(prepared)
    estimate = bs.estimate_memory(SPEC, shape)
    summary = summarize_architecture(SPEC.architecture, shape)
    for n in (1, 7, 64, 1000):
        assert estimate.fixed_bytes + n * estimate.per_image_bytes == (
            summary.training_memory_bytes(n, "adamw")
        )
    budget = summary.training_memory_bytes(100, "adamw")
    assert estimate.batch_for(budget) == 100
    assert estimate.batch_for(budget - 1) == 99
    assert estimate.batch_for(estimate.fixed_bytes // 2) == 0


# --------------------------------------------------------------------------- probe method


def test_probe_finds_a_planted_out_of_memory_threshold(
    prepared: PreparedDataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    planted = 50
    real_step = Probe.step
    sizes: list[int] = []

    def step(self: Probe, batch: Batch) -> float:
        n = len(batch.labels)
        sizes.append(n)
        assert batch.x.shape[0] == batch.targets.shape[0] == n
        if n > planted:
            raise torch.OutOfMemoryError(f"CUDA out of memory. Tried to allocate {n} images")
        return real_step(self, batch)

    monkeypatch.setattr(Probe, "step", step)
    result = find_max_batch(SPEC, limit=128, method="probe", prepared=prepared)
    assert result.max_batch == align(planted) == 48
    assert result.method == "probe"
    probes = {p.batch: p for p in result.probes}
    assert [p.batch for p in result.probes] == [128, 64, 32, 48, 56]
    assert all(p.ok == (p.batch <= planted) for p in result.probes)
    assert all((p.peak_bytes is None) == (not p.ok) for p in result.probes)
    assert probes[48].peak_bytes is not None and probes[48].peak_bytes > 0
    assert sorted(set(sizes)) == [2, 32, 48, 56, 64, 128]  # 2: the unrecorded warm-up
    assert "Probed real steps, as asked" in result.message
    assert "out of memory" in result.message


def test_a_batch_larger_than_the_split_repeats_it(prepared: PreparedDataset) -> None:
    split = len(prepared.split(SPEC.dataset).train)
    with Probe(SPEC, prepared=prepared) as probe:
        batch = bs._batch_of(probe, split + 100)
        small = bs._batch_of(probe, 5)
    assert batch.x.shape[0] == batch.targets.shape[0] == batch.labels.shape[0] == split + 100
    assert batch.x.is_contiguous(memory_format=torch.channels_last)
    assert torch.isfinite(batch.x).all()
    assert small.x.shape[0] == 5


def test_probe_treats_other_errors_as_errors(
    prepared: PreparedDataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    def step(self: Probe, batch: Batch) -> float:
        raise ValueError("a real bug")

    monkeypatch.setattr(Probe, "step", step)
    with pytest.raises(ValueError, match="a real bug"):
        find_max_batch(SPEC, limit=64, method="probe", prepared=prepared)


def test_probe_reaching_the_limit_says_so(prepared: PreparedDataset) -> None:
    result = find_max_batch(SPEC, limit=20, method="probe", prepared=prepared)
    assert result.max_batch == 16  # the limit, rounded down to a multiple of 8
    assert [p.batch for p in result.probes] == [16, 20]
    assert all(p.ok for p in result.probes)
    assert "up to the limit of 20" in result.message


# --------------------------------------------------------------------------- budget method


def test_budget_answers_from_the_estimate_and_checks_one_real_step(
    prepared: PreparedDataset,
) -> None:
    budget = 48 * MIB
    result = find_max_batch(SPEC, memory_budget_bytes=budget, prepared=prepared)
    estimate = bs.estimate_memory(SPEC, bs.input_shape(prepared))
    assert result.method == "budget"
    assert "the default on CPU" in result.message
    assert result.budget_bytes == budget
    assert result.per_image_bytes == estimate.per_image_bytes
    assert result.estimate_batch == (budget - estimate.fixed_bytes) // estimate.per_image_bytes
    assert result.probes, result.message
    assert result.probes[0].batch == align(result.estimate_batch)
    last = result.probes[-1]
    assert result.max_batch == last.batch and last.ok
    assert last.peak_bytes is not None and 0 < last.peak_bytes <= budget
    assert result.max_batch % 8 == 0 and result.max_batch <= result.estimate_batch
    for p in result.probes[:-1]:  # earlier checks were over budget
        assert not p.ok and p.peak_bytes is not None and p.peak_bytes > budget
    data = result.to_dict()
    assert set(data) == KEYS
    json.dumps(data, allow_nan=False)
    assert {"batch", "ok", "seconds"} <= set(data["probes"][0])
    assert any("largest batch" in line for line in result.summary_lines())


class _TwiceTheEstimate:
    """A meter whose steps use twice the estimate's bytes per image (fixed part as estimated)."""

    def __init__(self, estimate: bs.MemoryEstimate, image_bytes: int) -> None:
        self.estimate = estimate
        self.image_bytes = image_bytes
        self.n = 0

    def held(self, batch_bytes: int) -> int:
        self.n = batch_bytes // self.image_bytes
        return self.estimate.fixed_bytes

    def begin(self) -> None:
        pass

    def end(self) -> int:
        return 2 * self.n * self.estimate.per_image_bytes


def test_budget_scales_down_when_the_real_step_needs_more(
    prepared: PreparedDataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, h, w, c = prepared.images.shape
    image_bytes = h * w * c * 4 + 16  # float pixels, int64 target and label
    estimate = bs.estimate_memory(SPEC, bs.input_shape(prepared))
    monkeypatch.setattr(
        bs, "meter_for", lambda device, resident: _TwiceTheEstimate(estimate, image_bytes)
    )
    budget = 40 * MIB
    result = find_max_batch(SPEC, memory_budget_bytes=budget, prepared=prepared)
    first = result.probes[0]
    assert first.batch == align(result.estimate_batch or 0) and not first.ok
    assert result.max_batch is not None
    assert estimate.fixed_bytes + 2 * result.max_batch * estimate.per_image_bytes <= budget
    # Scaled in proportion, not halved again and again: close to half the estimate.
    assert result.max_batch >= align(int(0.8 * (result.estimate_batch or 0) / 2))
    assert result.probes[-1].ok and result.probes[-1].batch == result.max_batch


def test_budget_smaller_than_the_model_needs_no_step(prepared: PreparedDataset) -> None:
    result = find_max_batch(SPEC, memory_budget_bytes=100_000, prepared=prepared)
    assert result.max_batch is None
    assert result.probes == ()
    assert result.estimate_batch == 0
    assert "not even one image" in result.message


def test_the_default_budget_is_a_share_of_the_available_ram(prepared: PreparedDataset) -> None:
    import psutil

    available = psutil.virtual_memory().available
    result = find_max_batch(SPEC, limit=24, prepared=prepared)
    assert result.method == "budget"
    assert result.budget_bytes is not None
    assert result.budget_bytes == pytest.approx(0.5 * available, rel=0.2)
    assert result.max_batch == 24
    assert "never uses a batch larger" not in result.message


def test_a_stop_request_ends_the_search(
    prepared: PreparedDataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_step = Probe.step

    def step(self: Probe, batch: Batch) -> float:
        if len(batch.labels) > 40:
            raise torch.OutOfMemoryError("out of memory")
        return real_step(self, batch)

    monkeypatch.setattr(Probe, "step", step)
    stop = [False]

    def progress(stage: str, done: int, total: int) -> None:
        if stage == bs.STAGE and done == 3:
            stop[0] = True

    result = find_max_batch(
        SPEC,
        limit=256,
        method="probe",
        prepared=prepared,
        should_stop=lambda: stop[0],
        progress=progress,
    )
    assert [p.batch for p in result.probes] == [256, 128, 64]
    assert result.max_batch is None
    assert "Stopped after 3 probes" in result.message


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"limit": 0}, "at least 1"),
        ({"memory_budget_bytes": -5}, "positive"),
        ({"method": "guess"}, "Unknown batch-size method"),
    ],
)
def test_bad_arguments_are_refused(kwargs: dict[str, object], words: str) -> None:
    with pytest.raises(UserError, match=words):
        find_max_batch(SPEC, **kwargs)  # type: ignore[arg-type]
