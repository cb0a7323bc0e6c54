"""``cnn-lab evaluate RUN_ID``: a finished run's scores on its held-out images.

Prints the accuracy, loss, per-class precision, recall and F1 and the costliest mistakes,
or with ``--json`` one object (``Evaluation.to_dict()``: the confusion matrix included).
The result is also kept in the run's summary as ``evaluation``, so the GUI and reports show
it without evaluating again.

Kept apart from engine/cli.py so each file holds one family of commands; torch loads only
when a run is evaluated, so ``cnn-lab --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import threading
from collections.abc import Callable
from typing import Any, TextIO

from cnn_lab.engine.cli_data import _progress_line
from cnn_lab.engine.cli_train import _stop_on_interrupt
from cnn_lab.engine.errors import UserError
from cnn_lab.engine.store import RunStore, resolve_db_path


def add_evaluate_commands(commands: Any, add_db: Callable[[argparse.ArgumentParser], None]) -> None:
    evaluate = commands.add_parser(
        "evaluate", help="score a trained run on its test split: per class, confusion, mistakes"
    )
    evaluate.add_argument("run_id", type=int, metavar="RUN_ID")
    add_db(evaluate)
    evaluate.add_argument(
        "--split",
        choices=("auto", "test", "val"),
        default="auto",
        help="the held-out images to score (auto: test if the run held some out, else val)",
    )
    evaluate.add_argument(
        "--mistakes", type=int, default=24, metavar="N", help="costliest mistakes to list"
    )
    evaluate.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N, mps or auto")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    evaluate.set_defaults(handler=cmd_evaluate)


def cmd_evaluate(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from cnn_lab.engine.evaluation.evaluate import evaluate_run

    if args.mistakes < 0:
        raise UserError("--mistakes must be 0 or more.")
    db = resolve_db_path(args.db)
    if not db.exists():  # reading must not leave an empty database behind a typo
        raise UserError(f"There is no run database at {db}.", hint="Check --db or $CNN_LAB_DB.")
    stop = threading.Event()
    with RunStore.open(db) as store, _stop_on_interrupt(stop):
        result = evaluate_run(
            store,
            args.run_id,
            split=args.split,
            mistakes=args.mistakes,
            device=args.device,
            should_stop=stop.is_set,
            progress=_progress_line(err),
        )
        store.update_summary(args.run_id, {"evaluation": result.to_dict()})
    if args.json:
        out.write(json.dumps(result.to_dict(), allow_nan=False) + "\n")
    else:
        out.write("\n".join(result.summary_lines()) + "\n")
    return 0


__all__ = ["add_evaluate_commands", "cmd_evaluate"]
