"""``cnn-lab train`` and ``cnn-lab resume``: runs on a terminal, the same engine as the window.

Under ``torchrun`` (RANK/WORLD_SIZE in the environment) every process runs ``train``; rank 0
records the run.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

from cnn_lab.engine.cli.common import (
    EXIT_FAILED,
    PROG,
    add_db,
    add_network_source_options,
    add_spec_options,
    spec_from_args,
    stop_on_interrupt,
    summary_line,
)
from cnn_lab.engine.errors import UserError
from cnn_lab.engine.jobs.resume import resume_refusal
from cnn_lab.engine.specs import RunSpec
from cnn_lab.engine.store import RunRecord, open_store, resolve_location
from cnn_lab.engine.store import status as st
from cnn_lab.engine.store.locations import describe


def add_commands(commands: Any) -> None:
    train = commands.add_parser("train", help="train one run headless and record it")
    add_db(train)
    add_spec_options(train)
    add_network_source_options(train)
    train.add_argument("--name", default=None, help="a name for the run")
    train.add_argument("--json", action="store_true", help="print one JSON object when done")
    train.set_defaults(handler=cmd_train)

    resume = commands.add_parser("resume", help="continue a run from its last checkpoint")
    add_db(resume)
    resume.add_argument("run_id", type=int, metavar="RUN_ID")
    resume.add_argument(
        "--epochs", type=int, default=None, metavar="N", help="the new total number of epochs"
    )
    resume.add_argument("--device", default=None, metavar="DEVICE")
    resume.add_argument("--json", action="store_true")
    resume.set_defaults(handler=cmd_resume)


def cmd_train(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from cnn_lab.engine.jobs.job import run_job  # loads the store only; torch loads in the loop

    spec = spec_from_args(args)
    db = resolve_location(args.db)
    stop = threading.Event()
    with stop_on_interrupt(stop):
        record = run_job(spec, db, emit=_progress_printer(err), should_stop=stop.is_set)
    if record is None:  # a torchrun worker rank: rank 0 reports
        return 0
    return _report(record, db, args.json, out, err)


def cmd_resume(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from cnn_lab.engine.jobs.job import run_job

    db = resolve_location(args.db)
    with open_store(db) as store:
        record = store.get_run(args.run_id)
        done = int(record.summary.get("epochs") or 0)
        refusal = resume_refusal(record.id, record.status, epochs=args.epochs, epochs_done=done)
        if refusal is not None:
            raise UserError(refusal)
        spec = RunSpec.from_json(record.spec_json)
        if args.epochs is not None:
            train = spec.train.model_copy(update={"epochs": args.epochs})
            spec = RunSpec.from_dict({**spec.model_dump(mode="json"), "train": train.model_dump()})
            store.update_spec(record.id, spec.to_json(), spec.spec_hash())
    stop = threading.Event()
    with stop_on_interrupt(stop):
        final = run_job(
            spec,
            db,
            record.id,
            emit=_progress_printer(err),
            should_stop=stop.is_set,
            device=args.device,
            resume=True,
        )
    return _report(final, db, args.json, out, err)


def _report(record: RunRecord, db: str, as_json: bool, out: TextIO, err: TextIO) -> int:
    summary = record.summary
    result = {
        "run_id": record.id,
        "status": record.status,
        "reason": record.reason,
        "hint": record.hint,
        "epochs": summary.get("epochs", 0),
        "best_val_accuracy": summary.get("best_val_accuracy"),
        "final_train_loss": summary.get("final_train_loss"),
        "train_images_per_s": summary.get("train_images_per_s"),
        "compile_s": summary.get("compile_s"),
        "device": summary.get("device", record.device),
        "bottleneck": summary.get("bottleneck"),
        "db": describe(db),  # an address without its password
    }
    if as_json:
        out.write(json.dumps(result) + "\n")
    else:
        out.write(f"run {record.id} {record.status}: {summary_line(summary)}\n")
        verdict = summary.get("bottleneck")
        if verdict:
            out.write(f"  {verdict['title']}\n")
            for rec in verdict.get("recommendations", [])[:3]:
                out.write(f"  - {rec['text']}\n")
    if record.status == st.FAILED:
        err.write(
            f"{PROG}: run {record.id} failed: {record.reason}"
            + (f" {record.hint}" if record.hint else "")
            + "\n"
        )
        return EXIT_FAILED
    return 0


def _progress_printer(err: TextIO) -> Callable[[Any], None]:
    from cnn_lab.engine.train.events import DataProgress, EpochEnd, RunStarted

    began: list[float] = []  # when preparation started
    shown_at = [0.0]

    def show(event: Any) -> None:
        if isinstance(event, DataProgress):
            # Silent when preparing is quick; then a line every few seconds, not a flood.
            now = time.monotonic()
            began[:] = began or [now]
            if now - began[0] >= 2 and now - shown_at[0] >= 5:
                shown_at[0] = now
                count = f" {event.done:,} of {event.total:,}" if event.total else ""
                err.write(f"preparing the data: {event.stage}{count}\n")
        elif isinstance(event, RunStarted):
            resumed = f", resuming at step {event.start_step}" if event.start_step else ""
            err.write(
                f"training on {event.device}: {event.train_images} train / "
                f"{event.val_images} val images, {len(event.classes)} classes, "
                f"{event.params:,} parameters, {event.total_steps} steps{resumed}\n"
            )
            if event.preprocess:
                err.write(f"images: {event.preprocess}\n")
        elif isinstance(event, EpochEnd):
            err.write(
                f"epoch {event.epoch}: train loss {event.train_loss:.4f}  "
                f"val loss {event.val_loss:.4f}  val acc {event.val_accuracy:.1%}  "
                f"{event.images_per_s:,.0f} img/s  {event.epoch_s:.1f} s\n"
            )
        err.flush()

    return show
