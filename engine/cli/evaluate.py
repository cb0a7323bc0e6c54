"""``cnn-lab evaluate RUN_ID`` and ``cnn-lab predict RUN_ID IMAGE...``: using a trained run.

``predict`` prints each image's top classes with their probabilities (``--json``: one
object with a ``predictions`` list; ``--csv OUT``: one row per image); a folder stands for
its images, and an unreadable file is a row with its reason.

Prints the accuracy, loss, per-class precision, recall and F1 and the costliest mistakes,
or with ``--json`` one object (``Evaluation.to_dict()``: the confusion matrix included).
The result is also kept in the run's summary as ``evaluation``, so the GUI and reports show
it without evaluating again.

Torch loads only when a run is evaluated, so ``cnn-lab --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import threading
from typing import Any, TextIO

from cnn_lab.engine.cli.common import add_db, progress_line, stop_on_interrupt
from cnn_lab.engine.errors import UserError
from cnn_lab.engine.store import open_store, resolve_location, store_exists


def add_commands(commands: Any) -> None:
    evaluate = commands.add_parser(
        "evaluate", help="score a trained run: per class, confusion, mistakes"
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

    predict = commands.add_parser(
        "predict", help="the top classes of images or folders by a trained run"
    )
    predict.add_argument("run_id", type=int, metavar="RUN_ID")
    predict.add_argument("images", nargs="+", metavar="IMAGE", help="image files or folders")
    add_db(predict)
    predict.add_argument("--top", type=int, default=5, metavar="K", help="classes per image")
    predict.add_argument("--csv", metavar="OUT.csv", help="also write the predictions as CSV")
    predict.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N, mps or auto")
    predict.add_argument("--json", action="store_true", help="print one JSON object")
    predict.set_defaults(handler=cmd_predict)


def cmd_evaluate(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from cnn_lab.engine.evaluation.evaluate import evaluate_and_store

    if args.mistakes < 0:
        raise UserError("--mistakes must be 0 or more.")
    db = resolve_location(args.db)
    if not store_exists(db):  # reading must not leave an empty database behind a typo
        raise UserError(f"There is no run database at {db}.", hint="Check --db or $CNN_LAB_DB.")
    stop = threading.Event()
    with open_store(db) as store, stop_on_interrupt(stop):
        result = evaluate_and_store(
            store,
            args.run_id,
            split=args.split,
            mistakes=args.mistakes,
            device=args.device,
            should_stop=stop.is_set,
            progress=progress_line(err),
        )
    if args.json:
        out.write(json.dumps(result.to_dict(), allow_nan=False) + "\n")
    else:
        out.write("\n".join(result.summary_lines()) + "\n")
    return 0


def cmd_predict(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from cnn_lab.engine.evaluation.predict import predict_files, write_csv

    if args.top < 1:
        raise UserError("--top must be 1 or more.")
    db = resolve_location(args.db)
    if not store_exists(db):
        raise UserError(f"There is no run database at {db}.", hint="Check --db or $CNN_LAB_DB.")
    predictions = predict_files(
        db, args.run_id, args.images, top=args.top, device=args.device
    ).predictions
    if args.csv:
        try:
            write_csv(predictions, args.csv)
        except OSError as exc:
            raise UserError(f"Could not write {args.csv}: {exc.strerror or exc}.") from None
    if args.json:
        out.write(
            json.dumps({"run_id": args.run_id, "predictions": [p.to_dict() for p in predictions]})
            + "\n"
        )
        return 0
    for p in predictions:
        shown = ", ".join(f"{name} {probability:.1%}" for name, probability in p.top)
        out.write(f"{p.image}: {shown or p.error}\n")
    return 0


__all__ = ["add_commands", "cmd_evaluate", "cmd_predict"]
