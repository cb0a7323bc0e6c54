"""``cnn-lab tune lr|batch-size|speed|epoch-time``: the tuners on a terminal.

Each takes the same options as ``cnn-lab train`` (or ``--spec FILE``) and measures that run's
model, data and device. ``--json`` prints exactly one JSON object (the result's
``to_dict()``) on stdout, so scripts and the Tune panel read the same thing; progress always
goes to stderr. The first Ctrl-C asks the tuner to stop after the current step, and what was
measured until then is still reported.

Torch loads only when a tuner runs, so ``cnn-lab --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TextIO

from cnn_lab.engine.cli.common import (
    add_actions,
    add_spec_options,
    progress_line,
    spec_from_args,
    stop_on_interrupt,
)
from cnn_lab.engine.specs import RunSpec

MIB = 1 << 20


class _Result(Protocol):
    def to_dict(self) -> dict[str, Any]: ...
    def summary_lines(self) -> list[str]: ...


Run = Callable[
    [RunSpec, argparse.Namespace, Callable[[], bool], Callable[[str, int, int], None]], _Result
]


@dataclass(frozen=True)
class _Tuner:
    help: str
    add_options: Callable[[argparse.ArgumentParser], None]
    run: Run


# --------------------------------------------------------------------------- lr


def _lr_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--start-lr", type=float, default=1e-6, metavar="X", help="first rate (default: 1e-6)"
    )
    parser.add_argument(
        "--end-lr", type=float, default=1.0, metavar="X", help="last rate (default: 1)"
    )
    parser.add_argument(
        "--steps", type=int, default=100, metavar="N", help="optimizer steps (default: 100)"
    )


def _run_lr(
    spec: RunSpec,
    args: argparse.Namespace,
    should_stop: Callable[[], bool],
    progress: Callable[[str, int, int], None],
) -> _Result:
    from cnn_lab.engine.tune.lr_finder import lr_range_test

    return lr_range_test(
        spec,
        start_lr=args.start_lr,
        end_lr=args.end_lr,
        steps=args.steps,
        should_stop=should_stop,
        progress=progress,
    )


# --------------------------------------------------------------------------- batch size


def _batch_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--limit-batch",
        type=int,
        default=4096,
        metavar="N",
        help="the largest batch to try (default: %(default)s)",
    )
    parser.add_argument(
        "--budget-mb",
        type=float,
        default=None,
        metavar="MIB",
        help="memory a training step may use, in MiB (default: 90%% of the free GPU memory, "
        "or half the available RAM on the CPU)",
    )
    parser.add_argument(
        "--method",
        choices=("auto", "probe", "budget"),
        default="auto",
        help="probe: real steps until out of memory; budget: the estimate, checked by one "
        "step (default: probe on a GPU, budget on the CPU)",
    )


def _run_batch(
    spec: RunSpec,
    args: argparse.Namespace,
    should_stop: Callable[[], bool],
    progress: Callable[[str, int, int], None],
) -> _Result:
    from cnn_lab.engine.tune.batch_size import find_max_batch

    budget = None if args.budget_mb is None else int(args.budget_mb * MIB)
    return find_max_batch(
        spec,
        limit=args.limit_batch,
        memory_budget_bytes=budget,
        method=args.method,
        should_stop=should_stop,
        progress=progress,
    )


# --------------------------------------------------------------------------- speed


def _speed_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--options",
        default="",
        metavar="LIST",
        help="speed options to try, comma-separated, e.g. precision,channels_last "
        "(default: all that apply to the device)",
    )
    parser.add_argument(
        "--steps", type=int, default=8, metavar="N", help="timed steps per setting (default: 8)"
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=3,
        metavar="N",
        help="untimed steps before each measurement (default: 3)",
    )


def _run_speed(
    spec: RunSpec,
    args: argparse.Namespace,
    should_stop: Callable[[], bool],
    progress: Callable[[str, int, int], None],
) -> _Result:
    from cnn_lab.engine.tune.speed import advise

    names = [part.strip() for part in args.options.split(",") if part.strip()]
    return advise(
        spec,
        options=names or None,
        warmup=args.warmup,
        steps=args.steps,
        should_stop=should_stop,
        progress=progress,
    )


# --------------------------------------------------------------------------- epoch time


def _epoch_time_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--steps", type=int, default=8, metavar="N", help="timed training steps (default: 8)"
    )


def _run_epoch_time(
    spec: RunSpec,
    args: argparse.Namespace,
    should_stop: Callable[[], bool],
    progress: Callable[[str, int, int], None],
) -> _Result:
    from cnn_lab.engine.tune.epoch_time import measure_epoch_time

    return measure_epoch_time(spec, steps=args.steps, should_stop=should_stop, progress=progress)


TUNERS: dict[str, _Tuner] = {
    "lr": _Tuner(
        "learning-rate range test: the loss as the rate rises, and a suggested rate",
        _lr_options,
        _run_lr,
    ),
    "batch-size": _Tuner(
        "the largest batch that fits the device's memory",
        _batch_options,
        _run_batch,
    ),
    "speed": _Tuner(
        "measure the speed options (precision, layout, compile, …) and recommend the fastest",
        _speed_options,
        _run_speed,
    ),
    "epoch-time": _Tuner(
        "time a few steps and a validation pass: how long one epoch takes here",
        _epoch_time_options,
        _run_epoch_time,
    ),
}


# --------------------------------------------------------------------------- wiring


def add_commands(commands: Any) -> None:
    tune = commands.add_parser("tune", help="measure what to set: learning rate, batch size, speed")
    tuners = add_actions(tune, "tune_command", metavar="TUNER")
    for name, tuner in TUNERS.items():
        parser = tuners.add_parser(name, help=tuner.help, description=tuner.help)
        add_spec_options(parser)
        tuner.add_options(parser)
        parser.add_argument("--json", action="store_true", help="print one JSON object")
        parser.set_defaults(handler=cmd_tune, tuner=name)


def cmd_tune(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    spec = spec_from_args(args)
    stop = threading.Event()
    with stop_on_interrupt(stop):
        result = TUNERS[args.tuner].run(spec, args, stop.is_set, progress_line(err))
    if args.json:
        out.write(json.dumps(result.to_dict(), allow_nan=False) + "\n")
    else:
        out.write("\n".join(result.summary_lines()) + "\n")
    return 0


__all__ = ["TUNERS", "add_commands", "cmd_tune"]
