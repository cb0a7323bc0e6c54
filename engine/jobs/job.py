"""A job: one run, from spec to stored result. The entry point of the job's child process.

``run_job`` is what ``cnn-lab train`` calls in its own process and what the GUI's job
process calls in a child: it records the run in the store, trains, streams every event to
``emit``, writes metrics in batches about once a second, and always leaves the run in a
final state with a reason a person can read. What each event stores is written once in
``engine.jobs.recording``; how a child batches its events for the pipe, in
``engine.jobs.batching``.

This module imports neither torch nor Qt at import time: the GUI imports it to name the
child's entry point, and torch loads only inside the child.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event as MpEvent
from pathlib import Path
from typing import Any

from cnn_lab.engine.errors import Cancelled, UserError, internal_error
from cnn_lab.engine.jobs.batching import EventBatcher
from cnn_lab.engine.jobs.bottleneck import BottleneckTracker
from cnn_lab.engine.jobs.child_link import BUG_HINT, ParentLink
from cnn_lab.engine.jobs.recording import RunRecorder
from cnn_lab.engine.specs import ArchitectureSpec, RunSpec
from cnn_lab.engine.specs.architecture import memory_hint
from cnn_lab.engine.specs.network_name import network_name
from cnn_lab.engine.store import (
    BatchedWriter,
    RunRecord,
    RunRepository,
    artifact_kinds,
    open_store,
    run_files_dir,
)
from cnn_lab.engine.store import status as st
from cnn_lab.engine.store.busy import STORE_BUSY_KIND, BusyWatch
from cnn_lab.engine.store.patient import patient

log = logging.getLogger(__name__)

Emit = Callable[[Any], None]


def create_run(store: RunRepository, spec: RunSpec, *, experiment_id: int | None = None) -> int:
    """Record a queued run for ``spec`` (in ``experiment_id``, a sweep say) and return its id."""
    return store.create_run(
        spec_json=spec.to_json(),
        spec_hash=spec.spec_hash(),
        name=spec.name,
        dataset=spec.dataset.source,
        model=network_name(spec.architecture),
        experiment_id=experiment_id,
    )


def run_job(
    spec: RunSpec,
    db_path: str | Path,
    run_id: int | None = None,
    *,
    emit: Emit = lambda event: None,
    should_stop: Callable[[], bool] = lambda: False,
    sample_system: bool = True,
    flush_interval_s: float = 1.0,
    device: str | None = None,
    resume: bool = False,
) -> RunRecord | None:
    """Train ``spec`` as run ``run_id`` (created if None) and return the final record.

    None only for a torchrun rank other than 0, which trains but records nothing.

    ``device`` overrides the spec's device (the job queue assigns a slot: "cuda:1", "cpu");
    the recorded spec keeps what the person asked for. ``resume`` continues the run from its
    last checkpoint instead of starting afresh.
    """
    if device is not None:
        spec = spec.model_copy(update={"train": spec.train.model_copy(update={"device": device})})
    parallel = _start_data_parallel(spec)
    if parallel is not None and not parallel.ctx.is_main:
        parallel.run_worker_rank(spec)  # a torchrun rank other than 0: rank 0 records the run
        return None
    # Its own calls wait for a server that went away, as long as its metric writer does.
    store = patient(open_store(db_path))
    busy = BusyWatch(emit)  # tells the window when another program keeps the store locked
    try:
        if run_id is None:
            run_id = create_run(store, spec)
        busy.start(run_id)
        if resume:
            spec = _as_recorded(spec, store.get_run(run_id))
        store.mark_running(run_id, pid=os.getpid(), device=spec.train.device)
        try:
            finished = _record_training(
                spec,
                run_id,
                db_path,
                store,
                emit,
                should_stop,
                sample_system=sample_system,
                flush_interval_s=flush_interval_s,
                resume=resume,
                dist=parallel.ctx if parallel is not None else None,
            )
        except Exception as exc:  # the store or the monitor broke: still end the run recorded
            log.error("job failed:\n%s", traceback.format_exc())
            finished = _failure(
                f"The job could not record its run: {exc}.",
                "Check the disk and the database file, then train again.",
            )
        store.finish_run(
            run_id,
            finished["status"],
            reason=finished["reason"],
            hint=finished["hint"],
            summary=finished["summary"],
        )
        return store.get_run(run_id)
    finally:
        busy.stop()
        store.close()
        if parallel is not None:
            parallel.finish()


class _PreparingReporter:
    """Data preparation's progress as DataProgress events, at most about five a second (a
    100,000-file import reports thousands of times) but every change of stage and every end."""

    INTERVAL_S = 0.2

    def __init__(self, emit: Emit) -> None:
        self.emit = emit
        self.last = (0.0, "")

    def __call__(self, stage: str, done: int, total: int) -> None:
        from cnn_lab.engine.train.events import DataProgress

        now = time.monotonic()
        last_time, last_stage = self.last
        if stage == last_stage and now - last_time < self.INTERVAL_S and done < total:
            return
        self.last = (now, stage)
        self.emit(DataProgress(stage, done, total))


def _as_recorded(spec: RunSpec, record: RunRecord) -> RunSpec:
    """A resumed run trains on the input it started with (its recorded size and channels),
    whatever auto would choose from the data now; the stored spec keeps what was asked."""
    from cnn_lab.engine.data.auto_preprocess import as_trained, legacy_input

    shape = record.summary.get("input_shape") or legacy_input(spec.dataset)
    dataset = as_trained(spec.dataset, shape)
    return spec if dataset is spec.dataset else spec.model_copy(update={"dataset": dataset})


def _record_training(
    spec: RunSpec,
    run_id: int,
    db_path: str | Path,
    store: RunRepository,
    emit: Emit,
    should_stop: Callable[[], bool],
    *,
    sample_system: bool,
    flush_interval_s: float,
    resume: bool = False,
    dist: Any = None,
) -> dict[str, Any]:
    """Train with the batched writer and the system sampler running, and close both."""
    writer = BatchedWriter(db_path, run_id, interval_s=flush_interval_s)
    verdicts = _LiveVerdict(BottleneckTracker(), spec, emit)
    sampler = None
    try:
        if sample_system:
            sampler = _start_sampler(writer, emit, verdicts.tracker)
        result = _train_and_record(
            spec, run_id, writer, store, emit, should_stop, verdicts, resume, dist
        )
    finally:
        if sampler is not None:
            sampler.stop()
        if not writer.close():
            log.warning("the metric writer did not finish in time: %s", writer.error)
    # The run's last metrics never reached the disk: it must not stand as completed.
    if writer.failure is not None and result["status"] != st.FAILED:
        failed = _failure(writer.failure.message, writer.failure.hint)
        return {**failed, "summary": result.get("summary", {})}
    return result


def _train_and_record(
    spec: RunSpec,
    run_id: int,
    writer: BatchedWriter,
    store: RunRepository,
    emit: Emit,
    should_stop: Callable[[], bool],
    verdicts: _LiveVerdict,
    resume: bool = False,
    dist: Any = None,
) -> dict[str, Any]:
    """Train, storing and sending every event; the run's end is always sent as a RunFinished."""
    # Imported here so that importing engine.jobs.job never loads torch.
    from cnn_lab.engine.train.events import RunFinished
    from cnn_lab.engine.train.loop import train_events

    recorder = RunRecorder(store, run_id, writer)
    files = run_files_dir(store.path, run_id)
    preparing = _PreparingReporter(emit)
    try:
        _download_weights(spec, preparing, should_stop, dist)
        for event in train_events(
            spec,
            progress=preparing,
            run_id=run_id,
            should_stop=should_stop,
            weights_path=files / "model.safetensors",
            checkpoint_dir=files,
            resume=resume,
            dist=dist,
        ):
            verdicts.observe(event)
            if writer.failure is not None:  # a full disk or a gone server: stop, do not train on
                raise writer.failure
            recorder.record(event)
            if event.kind == "finished":
                verdicts.finish(event.summary)  # the whole run's verdict joins the summary
                emit(event)
                return _finished(event)
            emit(event)
        result = _failure("Training ended without a result.", None)
    except Exception as exc:  # the run must end recorded, whatever broke
        result = _ended_by(exc, spec.architecture)
    emit(
        RunFinished(
            run_id=run_id,
            status=result["status"],
            reason=result["reason"],
            hint=result["hint"],
            summary={},
        )
    )
    return result


def _download_weights(
    spec: RunSpec,
    progress: Callable[[str, int, int], None],
    should_stop: Callable[[], bool],
    dist: Any = None,
) -> None:
    """Published weights the network starts from, downloaded into torch.hub's cache before
    anything is built (building never downloads), as a "Downloading weights" preparing stage.

    A cached file costs nothing and touches no network; a stop raises Cancelled, and a failed
    download is the run's one-sentence reason, with the hint to pick a weights file instead.
    In a data-parallel run the other ranks wait for this download (and learn whether it
    failed) in ``weights_failed``, reached here whatever happened.
    """
    if not spec.architecture.weights:
        return
    from cnn_lab.engine.models.published_weights import ensure_weights

    failed, others_failed = True, False
    try:
        ensure_weights(spec.architecture, progress, should_stop)
        failed = False
    finally:
        if dist is not None and dist.active:
            from cnn_lab.engine.train.distributed import weights_failed

            others_failed = weights_failed(dist, failed)
    if others_failed:
        raise UserError(
            "Another machine of the data-parallel run could not download the published "
            "weights (its log says why).",
            "Check that machine's internet access, or pick a weights file instead.",
        )


def _finished(event: Any) -> dict[str, Any]:
    """The run's end as the loop's RunFinished says it."""
    return {
        "status": event.status,
        "reason": event.reason,
        "hint": event.hint,
        "summary": event.summary,
    }


def _ended_by(exc: Exception, architecture: ArchitectureSpec) -> dict[str, Any]:
    """The end of a run that training left by ``exc``: a sentence for a person, no traceback."""
    if isinstance(exc, Cancelled):
        return {
            "status": st.STOPPED,
            "reason": "Stopped by request while the data was being prepared.",
            "hint": None,
            "summary": {},
        }
    if isinstance(exc, UserError):
        return _failure(exc.message, exc.hint)
    if isinstance(exc, MemoryError):
        return _failure("The run ran out of memory.", memory_hint(architecture))
    if isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower():
        return _failure("The device ran out of memory.", memory_hint(architecture))
    log.error("training failed:\n%s", traceback.format_exc())
    # A RuntimeError's type says nothing a person can use; any other type names the bug.
    return _failure(
        internal_error("Training", exc, with_type=not isinstance(exc, RuntimeError)), BUG_HINT
    )


class _LiveVerdict:
    """Feeds the bottleneck tracker from the loop's events and sends the verdict on.

    The live verdict covers the last few seconds and goes out every ``INTERVAL_S`` seconds;
    the whole run's verdict (without the first, warming-up window) is saved in the summary.
    """

    INTERVAL_S = 5.0

    def __init__(self, tracker: BottleneckTracker, spec: RunSpec, emit: Emit) -> None:
        self.tracker = tracker
        self.spec = spec
        self.emit = emit
        self._last = time.monotonic()

    def observe(self, event: Any) -> None:
        from cnn_lab.engine.jobs.bottleneck import context_from_start
        from cnn_lab.engine.train.events import BottleneckReport
        from cnn_lab.engine.train.presets import is_ampere_or_newer

        kind = getattr(event, "kind", "")
        if kind == "started":
            settings = self.spec.train.model_dump()
            settings["bf16_supported"] = not event.device.startswith("cuda") or (
                is_ampere_or_newer(event.device)
            )
            self.tracker.set_context(context_from_start(event, settings, event.augment))
        elif kind == "timing":
            self.tracker.add_timing(event)
            now = time.monotonic()
            if now - self._last >= self.INTERVAL_S:
                self._last = now
                self.emit(BottleneckReport(self.tracker.diagnose(recent=True).to_dict()))

    def finish(self, summary: dict[str, Any]) -> None:
        """Put the whole run's verdict in the summary, and send it as the last verdict."""
        from cnn_lab.engine.train.events import BottleneckReport

        diagnosis = self.tracker.diagnose(recent=False)
        if diagnosis.steps == 0:
            return
        summary["bottleneck"] = diagnosis.to_dict()
        self.emit(BottleneckReport(summary["bottleneck"]))


class _DataParallel:
    """The processes of a data-parallel job, as seen from this one (rank 0 or a torchrun rank).

    Started under torchrun (WORLD_SIZE in the environment), every process is a rank already;
    started by the app or ``cnn-lab train --world-size N``, this process is rank 0 and spawns
    ranks 1..N-1 on this machine. Imports torch, so only built for data-parallel runs.
    """

    def __init__(self, spec: RunSpec) -> None:
        from cnn_lab.engine.train import distributed as d

        self._d = d
        self.workers: list[Any] = []
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            self.ctx = d.DistContext.from_env(spec.train.device)
            d.init_process_group(self.ctx)
        else:
            self.ctx, self.workers, address = d.spawn_workers(
                spec.to_json(), spec.train.world_size, spec.train.device
            )
            d.init_process_group(self.ctx, address)

    def run_worker_rank(self, spec: RunSpec) -> None:
        try:
            self._d.run_rank(spec, self.ctx)
        finally:
            self.finish()

    def finish(self) -> None:
        self._d.destroy_process_group()
        for worker in self.workers:
            worker.join(timeout=30)
            if worker.is_alive():
                worker.kill()


def _start_data_parallel(spec: RunSpec) -> _DataParallel | None:
    if spec.train.world_size <= 1 and int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    return _DataParallel(spec)


def _failure(reason: str, hint: str | None) -> dict[str, Any]:
    return {"status": st.FAILED, "reason": reason, "hint": hint, "summary": {}}


def _start_sampler(writer: BatchedWriter, emit: Emit, tracker: BottleneckTracker) -> Any:
    from cnn_lab.engine.monitor.system import BackgroundSampler
    from cnn_lab.engine.train.events import SystemSampled

    def record(when: float, values: dict[str, float]) -> None:
        for key, value in values.items():
            writer.sample(when, key, value)
        tracker.add_system(values)
        emit(SystemSampled(time=when, values=values))

    sampler = BackgroundSampler(record, hz=2.0)  # samples this (the job's) process
    sampler.start()
    return sampler


SEND_AT_ONCE = frozenset({"started", "epoch", "checkpoint", "weights", "finished", STORE_BUSY_KIND})
"""Event kinds a job's child sends without waiting for the next batch. The window reacts at
once to a run starting (the Monitor switches to it), finishing (the slot frees, the run is
selected) and to the store going busy or clearing (the status bar line); epochs, checkpoints
and weights come once an epoch at most, so flushing them too costs nothing and keeps what
the window shows in step with what is on disk."""


def _send_at_once(event: Any) -> bool:
    return getattr(event, "kind", "") in SEND_AT_ONCE


def child_main(
    spec_json: str,
    db_path: str,
    run_id: int,
    conn: Connection,
    stop_event: MpEvent,
    device: str | None = None,
    resume: bool = False,
    send_every_s: float = 0.0,
) -> None:
    """The job process: train, and send every event to the parent over ``conn``.

    With ``send_every_s`` > 0 (the window's job thread asks for it) events travel in
    batches: each message is a list of events, at most one about every ``send_every_s``
    except for the kinds in ``SEND_AT_ONCE`` (see ``engine.jobs.batching``). With 0 each
    event is its own message, for a reader that expects single events.

    If the parent dies (the pipe breaks, or this process is re-parented) the run stops at
    the next step and is recorded as stopped, so nothing trained so far is lost.
    """
    logging.basicConfig(level=logging.INFO, format="[job %(process)d] %(levelname)s %(message)s")
    link = ParentLink(conn, stop_event)
    batcher = None
    emit: Emit = link.send
    if send_every_s > 0:
        batcher = EventBatcher(link.send, interval_s=send_every_s, urgent=_send_at_once)
        emit = batcher.emit
    try:
        record = run_job(
            RunSpec.from_json(spec_json),
            db_path,
            run_id,
            emit=emit,
            should_stop=link.should_stop,
            device=device,
            resume=resume,
        )
    finally:
        if batcher is not None:
            batcher.close()  # what is still buffered goes out, whatever ended the job
    if link.gone.is_set() and record is not None and record.status == st.STOPPED:
        _record_window_gone(db_path, run_id)
    with contextlib.suppress(OSError):
        conn.close()


WINDOW_GONE_REASON = "Stopped because cnn-lab's window closed unexpectedly; resume it to continue."
WINDOW_GONE_EARLY_REASON = (
    "Stopped because cnn-lab's window closed unexpectedly before training began; train it again."
)


def _record_window_gone(db_path: str, run_id: int) -> None:
    """Say why a run stopped that nobody asked to stop: the window's process went away.

    The loop saved a checkpoint as it stopped, so the run can be resumed; one stopped while
    its data was still being prepared has no checkpoint and must be trained again.
    """
    store = open_store(db_path)
    try:
        resumable = store.has_artifact(run_id, artifact_kinds.LAST_CHECKPOINT)
        store.finish_run(
            run_id,
            st.STOPPED,
            reason=WINDOW_GONE_REASON if resumable else WINDOW_GONE_EARLY_REASON,
        )
    finally:
        store.close()
