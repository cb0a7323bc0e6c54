"""cnn-lab's headless commands: the same engine as the window, on a terminal.

``build_parser`` assembles one parser from the command groups (one module each in this
package); app/main.py extends it with the window's own flags and opens the window when no
command is given, so ``cnn-lab --help`` lists every command in one place. Nothing here
imports Qt, and torch loads only when a command trains.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from cnn_lab.engine import __version__
from cnn_lab.engine.cli import (
    data,
    db,
    evaluate,
    model,
    optimize,
    report,
    runs,
    sweep,
    train,
    tune,
)
from cnn_lab.engine.cli.common import PROG, Parser, add_db, run_command

GROUPS = (train, data, model, tune, sweep, optimize, evaluate, report, runs, db)
"""The command groups, in the order ``cnn-lab --help`` lists them."""


def build_parser() -> argparse.ArgumentParser:
    """Every command's parser; ``args.command`` is None when none was given."""
    parser = Parser(
        prog=PROG,
        description="cnn-lab: train, compare and diagnose CNNs. With no command, opens the window.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    add_db(parser, top=True)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for group in GROUPS:
        group.add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Headless entry point (``python -m cnn_lab.engine.cli``): commands only, no window."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    return run_command(args)


__all__ = ["GROUPS", "build_parser", "main"]
