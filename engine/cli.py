"""cnn-lab's headless commands: the same engine as the window, on a terminal.

``build_parser`` is shared with app/main.py, which opens the window when no command is
given, so ``cnn-lab --help`` lists every command in one place. Nothing here imports Qt,
and torch loads only when a command trains.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NoReturn, TextIO

from cnn_lab.engine import __version__
from cnn_lab.engine.cli_data import add_data_commands
from cnn_lab.engine.cli_evaluate import add_evaluate_commands
from cnn_lab.engine.cli_model import add_model_commands
from cnn_lab.engine.cli_report import add_report_commands
from cnn_lab.engine.cli_sweep import add_sweep_commands
from cnn_lab.engine.cli_train import add_train_commands
from cnn_lab.engine.cli_tune import add_tune_commands
from cnn_lab.engine.errors import UserError
from cnn_lab.engine.specs.base import printable
from cnn_lab.engine.store import RunStore, resolve_db_path, status

PROG = "cnn-lab"
EXIT_USAGE = 2
EXIT_FAILED = 1
MAX_LISTED = 1_000_000
"""The most runs ``runs list --limit`` lists (SQLite's LIMIT takes no more than 2**63 - 1)."""


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad argument as one line, never a usage dump or traceback."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see '{self.prog} --help').\n")


def _add_db(parser: argparse.ArgumentParser, *, top: bool = False) -> None:
    # A command's own --db is SUPPRESSed when absent, so "cnn-lab --db X runs list" keeps X
    # instead of the command's default overwriting it with None.
    parser.add_argument(
        "--db",
        metavar="PATH",
        default=None if top else argparse.SUPPRESS,
        help="the run database (default: $CNN_LAB_DB, else the user data folder)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="cnn-lab: train, compare and diagnose CNNs. With no command, opens the window.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    _add_db(parser, top=True)
    parser.add_argument(
        "--screenshot", metavar="OUT.png", help="render the window to a PNG and exit"
    )
    parser.add_argument("--panel", metavar="NAME", help="with --screenshot: render only this panel")
    parser.add_argument(
        "--runs",
        metavar="ID,ID",
        help="with --screenshot: select these runs first (Compare compares them)",
    )
    parser.add_argument(
        "--drop",
        metavar="PATH",
        action="append",
        help="with --screenshot: drop this file or folder on the panel first (repeatable)",
    )
    parser.add_argument(
        "--theme",
        choices=["system", "light", "dark"],
        help="with --screenshot: draw in this theme (the window keeps the last one chosen)",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    add_train_commands(commands, _Parser, _add_db)
    add_data_commands(commands, _Parser)
    add_model_commands(commands, _Parser)
    add_tune_commands(commands, _Parser)
    add_sweep_commands(commands, _add_db)
    add_evaluate_commands(commands, _add_db)
    add_report_commands(commands, _add_db)

    runs = commands.add_parser("runs", help="list or show recorded runs")
    runs_commands = runs.add_subparsers(
        dest="runs_command", metavar="ACTION", required=True, parser_class=_Parser
    )
    runs_list = runs_commands.add_parser(
        "list", help="list runs, newest first, or those a search finds"
    )
    _add_db(runs_list)
    runs_list.add_argument(
        "search",
        nargs="*",
        metavar="TERM",
        help="the Runs panel's search: status:completed tag:baseline lr<0.01 sort:-lr words",
    )
    runs_list.add_argument(
        "--archived", action="store_true", help="include archived runs (hidden otherwise)"
    )
    runs_list.add_argument(
        "--status", choices=sorted(status.ALL), help="only runs with this status"
    )
    runs_list.add_argument("--limit", type=int, default=50, metavar="N")
    runs_list.add_argument("--json", action="store_true")
    runs_list.set_defaults(handler=cmd_runs_list)
    runs_show = runs_commands.add_parser(
        "show", help="show one run: spec, status, summary, metrics"
    )
    _add_db(runs_show)
    runs_show.add_argument("run_id", type=int, metavar="RUN_ID")
    runs_show.add_argument("--json", action="store_true")
    runs_show.set_defaults(handler=cmd_runs_show)
    return parser


# ---------------------------------------------------------------------------- commands


def cmd_runs_list(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from cnn_lab.engine.store.run_query import RunQuery

    if not 1 <= args.limit <= MAX_LISTED:
        raise UserError(f"--limit must be between 1 and {MAX_LISTED:,} (got {args.limit}).")
    query = RunQuery(
        text=" ".join(args.search),
        status=args.status,
        include_archived=args.archived,
        limit=args.limit,
    )
    with RunStore.open(resolve_db_path(args.db)) as store:
        records = store.query_runs(query)
    if args.json:
        out.write(json.dumps([r.to_dict() for r in records]) + "\n")
        return 0
    if not records and (args.search or args.status):
        out.write("No run matches.\n")
        return 0
    if not records:
        out.write("No runs yet. Train one with: cnn-lab train --data sample:shapes\n")
        return 0
    rows = [("ID", "STATUS", "CREATED", "DATA", "MODEL", "EPOCHS", "BEST VAL ACC", "NAME")]
    for r in records:
        rows.append(
            (
                str(r.id),
                r.status,
                _when(r.created_at),
                r.dataset,
                r.model,
                str(r.summary.get("epochs", "")),
                _percent(r.summary.get("best_val_accuracy")),
                r.name,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        out.write(
            "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() + "\n"
        )
    return 0


def cmd_runs_show(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    db = resolve_db_path(args.db)
    if not db.exists():  # reading must not leave an empty database behind a typo
        raise UserError(f"There is no run database at {db}.", hint="Check --db or $CNN_LAB_DB.")
    with RunStore.open(db) as store:
        record = store.get_run(args.run_id)
        keys = store.metric_keys(args.run_id)
    info = record.to_dict()
    info["spec"] = json.loads(record.spec_json) if record.spec_json else None
    info["metrics"] = keys
    if args.json:
        out.write(json.dumps(info) + "\n")
        return 0
    out.write(f"Run {record.id}  {record.name or '(unnamed)'}\n")
    out.write(
        f"  status     {record.status}" + (f": {record.reason}" if record.reason else "") + "\n"
    )
    if record.hint:
        out.write(f"  hint       {record.hint}\n")
    out.write(f"  data       {record.dataset}\n  model      {record.model}\n")
    out.write(f"  device     {record.summary.get('device', record.device)}\n")
    out.write(f"  created    {_when(record.created_at)}\n")
    if record.duration_s is not None:
        out.write(f"  duration   {record.duration_s:.1f} s\n")
    out.write(f"  summary    {summary_line(record.summary)}\n")
    out.write(
        "  metrics    "
        + (", ".join(f"{k} ({n})" for k, n in sorted(keys.items())) or "none")
        + "\n"
    )
    out.write(
        "  spec       " + json.dumps(info["spec"], indent=2).replace("\n", "\n             ") + "\n"
    )
    return 0


# ---------------------------------------------------------------------------- helpers


def summary_line(summary: dict[str, Any]) -> str:
    parts = []
    if summary.get("epochs") is not None:
        parts.append(f"{summary['epochs']} epochs")
    if summary.get("best_val_accuracy") is not None:
        parts.append(f"best val acc {_percent(summary['best_val_accuracy'])}")
    if summary.get("final_train_loss") is not None:
        parts.append(f"final train loss {summary['final_train_loss']:.4f}")
    if summary.get("train_images_per_s"):
        parts.append(f"{summary['train_images_per_s']:,.0f} img/s")
    return ", ".join(parts) or "no results"


def _percent(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:.1%}"


def _when(timestamp: float | None) -> str:
    return datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M") if timestamp else ""


def run_command(
    args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """Run a parsed command; a person's mistake becomes one line on ``err`` and exit 2.

    The streams default to ``sys.stdout``/``sys.stderr`` as they are *now*, not at import, so
    redirection and pytest's capture see the output.
    """
    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    try:
        return int(args.handler(args, out, err))
    except UserError as exc:
        # One line whatever the message quotes (a path or a name with a line break in it).
        err.write(f"{PROG}: {printable(str(exc))}\n")
        return EXIT_USAGE
    except BrokenPipeError:
        # The reader went away (``cnn-lab model list | head``): stop quietly, as Unix tools
        # do. Point stdout at devnull so the interpreter's final flush does not complain.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED


def main(argv: Sequence[str] | None = None) -> int:
    """Headless entry point (``python -m cnn_lab.engine.cli``): commands only, no window."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    return run_command(args)


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["build_parser", "main", "run_command"]
