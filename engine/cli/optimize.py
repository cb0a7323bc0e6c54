"""``cnn-lab optimize``: speed, rate, search and a final run within a time budget, explained.

Progress per phase goes to stderr; the decision card (or with ``--json`` one JSON object, the
result's ``to_dict()``) to stdout. The first Ctrl-C stops at the next step and still prints the
best run so far and every decision made until then. Torch loads only when it runs.
"""

from __future__ import annotations

import argparse
import json
import threading
from typing import Any, TextIO

from cnn_lab.engine.cli.common import (
    add_data_options,
    add_db,
    dataset_dict,
    load_architecture,
    stop_on_interrupt,
)
from cnn_lab.engine.errors import UserError
from cnn_lab.engine.specs import RunSpec


def add_commands(commands: Any) -> None:
    about = "tune, search and train the best within a time budget"
    parser = commands.add_parser("optimize", help=about, description=about)
    parser.add_argument("--data", default="sample:shapes", metavar="SOURCE")
    parser.add_argument(
        "--model",
        nargs="+",
        default=["small_cnn"],
        metavar="NAME",
        help="a preset or architecture file; several presets are candidates the search picks from",
    )
    parser.add_argument(
        "--width",
        nargs="+",
        type=float,
        default=[],
        metavar="W",
        help="candidate widths the search picks from (default: the network's own)",
    )
    parser.add_argument(
        "--budget", type=float, required=True, metavar="MINUTES", help="the time it may take"
    )
    parser.add_argument("--goal", choices=("accuracy", "target"), default="accuracy")
    parser.add_argument("--target", type=float, default=None, metavar="ACC", help="e.g. 0.9")
    parser.add_argument(
        "--max-epochs",
        type=int,
        default=None,
        metavar="N",
        help="the most epochs the final run trains (default: 60, or 120 for a recipe that "
        "augments its images; time beyond goes to the search)",
    )
    parser.add_argument("--device", default="auto", metavar="DEVICE")
    parser.add_argument("--seed", type=int, default=0, metavar="N")
    add_data_options(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    add_db(parser)
    parser.set_defaults(handler=cmd_optimize)


def spec_of(args: argparse.Namespace) -> RunSpec:
    """The starting RunSpec: the first network, cnn-lab's default recipe, the data options."""
    architecture = load_architecture(args.model[0]).model_dump(mode="json")
    if args.width:
        architecture["width"] = args.width[0]
    return RunSpec.from_dict(
        {
            "dataset": dataset_dict(args, args.data),
            "architecture": architecture,
            "train": {"device": args.device, "seed": args.seed},
        }
    )


def cmd_optimize(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from cnn_lab.engine.optimize import optimize
    from cnn_lab.engine.store import resolve_location

    if len(args.model) > 1 and any(load_architecture(m).preset is None for m in args.model):
        raise UserError("Several --model candidates must all be preset names.")
    spec = spec_of(args)
    stop = threading.Event()
    last: list[tuple[str, float]] = [("", 0.0)]

    def progress(p: Any) -> None:
        key = p.phase
        if key != last[0][0] or p.elapsed_s - last[0][1] >= 1.0 or p.done == p.total:
            last[0] = (key, p.elapsed_s)
            err.write(
                f"[{p.elapsed_s:5.0f}/{p.budget_s:.0f} s] {p.phase}: {p.stage} {p.done}/{p.total}\n"
            )
            err.flush()

    with stop_on_interrupt(stop):
        result = optimize(
            spec,
            args.budget * 60.0,
            args.goal,
            db_path=resolve_location(args.db),
            target=args.target,
            widths=tuple(args.width),
            networks=tuple(args.model) if len(args.model) > 1 else (),
            should_stop=stop.is_set,
            progress=progress,
            **({"final_epoch_cap": args.max_epochs} if args.max_epochs is not None else {}),
        )
    if args.json:
        out.write(json.dumps(result.to_dict(), allow_nan=False) + "\n")
    else:
        out.write("\n".join(result.summary_lines()) + "\n")
    return 0


__all__ = ["add_commands", "cmd_optimize"]
