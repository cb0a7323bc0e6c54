"""``cnn-lab sweep SEARCH.json``: a hyperparameter search on a terminal.

Runs (or resumes: the study is stored beside the run database) the search, prints one line
per trial as it finishes and the best trial at the end; ``--json`` prints exactly one JSON
object, ``SweepResult.to_dict()``, so scripts read what the GUI will. The first Ctrl-C
stops after the current step; the interrupted trial runs again when the sweep resumes.

``cnn-lab sweep-worker STUDY --storage URL`` joins a sweep created with ``--storage`` (on
this or another machine) and trains its queued trials until none is left, recording its runs
in its own ``--db``; ``cnn-lab sweep --create-only`` creates and queues a sweep for workers.
A worker stays while other workers' trials run, and trains again any trial whose worker died:
on this machine when its process is gone, on another when its run's lease in the run store
runs out (``$CNN_LAB_LEASE_S`` seconds without a heartbeat, default 30). ``$CNN_LAB_HOST``
names the machine a worker says it runs on (default: its hostname), for containers.

Torch and Optuna load only when a sweep runs, so ``cnn-lab --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from cnn_lab.engine.cli.common import add_db, stop_on_interrupt
from cnn_lab.engine.errors import UserError
from cnn_lab.engine.store import is_postgres, resolve_location
from cnn_lab.engine.store.locations import describe


def add_commands(commands: Any) -> None:
    sweep = commands.add_parser("sweep", help="run or resume a search: grid, random or TPE")
    sweep.add_argument("search", metavar="SEARCH.json", help="the search spec file")
    add_db(sweep)
    sweep.add_argument(
        "--storage",
        metavar="URL",
        help="the study's storage: a journal file or an Optuna RDB URL "
        "(default: a journal beside the run database)",
    )
    sweep.add_argument(
        "--create-only",
        action="store_true",
        help="create the study and queue its trials without training (for sweep-worker)",
    )
    _add_slot_options(sweep)
    sweep.add_argument("--json", action="store_true", help="print one JSON object when done")
    sweep.set_defaults(handler=cmd_sweep)

    worker = commands.add_parser(
        "sweep-worker",
        help="join a shared sweep and train its queued trials",
        description="Join a shared sweep and train its queued trials until none is left and "
        "no other worker's trial still runs; a trial whose worker died (on another machine: "
        "its run's lease ran out) is trained again here.",
        epilog="Environment: CNN_LAB_DB (the run store), CNN_LAB_LEASE_S (seconds without a "
        "heartbeat before a run counts as crashed, default 30), CNN_LAB_HOST (the name this "
        "machine's runs and trials record, default its hostname).",
    )
    worker.add_argument("study", metavar="STUDY", help="the sweep's name, as `sweep` printed it")
    worker.add_argument(
        "--storage",
        metavar="URL",
        help="the storage every worker reaches: a journal file on a shared disk, "
        "or a PostgreSQL or MySQL URL (not needed with a postgresql:// --db, whose "
        "database holds the study)",
    )
    add_db(worker)
    _add_slot_options(worker)
    worker.add_argument("--json", action="store_true", help="print one JSON object when done")
    worker.set_defaults(handler=cmd_sweep_worker)


def _add_slot_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--slots",
        default="auto",
        metavar="auto|LIST",
        help="where trials train at once: auto (one per GPU, more when the memory estimate "
        "says they fit; the spec's device without a GPU) or a list such as cuda:0,cuda:0,cpu",
    )
    parser.add_argument(
        "--cpu-too",
        action="store_true",
        help="with --slots auto on a GPU machine, also train one trial on the CPU",
    )


def _slots(args: argparse.Namespace, search: Any, err: TextIO) -> list[str]:
    """The slots the sweep trains on, said on stderr when there is more than one."""
    from cnn_lab.engine.search.slots import parse_slots, plan_for

    if args.slots.strip().lower() == "auto":
        plan = plan_for(search, cpu=args.cpu_too)
        slots, why = list(plan.slots), plan.describe()
    else:
        try:
            slots = list(parse_slots(args.slots))
        except ValueError as exc:
            raise UserError(f"--slots: {exc}.") from None
        why = f"{len(slots)} at once: {', '.join(slots)}"
    if len(slots) > 1:
        err.write(f"Trials train {why}.\n")
    return slots


def _read_search(path: str) -> Any:
    from cnn_lab.engine.search.spec import SearchSpec

    try:
        text = Path(path).read_bytes()  # from_json decodes, refusing bad bytes in words
    except OSError as exc:
        raise UserError(
            f"Cannot read the search spec {path}: {exc.strerror or exc}.",
            hint="Check the path.",
        ) from None
    return SearchSpec.from_json(text)


def _format_params(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items())


def _format_value(value: float | None, metric: str, spread: float | None = None) -> str:
    """A score as the person reads it; with a spread (folds or seeds) as ``mean ± std``."""
    if value is None:
        return "-"
    shown = f"{value:.1%}" if metric == "val.accuracy" else f"{value:.4f}"
    if spread:
        shown += f" ± {spread:.1%}" if metric == "val.accuracy" else f" ± {spread:.4f}"
    return shown


def _shower(metric: str, stream: TextIO) -> Callable[[Any], None]:
    """Prints one line per finished trial (on stderr under --json, so stdout stays JSON)."""

    def show(trial: Any) -> None:
        value = _format_value(trial.value, metric, trial.spread)
        stream.write(
            f"trial {trial.number}: {trial.state:<8} {metric} {value}  "
            f"{_format_params(trial.params)}  run {trial.run_id}  {trial.epochs} epochs"
            + (f"  ({trial.reason})" if trial.reason and trial.state != "complete" else "")
            + "\n"
        )
        stream.flush()

    return show


def cmd_sweep(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from cnn_lab.engine.search.study import create_sweep, run_sweep

    search = _read_search(args.search)
    db = resolve_location(args.db)
    if args.create_only:
        name = create_sweep(search, db, storage=args.storage)
        out.write(
            json.dumps({"study_name": name}) + "\n"
            if args.json
            else f"Sweep {name} is queued; start workers with: cnn-lab sweep-worker {name} "
            + _where_workers_look(args.storage, db)
            + "\n"
        )
        return 0
    show = _shower(search.metric, err if args.json else out)
    stop = threading.Event()
    with stop_on_interrupt(stop):
        result = run_sweep(
            search,
            db,
            storage=args.storage,
            should_stop=stop.is_set,
            progress=show,
            slots=_slots(args, search, err),
        )
    return _print_result(result, args.json, out)


def cmd_sweep_worker(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from cnn_lab.engine.search.study import join_sweep, saved_search

    db = resolve_location(args.db)
    if args.storage is None and not is_postgres(db):
        raise UserError(
            "Give --storage: the journal file or database URL the sweep was created with.",
            hint="Only a run store in PostgreSQL (--db postgresql://...) keeps the study itself.",
        )
    search = saved_search(args.study, args.storage, db)
    show = _shower(search.metric, err if args.json else out)
    stop = threading.Event()
    with stop_on_interrupt(stop):
        result = join_sweep(
            args.study,
            args.storage,
            db,
            should_stop=stop.is_set,
            progress=show,
            slots=_slots(args, search, err),
        )
    return _print_result(result, args.json, out)


def _where_workers_look(storage: str | None, db: str) -> str:
    """The flags a worker needs to find the study: a PostgreSQL run store keeps it in its own
    database, so ``--db`` is enough; otherwise the journal or ``--storage`` named."""
    from cnn_lab.engine.search.storage import default_storage_path

    if storage is None and is_postgres(db):
        return f"--db {describe(db)}"
    return f"--storage {storage or default_storage_path(db)}"


def _print_result(result: Any, as_json: bool, out: TextIO) -> int:
    """The sweep's end: one JSON object, or the best trial and the tally as two lines."""
    if as_json:
        out.write(json.dumps(result.to_dict()) + "\n")
        return 0
    if result.best_trial is None:
        out.write(f"Sweep {result.study_name}: no trial finished yet.\n")
        return 1
    out.write(
        f"Best: trial {result.best_trial}, {result.metric} "
        f"{_format_value(result.best_value, result.metric, result.best_spread)}, "
        f"run {result.best_run_id}: "
        f"{_format_params(result.best_params)}\n"
        f"Sweep {result.study_name}: {result.trials_done} done, {result.trials_pruned} pruned, "
        f"{result.trials_failed} failed, {result.epochs_spent} epochs spent.\n"
    )
    return 0


__all__ = ["add_commands", "cmd_sweep", "cmd_sweep_worker"]
