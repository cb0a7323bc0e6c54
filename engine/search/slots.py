"""Where a sweep's trials train at the same time: one per GPU (more when they fit) and the CPU.

A sweep's trials are independent runs, so a machine with several devices trains several at
once. The slots use the job queue's names (``"cpu"``, ``"cuda:N"``; engine/jobs/queue.py), and
the plan follows the run spec's device request the way the queue does: ``cpu`` trains on the
CPU, ``cuda:N`` on that GPU only, ``cuda`` and ``auto`` on every GPU. A data-parallel base
(``world_size > 1``) already takes several GPUs per trial, so its trials go one at a time.

How many trials share one GPU comes from the architecture's memory estimate at the search's
*largest* point (the biggest batch, width, depth and image size any trial may draw), times
``SAFETY`` because that estimate reads low (issue 6 measured 1.3× on the CPU and 2× on an
H200), against the memory the GPU has free now. The CPU joins the GPUs only when asked
(``cpu=True``): a CPU trial of a network sized for a GPU mostly takes cores from the GPU
trials' data loading. Without a GPU the plan is the one device the spec names.

Pure functions over plain numbers, so the rules are tested without a GPU.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from cnn_lab.engine.jobs.queue import CPU, Slot, is_slot
from cnn_lab.engine.search.paths import apply
from cnn_lab.engine.search.spec import SearchSpec
from cnn_lab.engine.specs import RunSpec

MAX_PER_GPU = 4
"""Trials sharing one GPU at most, however small: beyond this they only take turns."""
SAFETY = 2.0
"""The memory estimate is multiplied by this before packing (it reads up to 2× low)."""
GPU_SHARE = 0.9
"""The part of a GPU's free memory the trials may fill; the rest is for CUDA's own context."""

MEMORY_PATHS = (
    "train.batch_size",
    "architecture.width",
    "architecture.depth",
    "dataset.image_size",
)
"""Searched fields whose larger values need more memory per trial."""
INTEGER_PATHS = frozenset({"train.batch_size", "dataset.image_size"})


@dataclass(frozen=True)
class GpuMemory:
    """One GPU as the planner sees it: its index (CUDA's, with CUDA_DEVICE_ORDER=PCI_BUS_ID)."""

    index: int
    name: str
    free_bytes: int


@dataclass(frozen=True)
class SlotPlan:
    """The slots, one per concurrent trial (a GPU listed twice trains two), and why."""

    slots: tuple[Slot, ...]
    reasons: tuple[str, ...]

    @property
    def parallel(self) -> int:
        return len(self.slots)

    def describe(self) -> str:
        """One line for the CLI and the Sweep panel: "3 at once: cuda:0 ×2, cpu"."""
        counts: dict[str, int] = {}
        for slot in self.slots:
            counts[slot] = counts.get(slot, 0) + 1
        where = ", ".join(f"{slot} ×{n}" if n > 1 else slot for slot, n in counts.items())
        if len(self.slots) > 1:
            return f"{len(self.slots)} at once: {where}"
        if is_slot(self.slots[0]):
            return f"one at a time on {where}"
        return f"one at a time ({self.reasons[0]})"


def largest_point(search: SearchSpec) -> RunSpec:
    """The base spec with every memory-hungry searched field at its largest value."""
    largest: dict[str, Any] = {}
    for param in search.params:
        if param.path not in MEMORY_PATHS:
            continue
        values = param.grid() if param.range is None else [param.range.low, param.range.high]
        numbers = [v for v in values or () if isinstance(v, int | float) and v is not None]
        if numbers:
            top = max(numbers)
            largest[param.path] = int(top) if param.path in INTEGER_PATHS else float(top)
    return apply(search.base, largest) if largest else search.base


def per_gpu(free_bytes: int, trial_bytes: int | None, max_per_gpu: int = MAX_PER_GPU) -> int:
    """How many trials of ``trial_bytes`` (estimated) fit in ``free_bytes``; at least one."""
    if not trial_bytes or trial_bytes <= 0:
        return 1
    fits = math.floor(GPU_SHARE * free_bytes / (SAFETY * trial_bytes))
    return max(1, min(max_per_gpu, fits))


def plan_slots(
    device: str,
    world_size: int,
    gpus: Sequence[GpuMemory],
    trial_bytes: int | None,
    *,
    cpu: bool = False,
    max_per_gpu: int = MAX_PER_GPU,
    allowed: Collection[str] | None = None,
) -> SlotPlan:
    """The slots for trials of a spec that asks for ``device``, on a machine with ``gpus``.

    ``allowed`` (the job queue's free slots, in the app) leaves out GPUs busy with other
    jobs; when it would leave none, the trials share the busy GPUs rather than not run.
    """
    request = device.strip().lower()
    shared = ""
    if allowed is not None:
        free = [g for g in gpus if f"cuda:{g.index}" in allowed]
        if free:
            gpus = free
        elif gpus:
            shared = "every GPU is busy with a job, so the trials share them"
        cpu = cpu and CPU in allowed
    size = _gib(trial_bytes) if trial_bytes else "an unknown size"
    if world_size > 1:
        return SlotPlan(
            (request,),
            (f"each trial trains data-parallel on {world_size} devices, so one at a time",),
        )
    if request == CPU or request == "mps":
        return SlotPlan((request,), (f"the spec trains on {request}",))
    chosen = list(gpus)
    if request.startswith("cuda:"):
        wanted = int(request.split(":", 1)[1])
        chosen = [g for g in gpus if g.index == wanted]
    elif request not in ("cuda", "auto"):
        return SlotPlan((request,), (f"the spec trains on {request}",))
    if not chosen:
        return SlotPlan((request,), ("no NVIDIA GPU to spread trials over",))
    slots: list[Slot] = []
    reasons: list[str] = []
    for gpu in chosen:
        n = per_gpu(gpu.free_bytes, trial_bytes, max_per_gpu)
        slots += [f"cuda:{gpu.index}"] * n
        reasons.append(
            f"cuda:{gpu.index} ({gpu.name}): {n} trial{'s' if n > 1 else ''} at once, "
            f"{_gib(gpu.free_bytes)} free, about {size} each (estimate ×{SAFETY:g})"
        )
    if cpu:
        slots.append(CPU)
        reasons.append("cpu: one trial beside the GPUs")
    if shared:
        reasons.append(shared)
    return SlotPlan(tuple(slots), tuple(reasons))


def parse_slots(text: str) -> tuple[Slot, ...]:
    """``"cuda:0,cuda:0,cpu"`` as given to ``--slots``; a sentence for anything else."""
    slots = tuple(part.strip().lower() for part in text.split(",") if part.strip())
    bad = [s for s in slots if not is_slot(s)]
    if not slots or bad:
        raise ValueError(
            f"{', '.join(bad) or 'nothing'} is not a slot; list cpu, mps or cuda:N, "
            "separated by commas (a GPU named twice trains two trials on it)"
        )
    return slots


def _gib(n: int | None) -> str:
    return f"{(n or 0) / 2**30:.1f} GiB"


# --------------------------------------------------------------------------- the machine


def machine_gpus() -> list[GpuMemory]:
    """This machine's GPUs with their free memory, from NVML (no CUDA context is made)."""
    from cnn_lab.engine.monitor.nvml import gpu_free_memory

    return [GpuMemory(index, name, free) for index, name, free in gpu_free_memory()]


def trial_memory_bytes(search: SearchSpec) -> int | None:
    """Estimated training memory of the search's largest trial, or None if it cannot be told.

    Reads the dataset's image shape from the prepared dataset (the trials prepare it anyway,
    so it is decoded once and cached), then the architecture's meta-device summary.
    """
    from cnn_lab.engine.data.prepare import prepare_dataset
    from cnn_lab.engine.errors import UserError
    from cnn_lab.engine.tune.batch_size import estimate_memory, input_shape

    spec = largest_point(search)
    try:
        prepared = prepare_dataset(spec.dataset)
        estimate = estimate_memory(spec, input_shape(prepared))
    except (UserError, ValueError, RuntimeError):
        return None
    return estimate.fixed_bytes + estimate.per_image_bytes * spec.train.batch_size


def plan_for(
    search: SearchSpec,
    *,
    cpu: bool = False,
    max_per_gpu: int = MAX_PER_GPU,
    allowed: Collection[str] | None = None,
) -> SlotPlan:
    """The plan for ``search`` on this machine: its GPUs, their free memory, the estimate."""
    gpus = machine_gpus()
    train = search.base.train
    needs_estimate = bool(gpus) and train.world_size == 1 and train.device.lower() != CPU
    return plan_slots(
        train.device,
        train.world_size,
        gpus,
        trial_memory_bytes(search) if needs_estimate else None,
        cpu=cpu,
        max_per_gpu=max_per_gpu,
        allowed=allowed,
    )


__all__ = [
    "GpuMemory",
    "SlotPlan",
    "largest_point",
    "machine_gpus",
    "parse_slots",
    "per_gpu",
    "plan_for",
    "plan_slots",
    "trial_memory_bytes",
]
