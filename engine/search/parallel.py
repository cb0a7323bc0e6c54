"""Several trials at once on one machine: one worker process per slot, all on one study.

Each slot (``cuda:0``, ``cuda:0`` again, ``cpu`` ...; slots.py) gets a "spawn" process that
opens the study and takes trials from its queue exactly as ``cnn-lab sweep-worker`` does on
another machine (queue.py makes the take atomic, so no trial runs twice), training every
trial on its slot's device. A separate process per trial slot rather than a thread: CPU
training needs its own interpreter lock, and a CUDA fault or an out-of-memory kill in one
trial must not end the others.

The coordinating process (the CLI, or the Sweep panel's sweep child) only relays: each
worker puts ``("trial", outcome_dict)`` on a queue as it finishes one, and ``("error",
sentence)`` if it cannot work at all. Stop sets a shared event that every worker's trials
check at each step; a worker whose coordinator died (re-parented) stops the same way, so
killing the app's sweep leaves no trainer behind, and the trials it cut off are queued
again when the sweep resumes (storage.py).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import os
import queue as queue_module
from collections.abc import Callable, Sequence
from multiprocessing.synchronize import Event as MpEvent
from pathlib import Path
from typing import Any

from cnn_lab.engine.search.spec import SearchSpec

log = logging.getLogger(__name__)

POLL_S = 0.2
"""How often the coordinator checks Stop while it waits for the workers' news."""


def cpu_threads(slots: Sequence[str]) -> int:
    """Threads for a CPU trial beside GPU trials: the cores the GPU trials' loaders leave.

    Alone (every slot the CPU) the trials split the cores between them, so two CPU trials
    on eight cores do not each start eight threads and thrash.
    """
    cores = os.cpu_count() or 1
    cpu_slots = sum(slot == "cpu" for slot in slots)
    others = len(slots) - cpu_slots
    if cpu_slots == 0:
        return 0
    return max(1, (cores - others) // cpu_slots)


def slot_worker(
    search_json: str,
    db_path: str,
    storage: str | None,
    slot: str,
    seed: int,
    threads: int,
    trainer: Any,
    sample_system: bool,
    stop_event: MpEvent,
    outbox: Any,
) -> None:
    """One slot's process: take trials from the study and train each on ``slot``."""
    logging.basicConfig(
        level=logging.INFO, format=f"[sweep {slot} %(process)d] %(levelname)s %(message)s"
    )
    parent = os.getppid()

    def should_stop() -> bool:
        return stop_event.is_set() or os.getppid() != parent

    try:
        import torch

        from cnn_lab.engine.train.devices import resolve_device

        resolve_device(slot)  # a slot this machine lacks fails here, before it takes a trial
        if threads:
            torch.set_num_threads(threads)
        from cnn_lab.engine.search import storage as stg
        from cnn_lab.engine.search import study as sweep

        search = SearchSpec.from_json(search_json)
        study = sweep.open_study(search, stg.open_storage(storage, db_path), worker=seed)
        objective = sweep.objective_for(
            search, db_path, trainer, should_stop, sample_system, device=slot
        )
        sweep.work(
            search,
            study,
            objective,
            should_stop,
            lambda outcome: outbox.put(("trial", outcome.to_dict())),
        )
    except Exception as exc:  # the coordinator must hear why this slot trains nothing
        from cnn_lab.engine.errors import UserError

        log.exception("the %s worker failed", slot)
        sentence = exc.message if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}"
        outbox.put(("error", f"The trials on {slot} stopped: {sentence}"))


def work_on_slots(
    search: SearchSpec,
    db_path: str | Path,
    storage: str | None,
    slots: list[str],
    should_stop: Callable[[], bool],
    progress: Callable[[Any], None],
    trainer: Any = None,
    sample_system: bool = True,
    seed_base: int = 0,
) -> None:
    """Train the study's queued trials on ``slots`` at once; return when every worker is done.

    Slot ``i`` samples with the seed shifted by ``seed_base + i + 1``, so no two workers
    draw the same random points.

    Raises UserError when every worker failed before finishing a single trial (a device
    that does not exist, say); a failure in some slots while others work is logged, since
    the others take over the queue.
    """
    from cnn_lab.engine.errors import UserError
    from cnn_lab.engine.search.study import TrialOutcome

    ctx = mp.get_context("spawn")
    stop = ctx.Event()
    outbox = ctx.Queue()
    threads = cpu_threads(slots)
    workers = [
        ctx.Process(
            target=slot_worker,
            args=(
                search.to_json(),
                str(db_path),
                storage,
                slot,
                seed_base + i + 1,
                threads if slot == "cpu" else 0,
                trainer,
                sample_system,
                stop,
                outbox,
            ),
            name=f"cnn-lab-sweep-{slot}-{i}",
            daemon=False,
        )
        for i, slot in enumerate(slots)
    ]
    for worker in workers:
        worker.start()
    errors: list[str] = []
    finished = 0

    def handle(kind: str, payload: Any) -> None:
        nonlocal finished
        if kind == "trial":
            finished += 1
            progress(TrialOutcome(**{**payload, "scores": tuple(payload.get("scores", ()))}))
        else:
            log.warning("%s", payload)
            errors.append(payload)

    try:
        while any(worker.is_alive() for worker in workers):
            if should_stop():
                stop.set()
            with contextlib.suppress(queue_module.Empty):
                handle(*outbox.get(timeout=POLL_S))
        while True:  # what the workers sent just before they exited
            try:
                handle(*outbox.get_nowait())
            except queue_module.Empty:
                break
    finally:
        stop.set()
        for worker in workers:
            worker.join()
    if errors and finished == 0 and len(errors) == len(workers):
        raise UserError(errors[0], hint="Check the slots: each must be a device this machine has.")


__all__ = ["cpu_threads", "slot_worker", "work_on_slots"]
