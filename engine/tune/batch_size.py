"""The largest batch that fits: estimated from the architecture, then checked by real steps.

Two ways to answer, because running out of memory means different things on different
devices:

* ``probe`` (the default on a GPU): take real forward, backward and optimizer steps at
  growing batch sizes, starting near the estimate, doubling until one runs out of memory
  (or reaches ``limit``), then bisecting between the last size that fit and the first that
  did not. A CUDA out-of-memory error is an ordinary exception: catching it and emptying
  the cache leaves the process healthy, so asking the device itself is both safe and exact.
* ``budget`` (the default on the CPU): there a real out-of-memory is the system swapping
  or killing the process, so we never go looking for it. The answer comes from the
  architecture's memory estimate and a budget (given, or a share of the available RAM), and
  one real step at that size checks the estimate, measuring the process's peak memory; if
  the step used more than the budget the answer is scaled down. The check matters: the
  estimate leaves out convolution workspaces and allocator overhead, and real steps of
  small_cnn on 64-pixel images used about 1.3x the estimate on a CPU and 2x on an H200.

The estimate is ``ModelSummary.training_memory_bytes``, measured on a meta-device twin of
the network (no memory, milliseconds). It is linear in the batch size, so two evaluations
give fixed bytes (weights, gradients, optimizer state) and bytes per image (saved
activations, the input), and the batch for a budget is ``(budget - fixed) // per_image``.

Every probe steps one model, as training would: the network, optimizer and loader of a
``Probe`` (its resident data copy included, since training pays for it too), fed a batch of
exactly the size asked (the split is repeated when it is smaller). The weights it learns on
the way are thrown away. Results of 8 or more are rounded down to a multiple of 8, the
granularity tensor cores and most kernels favour.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from cnn_lab.engine.data.loader import Batch, free_bytes
from cnn_lab.engine.data.prepare import PreparedDataset
from cnn_lab.engine.errors import UserError
from cnn_lab.engine.models import InputShape
from cnn_lab.engine.specs import RunSpec
from cnn_lab.engine.train.devices import resolve_device
from cnn_lab.engine.train.memory import free_device_memory, is_out_of_memory
from cnn_lab.engine.tune.memory_meter import Meter, meter_for
from cnn_lab.engine.tune.probe import Probe, prepared_for
from cnn_lab.engine.util.formatting import format_bytes

Method = Literal["probe", "budget"]
METHODS = ("auto", "probe", "budget")

GRANULARITY = 8
BUDGET_SHARE = {"cuda": 0.9, "cpu": 0.5}
"""Share of the free memory a default budget takes. On a GPU 10% stays for the CUDA
context, cuDNN workspaces and allocator rounding the estimate leaves out; on the CPU half,
because the window, the data cache's pages and everything else on the machine share it."""
DEFAULT_SHARE = 0.5
MAX_RECHECKS = 4
"""Budget method: how many real steps check (and scale down) the estimate's answer."""
RECHECK_MARGIN = 0.95
STAGE = "batch-size probe"
WARM_UP = 2
"""Images in the unrecorded first step (2, not 1: BatchNorm refuses one value per channel)."""

Fits = Callable[[int], bool]


# --------------------------------------------------------------------------- the search


def align(size: int, granularity: int = GRANULARITY) -> int:
    """``size`` rounded down to a multiple of ``granularity``; sizes below it stay as they are."""
    return size if size < granularity else size // granularity * granularity


def bisect_max(fits: Fits, start: int, limit: int, granularity: int = GRANULARITY) -> int | None:
    """The largest size up to ``limit`` for which ``fits`` holds, assuming it is monotone.

    Sizes tried are 1 to ``granularity - 1`` and multiples of ``granularity`` (plus ``start``
    and ``limit`` themselves): from ``start`` the size doubles while it fits (or halves while
    it does not), then the gap between the largest size that fit and the smallest that did
    not is bisected. The answer is aligned (``align``); None when not even 1 fits.

    The bisection runs over the *indices* of the allowed sizes (1..g-1, then g, 2g, 3g, …),
    so every midpoint is an allowed size and the answer is exact to the granularity.
    """
    if limit < 1:
        return None
    size = max(1, min(start, limit))
    good: int | None = None
    bad: int | None = None
    if fits(size):
        good = size
        while good < limit:
            size = min(good * 2, limit)
            if not fits(size):
                bad = size
                break
            good = size
        if bad is None:
            return align(good, granularity)
    else:
        bad = size
        size = bad // 2
        while size >= 1:
            if fits(size):
                good = size
                break
            bad, size = size, size // 2
        if good is None:
            return None
    low = _index(good, granularity)  # fits (an allowed size at or below good)
    high = _index(bad - 1, granularity) + 1  # fails, or lies past every allowed size < bad
    while high - low > 1:
        middle = (low + high) // 2
        if fits(_size(middle, granularity)):
            low = middle
        else:
            high = middle
    return _size(low, granularity)


def _index(size: int, g: int) -> int:
    """Index of the largest allowed size at or below ``size`` (sizes 1..g-1, g, 2g, …)."""
    return size if size < g else g - 1 + size // g


def _size(index: int, g: int) -> int:
    return index if index < g else (index - g + 1) * g


# --------------------------------------------------------------------------- the estimate


@dataclass(frozen=True)
class MemoryEstimate:
    """Training memory as fixed bytes plus bytes per image (the estimate is linear)."""

    fixed_bytes: int
    per_image_bytes: int

    def batch_for(self, budget_bytes: int) -> int:
        """The largest batch the estimate puts within ``budget_bytes`` (0 if none)."""
        if self.per_image_bytes <= 0:
            return 0
        return max(0, (budget_bytes - self.fixed_bytes) // self.per_image_bytes)


def estimate_memory(spec: RunSpec, shape: InputShape) -> MemoryEstimate:
    """Fixed and per-image training memory of ``spec``'s network, from its meta-device summary."""
    from cnn_lab.engine.models.architecture_summary import summarize_architecture

    summary = summarize_architecture(spec.architecture, shape)
    one = summary.training_memory_bytes(1, spec.train.optimizer)
    two = summary.training_memory_bytes(2, spec.train.optimizer)
    return MemoryEstimate(fixed_bytes=one - (two - one), per_image_bytes=two - one)


def input_shape(prepared: PreparedDataset) -> InputShape:
    _, height, width, channels = prepared.images.shape
    return InputShape(channels, height, width, len(prepared.classes))


def default_budget(device: torch.device) -> int:
    """A share (``BUDGET_SHARE``) of the memory free on ``device`` right now."""
    return int(free_bytes(device) * BUDGET_SHARE.get(device.type, DEFAULT_SHARE))


# --------------------------------------------------------------------------- the result


@dataclass(frozen=True)
class BatchProbe:
    """One real step at ``batch``: whether it fit and what it cost."""

    batch: int
    ok: bool
    """No out-of-memory error, and (where there is a budget) a peak within it."""
    seconds: float
    peak_bytes: int | None = None
    """Memory the probe's model, data and step held at the step's peak (None: unmeasured)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "batch": self.batch,
            "ok": self.ok,
            "seconds": self.seconds,
            "peak_bytes": self.peak_bytes,
        }


@dataclass(frozen=True)
class BatchSizeResult:
    max_batch: int | None
    method: Method
    estimate_batch: int | None
    per_image_bytes: int | None
    budget_bytes: int | None
    probes: tuple[BatchProbe, ...]
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "max_batch": self.max_batch,
            "method": self.method,
            "estimate_batch": self.estimate_batch,
            "per_image_bytes": self.per_image_bytes,
            "budget_bytes": self.budget_bytes,
            "probes": [p.to_dict() for p in self.probes],
            "message": self.message,
        }

    def summary_lines(self) -> list[str]:
        lines = [f"largest batch: {self.max_batch if self.max_batch else 'none fits'}"]
        lines.append(f"  method          {self.method}")
        if self.estimate_batch is not None:
            lines.append(f"  estimate        {self.estimate_batch}")
        if self.per_image_bytes is not None:
            lines.append(f"  per image       {format_bytes(self.per_image_bytes)}")
        if self.budget_bytes is not None:
            lines.append(f"  budget          {format_bytes(self.budget_bytes)}")
        for p in self.probes:
            used = f", {format_bytes(p.peak_bytes)}" if p.peak_bytes is not None else ""
            verdict = "fits" if p.ok else "out of memory" if p.peak_bytes is None else "over budget"
            lines.append(f"  batch {p.batch:>6}    {verdict} ({p.seconds:.2f} s{used})")
        lines.append(self.message)
        return lines


class _Stopped(Exception):
    """The person asked to stop; unwinds the search, which then reports what it has."""


@dataclass
class _Stepper:
    """Takes one real training step at any batch size on one probe, and records it."""

    probe: Probe
    meter: Meter
    budget: int | None
    should_stop: Callable[[], bool]
    progress: Callable[[int], None]
    probes: list[BatchProbe] = field(default_factory=list)

    def fits(self, n: int) -> bool:
        return self.step(n).ok

    def warm_up(self) -> None:
        """One small unrecorded step: code loaded, optimizer state built, as in training."""
        try:
            self.probe.step(_batch_of(self.probe, WARM_UP))
        except Exception as exc:
            if not is_out_of_memory(exc):
                raise
        self.probe.optimizer.zero_grad(set_to_none=True)
        free_device_memory(self.probe.device)

    def step(self, n: int) -> BatchProbe:
        """One real step at ``n``; it fits when memory lasts and the peak is within budget."""
        if self.should_stop():
            raise _Stopped
        device = self.probe.device
        free_device_memory(device)
        start = time.perf_counter()
        held, growth = 0, 0
        try:
            batch = _batch_of(self.probe, n)
            held = self.meter.held(_nbytes(batch))
            self.meter.begin()
            try:
                self.probe.step(batch)
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
            finally:
                del batch
                growth = self.meter.end()
            ok = True
        except Exception as exc:
            if not is_out_of_memory(exc):
                raise
            ok = False
        peak = held + max(growth, 0) if ok else None
        if peak is not None and self.budget is not None and peak > self.budget:
            ok = False
        # A step that failed half-way leaves gradients behind; training would not keep them.
        self.probe.optimizer.zero_grad(set_to_none=True)
        free_device_memory(device)
        result = BatchProbe(n, ok, time.perf_counter() - start, peak)
        self.probes.append(result)
        self.progress(len(self.probes))
        return result


def _nbytes(batch: Batch) -> int:
    tensors = (batch.x, batch.targets, batch.labels)
    return sum(t.element_size() * t.nelement() for t in tensors)


def _batch_of(probe: Probe, n: int) -> Batch:
    """A training batch of exactly ``n`` images from the probe's own loader.

    The loader yields at most one split per batch, so a batch larger than the split is
    the split repeated (as many epochs), which costs the step exactly what a real batch of
    ``n`` would.
    """
    loader = probe.data.train
    loader.batch_size = n
    parts: list[Batch] = []
    have = 0
    batches = probe.batches()
    try:
        for batch in batches:
            parts.append(batch)
            have += len(batch.labels)
            if have >= n:
                break
    finally:
        batches.close()
    if len(parts) == 1 and have == n:
        return parts[0]
    layout = torch.channels_last if probe.spec.train.channels_last else torch.contiguous_format
    x = torch.cat([p.x for p in parts])[:n].contiguous(memory_format=layout)
    targets = torch.cat([p.targets for p in parts])[:n]
    labels = torch.cat([p.labels for p in parts])[:n]
    return Batch(x, targets, labels)


# --------------------------------------------------------------------------- the finder


def find_max_batch(
    spec: RunSpec,
    *,
    limit: int = 4096,
    memory_budget_bytes: int | None = None,
    method: str = "auto",
    prepared: PreparedDataset | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    progress: Callable[[str, int, int], None] = lambda *_: None,
) -> BatchSizeResult:
    """The largest training batch of ``spec`` that fits its device (see the module docstring).

    ``limit`` caps the sizes tried; ``memory_budget_bytes`` bounds the memory a step may use
    (by default a share of the free memory, ``BUDGET_SHARE``); ``method`` is "probe",
    "budget" or "auto" (probe on CUDA, budget elsewhere). A stop request ends the search
    early with what was measured.
    """
    _check_arguments(limit, memory_budget_bytes, method)
    prepared = prepared_for(spec, prepared, should_stop=should_stop, progress=progress)
    device = resolve_device(spec.train.device)
    chosen, why = _choose(method, device)
    estimate = estimate_memory(spec, input_shape(prepared))
    meter = meter_for(device, estimate.fixed_bytes)
    budget = memory_budget_bytes if memory_budget_bytes is not None else default_budget(device)
    estimate_batch = estimate.batch_for(budget)
    total = MAX_RECHECKS if chosen == "budget" else 2 * math.ceil(math.log2(max(limit, 2))) + 1
    progress(STAGE, 0, total)
    with Probe(spec, prepared=prepared, device=device, should_stop=should_stop) as probe:
        stepper = _Stepper(
            probe,
            meter,
            budget if chosen == "budget" else memory_budget_bytes,
            should_stop,
            lambda done: progress(STAGE, min(done, total - 1), total),
        )
        search = _SEARCHES[chosen]
        try:
            stepper.warm_up()
            found, detail = search(stepper, estimate, estimate_batch, budget, limit)
        except _Stopped:
            fitting = [p.batch for p in stepper.probes if p.ok]
            found = align(max(fitting)) if fitting else None
            detail = (
                f"Stopped after {len(stepper.probes)} probes; the largest size that fit is shown."
            )
        train_images = probe.data.train.images_count
    progress(STAGE, total, total)
    notes = [why, detail]
    if found is not None and found > train_images:
        notes.append(
            f"Memory allows {found:,}, but the training split holds only {train_images:,} "
            f"images and no batch is larger than the split, so the answer is "
            f"{align(train_images):,}."
        )
        found = align(train_images)
    return BatchSizeResult(
        max_batch=found,
        method=chosen,
        estimate_batch=estimate_batch,
        per_image_bytes=estimate.per_image_bytes,
        budget_bytes=budget,
        probes=tuple(stepper.probes),
        message=" ".join(notes),
    )


def _check_arguments(limit: int, budget: int | None, method: str) -> None:
    if limit < 1:
        raise UserError(f"The largest batch to try must be at least 1, not {limit}.")
    if budget is not None and budget <= 0:
        raise UserError(f"The memory budget must be positive, not {budget} bytes.")
    if method not in METHODS:
        raise UserError(
            f"Unknown batch-size method {method!r}.", hint=f"Use one of {', '.join(METHODS)}."
        )


def _choose(method: str, device: torch.device) -> tuple[Method, str]:
    if method == "probe":
        return "probe", "Probed real steps, as asked."
    if method == "budget":
        return "budget", "Answered from the memory estimate and budget, as asked."
    if device.type == "cuda":
        return "probe", (
            "Probed real steps (the default on a GPU, where running out of memory is an error "
            "that can be caught and recovered from)."
        )
    return "budget", (
        f"Answered from the memory estimate and budget (the default on {device.type.upper()}, "
        f"where running out of memory means swapping or the system stopping the process)."
    )


def _by_probing(
    stepper: _Stepper, estimate: MemoryEstimate, estimate_batch: int, budget: int, limit: int
) -> tuple[int | None, str]:
    """Double from the estimate until a step runs out of memory, then bisect."""
    start = align(max(1, min(estimate_batch, limit)))
    found = bisect_max(stepper.fits, start, limit)
    failed = sum(not p.ok for p in stepper.probes)
    if found is None:
        return None, "Not even a batch of 1 fits."
    if failed == 0:
        return found, f"Every size up to the limit of {limit} fits."
    return found, f"Started at {start} from the estimate; {failed} probes ran out of memory."


def _by_budget(
    stepper: _Stepper, estimate: MemoryEstimate, estimate_batch: int, budget: int, limit: int
) -> tuple[int | None, str]:
    """The estimate's batch for the budget, checked by one real step and scaled down if over."""
    size = align(min(estimate_batch, limit))
    if size < 1:
        return None, (
            f"By the estimate not even one image fits {format_bytes(budget)}: the model "
            f"alone needs {format_bytes(estimate.fixed_bytes)}."
        )
    for _ in range(MAX_RECHECKS):
        result = stepper.step(size)
        used = result.peak_bytes
        if result.ok and used is not None:
            return size, (
                f"The estimate gave {estimate_batch}; a real step at {size} used "
                f"{format_bytes(used)} of the {format_bytes(budget)} budget."
            )
        smaller = _scaled_down(size, used, budget, estimate.fixed_bytes)
        if smaller < 1:
            return None, f"Even a batch of {size} needs more than {format_bytes(budget)}."
        size = smaller
    return None, (
        f"Real steps kept exceeding the {format_bytes(budget)} budget; try a larger budget."
    )


def _scaled_down(size: int, used: int | None, budget: int, fixed: int) -> int:
    """A smaller size for a step at ``size`` that used ``used`` bytes (None: out of memory).

    The per-image part of the measured use is scaled to the per-image room in the budget,
    with a 5% margin (a CPU's resident memory varies by a few percent from step to step);
    always smaller than ``size``, so rechecking ends.
    """
    if used is None or used <= fixed or budget <= fixed:
        target = size // 2
    else:
        target = int(size * (budget - fixed) / (used - fixed) * RECHECK_MARGIN)
    target = align(min(target, size - 1))
    return max(target, 0)


_SEARCHES: dict[
    Method,
    Callable[[_Stepper, MemoryEstimate, int, int, int], tuple[int | None, str]],
] = {"probe": _by_probing, "budget": _by_budget}
