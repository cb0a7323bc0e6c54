"""The job queue's policy: which waiting run goes to which free device slot, and in what order.

A *slot* is a device that runs one job at a time: ``"cpu"``, ``"mps"`` or ``"cuda:N"``. The
GUI's JobController owns the processes; this module only decides, so the rules (priorities,
FIFO, manual order, device requests, data-parallel reservations) are plain Python that tests
can drive without Qt, threads or torch.

Order: higher priority first; within a priority, first come first served; a manual move
overrides both, taking the priority of its new neighbours so the order stays consistent.

Device requests, as the run's spec states them:

- ``cpu`` runs on the CPU slot, ``cuda:N`` on exactly that GPU, ``mps`` on the MPS slot.
- ``cuda`` takes any free GPU; ``auto`` too, and falls back to MPS, then to the CPU, only when
  the machine has no GPU at all: a GPU job never lands on the CPU just because GPUs are busy.
- ``train.world_size > 1`` (data parallel) on CUDA needs ``cuda:0`` to ``cuda:N-1`` free at
  once, because that is where the engine's processes go. While such a run heads the queue, the
  free GPUs it needs are held for it, so single-GPU runs behind it cannot starve it. On the
  CPU a data-parallel run takes the one CPU slot.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

Slot = str
"""``"cpu"``, ``"mps"`` or ``"cuda:N"``."""

CPU: Slot = "cpu"
MPS: Slot = "mps"
_SLOT = re.compile(r"^(cpu|mps|cuda:\d{1,3})$")

RUNNING: Literal["running"] = "running"
QUEUED: Literal["queued"] = "queued"


def is_slot(text: str) -> bool:
    """Whether ``text`` names a slot: ``cpu``, ``mps`` or ``cuda:N``."""
    return _SLOT.match(text) is not None


def is_gpu(slot: Slot) -> bool:
    """Whether ``slot`` is a CUDA GPU."""
    return slot.startswith("cuda:")


def gpu_index(slot: Slot) -> int:
    return int(slot.split(":", 1)[1])


@dataclass(frozen=True)
class QueueEntry:
    """A run waiting for a slot. Frozen: the queue replaces it, nobody edits it in place."""

    run_id: int
    spec_device: str = "auto"
    priority: int = 0
    resume: bool = False
    name: str = ""
    enqueued_at: float = field(default_factory=time.time)
    world_size: int = 1
    spec_json: str = ""
    """What the job needs to start; opaque to the queue."""

    @property
    def device(self) -> str:
        return self.spec_device.strip().lower()


@dataclass(frozen=True)
class JobRow:
    """One line of the Jobs view: a running or a waiting run, already in words."""

    run_id: int
    name: str
    state: Literal["running", "queued"]
    where: str
    """The slot ("cuda:0 (H100)", "cpu") or what it waits for ("waiting for a GPU")."""
    priority: int
    resume: bool = False
    progress: float | None = None
    """0..1 of the run's steps, from its latest step event; None until one arrives."""
    eta_s: float | None = None
    activity: str = ""
    """What a running job does before its first step, in words ("Decoding images · 1,200 of
    5,000 · 0:42 left" while a folder that was never imported is prepared)."""


class JobQueue:
    """The waiting runs, in order, and the rule that matches them to free slots."""

    def __init__(self, slots: Sequence[Slot]) -> None:
        bad = [s for s in slots if not is_slot(s)]
        if bad:
            raise ValueError(f"not a job slot: {', '.join(map(repr, bad))}; use cpu, mps, cuda:N")
        if len(set(slots)) != len(slots):
            raise ValueError(f"job slots are listed twice: {list(slots)}")
        self.slots: tuple[Slot, ...] = tuple(slots)
        self.gpu_slots: tuple[Slot, ...] = tuple(sorted(filter(is_gpu, slots), key=gpu_index))
        self._entries: list[QueueEntry] = []

    # ------------------------------------------------------------------ the order

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, run_id: object) -> bool:
        return any(e.run_id == run_id for e in self._entries)

    def entries(self) -> list[QueueEntry]:
        """The waiting runs, the next to start first."""
        return list(self._entries)

    def get(self, run_id: int) -> QueueEntry | None:
        return next((e for e in self._entries if e.run_id == run_id), None)

    def index_of(self, run_id: int) -> int:
        for index, entry in enumerate(self._entries):
            if entry.run_id == run_id:
                return index
        raise KeyError(f"run {run_id} is not queued")

    def add(self, entry: QueueEntry) -> int:
        """Queue ``entry`` behind every run of its priority or higher; return its position."""
        if entry.run_id in self:
            raise ValueError(f"run {entry.run_id} is already queued")
        index = self._fifo_index(entry)
        self._entries.insert(index, entry)
        return index

    def cancel(self, run_id: int) -> QueueEntry | None:
        """Take a run out of the queue (cancelled, or started); None if it was not queued."""
        entry = self.get(run_id)
        if entry is not None:
            self._entries.remove(entry)
        return entry

    def move(self, run_id: int, new_index: int) -> None:
        """Put a run at ``new_index`` (clamped); it takes a priority its neighbours allow.

        Moving a run above one of higher priority raises it to that priority (and below one of
        lower priority lowers it), so "priority first" stays true after any manual move.
        """
        entry = self._entries.pop(self.index_of(run_id))
        index = max(0, min(new_index, len(self._entries)))
        priority = entry.priority
        if index > 0:
            priority = min(priority, self._entries[index - 1].priority)
        if index < len(self._entries):
            priority = max(priority, self._entries[index].priority)
        self._entries.insert(index, replace(entry, priority=priority))

    def set_priority(self, run_id: int, priority: int) -> None:
        """Change a run's priority; it goes where a run of that priority queued then would."""
        entry = self._entries.pop(self.index_of(run_id))
        entry = replace(entry, priority=priority)
        self._entries.insert(self._fifo_index(entry), entry)

    def raise_priority(self, run_id: int, by: int = 1) -> None:
        entry = self._entries[self.index_of(run_id)]
        self.set_priority(run_id, entry.priority + by)

    def _fifo_index(self, entry: QueueEntry) -> int:
        for index, other in enumerate(self._entries):
            if other.priority < entry.priority or (
                other.priority == entry.priority and other.enqueued_at > entry.enqueued_at
            ):
                return index
        return len(self._entries)

    # ------------------------------------------------------------------ devices

    @property
    def has_gpu(self) -> bool:
        return bool(self.gpu_slots)

    def _wide_gpu(self, entry: QueueEntry) -> bool:
        """A data-parallel run over several CUDA GPUs."""
        return entry.world_size > 1 and entry.device in ("cuda", "auto") and self.has_gpu

    def candidates(self, entry: QueueEntry) -> tuple[Slot, ...]:
        """The slots ``entry`` may ever use (for a data-parallel run: all of them at once)."""
        device = entry.device
        if self._wide_gpu(entry):
            wanted = tuple(f"cuda:{i}" for i in range(entry.world_size))
            return wanted if all(s in self.slots for s in wanted) else ()
        if device in ("cpu", "mps") or is_gpu(device):
            return (device,) if device in self.slots else ()
        if device == "cuda":
            return self.gpu_slots
        if device == "auto":
            if entry.world_size > 1 and not self.has_gpu:  # data parallel: CUDA or gloo on CPU
                return (CPU,) if CPU in self.slots else ()
            if self.has_gpu:
                return self.gpu_slots
            return next(((s,) for s in (MPS, CPU) if s in self.slots), ())
        return ()

    def impossible(self, entry: QueueEntry) -> str | None:
        """Why ``entry`` can never run on this machine's slots, as a sentence; None if it can."""
        if entry.world_size > 1 and entry.device == MPS:
            return (
                "Data-parallel training (world size above 1) runs on CUDA GPUs or the CPU, "
                "not on Apple's MPS device; choose cuda, cpu or auto, or a world size of 1."
            )
        if self.candidates(entry):
            return None
        device, gpus = entry.device, len(self.gpu_slots)
        if self._wide_gpu(entry):
            return (
                f"The run asks for {entry.world_size} GPUs at once (world size "
                f"{entry.world_size}), but this machine has {gpus}; lower the world size."
            )
        if is_gpu(device):
            have = f"{gpus} GPU(s) (cuda:0 to cuda:{gpus - 1})" if gpus else "no CUDA GPU"
            return f"The run asks for {device}, but this machine has {have}; choose another device."
        if device == "cuda":
            return "The run asks for a CUDA GPU, but this machine has none; choose cpu or auto."
        if device == MPS:
            return "The run asks for Apple's MPS device, which this machine does not have."
        if device in ("cpu", "auto"):
            return "This job queue has no CPU slot to run it on."
        return f"The run asks for the unknown device {entry.spec_device!r}."

    def slots_for(self, entry: QueueEntry, free: Iterable[Slot]) -> list[Slot] | None:
        """The slots ``entry`` would start on now, given the ``free`` ones; None if it must wait."""
        free_set = set(free)
        candidates = self.candidates(entry)
        if not candidates:
            return None
        if self._wide_gpu(entry):
            return list(candidates) if free_set.issuperset(candidates) else None
        return next(([s] for s in candidates if s in free_set), None)

    def plan(self, free: Iterable[Slot]) -> list[tuple[QueueEntry, list[Slot]]]:
        """The runs to start now on ``free`` slots, in queue order (the queue is unchanged).

        A data-parallel run that must wait holds the free GPUs it needs, so the runs behind it
        cannot keep taking them one at a time.
        """
        available = [s for s in self.slots if s in set(free)]
        held: set[Slot] = set()
        starts: list[tuple[QueueEntry, list[Slot]]] = []
        for entry in self._entries:
            usable = [s for s in available if s not in held]
            chosen = self.slots_for(entry, usable)
            if chosen is not None:
                starts.append((entry, chosen))
                available = [s for s in available if s not in chosen]
            elif self._wide_gpu(entry):
                held.update(self.candidates(entry))
        return starts

    def next_for(self, free_slot: Slot, free: Iterable[Slot] = ()) -> QueueEntry | None:
        """The run that would start on ``free_slot`` (with ``free`` also free), if any."""
        for entry, slots in self.plan({free_slot, *free}):
            if free_slot in slots:
                return entry
        return None

    def waiting_for(self, entry: QueueEntry) -> str:
        """What a waiting run waits for, in words for the Jobs view."""
        candidates = self.candidates(entry)
        if self._wide_gpu(entry):
            return f"waiting for {len(candidates)} GPUs ({candidates[0]} to {candidates[-1]})"
        if not candidates:
            return "cannot run here"
        if len(candidates) > 1 or (entry.device in ("cuda", "auto") and is_gpu(candidates[0])):
            return "waiting for a GPU"
        return "waiting for the CPU" if candidates[0] == CPU else f"waiting for {candidates[0]}"
