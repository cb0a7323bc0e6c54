"""JobController: the GUI's one door to training. Panels hand it a RunSpec; it owns the threads.

Every run goes through a queue (engine/jobs/queue.py decides the order and the device): each
job slot (one per GPU, plus the CPU) runs one job at a time, in a JobWorker thread that
starts the job's child process and is told which slot it has. Train while something runs
simply queues the new run.

All signals are emitted on the GUI thread (queued from the worker threads), so slots
connected to them may touch widgets.
"""

from __future__ import annotations

import platform
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from cnn_lab.app.bridge.job_worker import STOP_GRACE_S, JobWorker
from cnn_lab.engine.errors import UserError
from cnn_lab.engine.jobs.eta import estimate_duration, finish_times
from cnn_lab.engine.jobs.job import create_run
from cnn_lab.engine.jobs.queue import (
    CPU,
    MPS,
    QUEUED,
    RUNNING,
    JobQueue,
    JobRow,
    QueueEntry,
    Slot,
    is_gpu,
)
from cnn_lab.engine.jobs.resume import resume_refusal
from cnn_lab.engine.monitor.nvml import gpu_inventory
from cnn_lab.engine.specs import RunSpec
from cnn_lab.engine.store import open_store
from cnn_lab.engine.store import status as st
from cnn_lab.engine.store.busy import STORE_BUSY_KIND
from cnn_lab.engine.util.progress_eta import StageProgress

HISTORY_RUNS = 200
"""How many recent finished runs the queue's time estimates look through."""
CANCELLED_REASON = "Cancelled before it started."
CLOSED_REASON = "The cnn-lab window closed before this run started; resume it to train it."
CLOSED_STOP = "Stopped because the cnn-lab window was closed"
SHUTDOWN_WAIT_MS = int((STOP_GRACE_S + 5) * 1000)
"""How long closing waits for each job's thread: the child's grace to stop, then its kill and
the run's end recorded (5 s was shorter than the grace, and a loaded machine's close read the
run before its reason was)."""
"""Starts the reason of a run that was training when the person closed the window and chose
to stop it (the close question); "... at step 40; it can be resumed." follows."""

WorkerFactory = Callable[..., Any]
"""Builds a job's worker: ``factory(run_id, spec_json, db_path, *, device, resume, parent)``.

The worker has JobWorker's signals (child_started, events, job_finished), ``pid``,
``start()``, ``request_stop(why=None)`` and ``wait(ms)``. Tests pass a stub that starts no process.
"""


def machine_slots() -> tuple[list[Slot], dict[Slot, str]]:
    """This machine's job slots (one per NVIDIA GPU, MPS on Apple silicon, the CPU) and labels.

    NVML names the GPUs without loading torch, so the window opens fast. NVML numbers GPUs as
    nvidia-smi does; set CUDA_DEVICE_ORDER=PCI_BUS_ID so that CUDA numbers them the same.
    """
    slots: list[Slot] = []
    labels: dict[Slot, str] = {}
    for gpu in gpu_inventory().gpus:
        slot = f"cuda:{gpu.index}"
        slots.append(slot)
        labels[slot] = f"{slot} ({gpu.name.removeprefix('NVIDIA ').strip()})"
    if sys.platform == "darwin" and platform.machine() == "arm64":
        slots.append(MPS)
    slots.append(CPU)
    return slots, labels


@dataclass
class _Job:
    """A running job: what it was queued as, where it runs, and its latest progress."""

    entry: QueueEntry
    slots: list[Slot]
    worker: Any
    progress: float | None = None
    eta_s: float | None = None
    activity: str = ""
    preparing: StageProgress = field(default_factory=StageProgress)


class JobController(QObject):
    run_started = Signal(int)  # run id (it left the queue; its child is starting)
    child_started = Signal(int, int)  # run id, pid
    events = Signal(int, object)  # run id, list of events
    run_finished = Signal(int, str, str)  # run id, status, reason (also a cancelled queued run)
    busy_changed = Signal(bool)
    queue_changed = Signal()  # something was queued, started, finished, moved or cancelled
    slot_changed = Signal(int, str)  # run id, its slot(s) joined by "+" ("" when it leaves)
    store_busy = Signal(int, bool)  # run id, whether its job waits for a locked run store

    def __init__(
        self,
        db_path: str | Path,
        parent: QObject | None = None,
        *,
        slots: Sequence[Slot] | None = None,
        slot_labels: dict[Slot, str] | None = None,
        worker_factory: WorkerFactory | None = None,
    ) -> None:
        super().__init__(parent)
        self.db_path = str(db_path)
        labels: dict[Slot, str] = {}
        if slots is None:
            slots, labels = machine_slots()
        self._queue = JobQueue(slots)
        self._labels = {**labels, **(slot_labels or {})}
        self._worker_factory = worker_factory or JobWorker
        self._jobs: dict[int, _Job] = {}
        self._durations: dict[int, float | None] = {}
        """Queued run -> its expected duration from similar finished runs (None: unknown)."""
        self._held: dict[str, list[Slot]] = {}
        """Owner (a sweep) -> the slots it trains on outside the queue; queued runs wait."""
        self._busy = False
        self._closing = False
        self._ended_as: dict[int, str] = {}
        """Run queued to resume -> the status it ended with (given back if it never starts)."""
        self._store_waits: set[int] = set()
        """Runs whose job said its writes wait for the run store (another program locks it)."""

    # ----------------------------------------------------------------- what is where

    @property
    def busy(self) -> bool:
        """Whether anything runs or waits."""
        return bool(self._jobs) or bool(len(self._queue))

    def running_ids(self) -> list[int]:
        return list(self._jobs)

    def queued_ids(self) -> list[int]:
        return [entry.run_id for entry in self._queue.entries()]

    def queued(self) -> list[QueueEntry]:
        return self._queue.entries()

    def child_pid(self, run_id: int) -> int | None:
        job = self._jobs.get(run_id)
        return job.worker.pid if job else None

    def slots(self) -> list[Slot]:
        return list(self._queue.slots)

    def slot_label(self, slot: Slot) -> str:
        """The slot as the Jobs view names it: "cuda:0 (H100)" for a GPU NVML named, else as is."""
        return self._labels.get(slot, slot)

    def assignments(self) -> dict[int, str]:
        """Running run → its slot ("cuda:0+cuda:1" for a data-parallel run)."""
        return {run_id: "+".join(job.slots) for run_id, job in self._jobs.items()}

    def free_slots(self) -> list[Slot]:
        taken = {slot for job in self._jobs.values() for slot in job.slots}
        taken.update(slot for slots in self._held.values() for slot in slots)
        return [slot for slot in self._queue.slots if slot not in taken]

    def hold(self, owner: str, devices: Iterable[str]) -> list[Slot]:
        """Keep the slots ``devices`` train on for ``owner`` (a sweep's trials, which run
        outside the queue); queued runs wait for them until ``release``. Returns the slots.

        A device that is no slot here ("auto", "cuda") holds the slot it resolves to: the
        first GPU, else the CPU, as the engine resolves it.
        """
        slots = list(dict.fromkeys(self._slot_for(device) for device in devices))
        self._held[owner] = slots
        self.queue_changed.emit()
        return slots

    def release(self, owner: str) -> None:
        """Give ``owner``'s held slots back to the queue and start what waited for them."""
        if self._held.pop(owner, None) is not None:
            self.queue_changed.emit()
            self._dispatch()

    def holds(self) -> dict[str, list[Slot]]:
        """Owner -> the slots it holds, for the Jobs view."""
        return {owner: list(slots) for owner, slots in self._held.items()}

    def _slot_for(self, device: str) -> Slot:
        device = device.strip().lower()
        if device in self._queue.slots:
            return device
        if device in ("auto", "cuda") and self._queue.gpu_slots:
            return self._queue.gpu_slots[0]
        return MPS if device == "auto" and MPS in self._queue.slots else CPU

    def jobs(self) -> list[JobRow]:
        """The running runs (in slot order), then the waiting ones (next first), for a view."""
        order = {slot: i for i, slot in enumerate(self._queue.slots)}
        running = sorted(self._jobs.values(), key=lambda job: order[job.slots[0]])
        rows = [
            JobRow(
                run_id=job.entry.run_id,
                name=job.entry.name,
                state=RUNNING,
                where=" + ".join(map(self.slot_label, job.slots)),
                priority=job.entry.priority,
                resume=job.entry.resume,
                progress=job.progress,
                eta_s=job.eta_s,
                activity=job.activity,
            )
            for job in running
        ]
        finish = self.queue_finish_times()
        rows += [
            JobRow(
                run_id=entry.run_id,
                name=entry.name,
                state=QUEUED,
                where=self._queue.waiting_for(entry),
                priority=entry.priority,
                resume=entry.resume,
                eta_s=finish.get(entry.run_id),
            )
            for entry in self._queue.entries()
        ]
        return rows

    def queue_finish_times(self) -> dict[int, float | None]:
        """Seconds until each queued run should finish, from past runs' durations."""
        busy: dict[Slot, float | None] = {}
        for job in self._jobs.values():
            for slot in job.slots:
                busy[slot] = job.eta_s
        durations = {
            entry.run_id: self._durations.get(entry.run_id) for entry in self._queue.entries()
        }
        return finish_times(self._queue, busy, durations)

    # ----------------------------------------------------------------- queueing

    def start(self, spec: RunSpec, priority: int = 0) -> int:
        """Record the run as queued and queue it; it starts at once if its slot is free.

        Raises UserError (and records nothing) when no slot here could ever run it.
        """
        entry = QueueEntry(
            run_id=0,
            spec_device=spec.train.device,
            priority=priority,
            name=spec.name,
            world_size=spec.train.world_size,
            spec_json=spec.to_json(),
        )
        self._refuse_impossible(entry)
        with open_store(self.db_path) as store:
            run_id = create_run(store, spec)
        self._enqueue(replace(entry, run_id=run_id))
        return run_id

    def resume(self, run_id: int, priority: int = 0) -> None:
        """Queue an ended run to continue from its last checkpoint (engine/jobs/resume.py says
        which may).

        A run that never started (cancelled, or the window closed first) starts afresh: it
        has nothing to continue from.
        """
        if run_id in self._jobs or run_id in self._queue:
            raise UserError(f"Run {run_id} is already running or queued.")
        with open_store(self.db_path) as store:
            record = store.get_run(run_id)
        refusal = resume_refusal(run_id, record.status)
        if refusal is not None:
            raise UserError(refusal)
        spec = RunSpec.from_json(record.spec_json)
        entry = QueueEntry(
            run_id=run_id,
            spec_device=spec.train.device,
            priority=priority,
            resume=record.started_at is not None,
            name=spec.name,
            world_size=spec.train.world_size,
            spec_json=record.spec_json,
        )
        self._refuse_impossible(entry)
        # Shown as queued (Runs table, filters) until it starts; cancel or closing the window
        # gives it back the status it ended with.
        with open_store(self.db_path) as store:
            ended_as = store.queue_again(run_id)
        if ended_as is not None:
            self._ended_as[run_id] = ended_as
        self._enqueue(entry)

    def cancel(self, run_id: int) -> bool:
        """Take a queued run out of the queue; a new run is recorded as stopped.

        Returns False when ``run_id`` is not queued (a running run is stopped with ``stop``).
        """
        entry = self._queue.cancel(run_id)
        if entry is None:
            return False
        finished = self._record_unstarted(run_id, CANCELLED_REASON)
        self.queue_changed.emit()
        if finished is not None:
            self.run_finished.emit(run_id, *finished)
        self._dispatch()  # a data-parallel run may have held GPUs others can use now
        self._update_busy()
        return True

    def move(self, run_id: int, index: int) -> None:
        """Move a queued run to ``index`` in the queue (0 = next to start)."""
        self._queue.move(run_id, index)
        self._reordered()

    def set_priority(self, run_id: int, priority: int) -> None:
        """Change a queued run's priority (higher starts first)."""
        self._queue.set_priority(run_id, priority)
        self._reordered()

    def stop(self, run_id: int | None = None) -> None:
        """Stop one run (a queued one is cancelled), or every run and the whole queue.

        A running job finishes its step, checkpoints and exits; after a grace it is killed.
        """
        if run_id is not None and run_id in self._queue:
            self.cancel(run_id)
            return
        if run_id is None:
            for queued in self.queued_ids():
                self.cancel(queued)
        for rid, job in list(self._jobs.items()):
            if run_id is None or rid == run_id:
                job.worker.request_stop()

    def shutdown(self, timeout_ms: int = SHUTDOWN_WAIT_MS) -> None:
        """Stop every job and wait for its thread (called when the window closes).

        Queued runs are recorded as stopped (they can be resumed later) and nothing new
        starts, whatever finishes while the window closes. The wait outlasts the child's
        stop grace: a thread still recording its run's end when the window's process goes
        on would leave the reason unsaid (or a QThread destroyed while running).
        """
        self._closing = True
        for entry in self._queue.entries():
            self._queue.cancel(entry.run_id)
            self._record_unstarted(entry.run_id, CLOSED_REASON)
        for job in list(self._jobs.values()):
            job.worker.request_stop(CLOSED_STOP)
        for job in list(self._jobs.values()):
            job.worker.wait(timeout_ms)

    # ----------------------------------------------------------------- internals

    def _refuse_impossible(self, entry: QueueEntry) -> None:
        why = self._queue.impossible(entry)
        if why is not None:
            raise UserError(why)

    def _enqueue(self, entry: QueueEntry) -> None:
        self._durations[entry.run_id] = self._expected_duration(entry)
        self._queue.add(entry)
        self.queue_changed.emit()
        self._dispatch()
        self._update_busy()

    def _expected_duration(self, entry: QueueEntry) -> float | None:
        """The run's duration as similar finished runs took (None without one)."""
        try:
            with open_store(self.db_path) as store:
                history = store.list_runs(status=st.COMPLETED, limit=HISTORY_RUNS)
        except Exception:  # an estimate only: a busy or broken store must not block queueing
            return None
        return estimate_duration(entry.spec_json, history)

    def _reordered(self) -> None:
        self.queue_changed.emit()
        self._dispatch()

    def _record_unstarted(self, run_id: int, reason: str) -> tuple[str, str] | None:
        """End a run that never left the queue, returning its status and reason (None if it
        had started); a run queued to resume gets back the record it ended with."""
        ended_as = self._ended_as.pop(run_id, None)
        with open_store(self.db_path) as store:
            if ended_as is not None:
                if not store.unqueue(run_id, ended_as):
                    return None
                return ended_as, store.get_run(run_id).reason or ""
            if store.get_run(run_id).status != st.QUEUED:
                return None
            store.finish_run(run_id, st.STOPPED, reason=reason)
            return st.STOPPED, reason

    def _dispatch(self) -> None:
        """Start queued runs while a free slot suits one.

        One start per plan: a slot connected to run_started may queue or cancel runs, and
        the next plan then sees that.
        """
        started = False
        while not self._closing:
            plan = self._queue.plan(self.free_slots())
            if not plan:
                break
            entry, slots = plan[0]
            self._queue.cancel(entry.run_id)
            self._launch(entry, slots)
            started = True
        if started:
            self.queue_changed.emit()

    def _launch(self, entry: QueueEntry, slots: list[Slot]) -> None:
        # One slot: the job trains there. Several GPUs: the engine's data-parallel processes
        # take cuda:0 to cuda:N-1, which are the slots reserved for it.
        device = slots[0] if len(slots) == 1 else ("cuda" if is_gpu(slots[0]) else slots[0])
        worker = self._worker_factory(
            entry.run_id,
            entry.spec_json,
            self.db_path,
            device=device,
            resume=entry.resume,
            parent=self,
        )
        worker.child_started.connect(self.child_started)
        worker.events.connect(self._note_progress)
        worker.events.connect(self._note_store_busy)
        worker.events.connect(self.events)
        worker.job_finished.connect(self._on_job_finished)
        self._jobs[entry.run_id] = _Job(entry, slots, worker)
        self._ended_as.pop(entry.run_id, None)  # it starts: its job records how it ends now
        worker.start()
        self.run_started.emit(entry.run_id)
        self.slot_changed.emit(entry.run_id, "+".join(slots))

    def _note_progress(self, run_id: int, events: list[Any]) -> None:
        job = self._jobs.get(run_id)
        if job is None:
            return
        for event in reversed(events):
            kind = getattr(event, "kind", "")
            if kind == "step":
                job.progress, job.eta_s, job.activity = event.progress, event.eta_s, ""
                return
            if kind == "preparing":
                text = job.preparing.update(event.stage, event.done, event.total)
                job.activity = f"preparing the data: {text}"
                return

    def _note_store_busy(self, run_id: int, events: list[Any]) -> None:
        for event in reversed(events):
            if getattr(event, "kind", "") == STORE_BUSY_KIND:
                self._set_store_busy(run_id, bool(event.waiting))
                return

    def _set_store_busy(self, run_id: int, waiting: bool) -> None:
        if waiting != (run_id in self._store_waits):
            (self._store_waits.add if waiting else self._store_waits.discard)(run_id)
            self.store_busy.emit(run_id, waiting)

    def _on_job_finished(self, run_id: int, status: str, reason: str) -> None:
        self._set_store_busy(run_id, False)  # a job that ended waits for nothing any more
        job = self._jobs.pop(run_id, None)
        if job is not None:
            job.worker.wait()
            job.worker.deleteLater()
            self.slot_changed.emit(run_id, "")
        self.run_finished.emit(run_id, status, reason)
        self.queue_changed.emit()
        self._dispatch()
        self._update_busy()

    def _update_busy(self) -> None:
        busy = self.busy
        if busy != self._busy:
            self._busy = busy
            self.busy_changed.emit(busy)
