"""cnn-lab's entry point: a command runs headless; no command opens the window.

The parser is the engine's (every headless command) extended with the window's own flags,
which only the window knows. Qt and the window are imported only when the window is wanted,
and torch is never imported here: the window must appear before torch loads
(tests/app/test_startup.py checks it).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from cnn_lab.app.platform_check import xcb_problem
from cnn_lab.engine.cli.common import run_command
from cnn_lab.engine.cli.main import build_parser as build_engine_parser
from cnn_lab.engine.errors import UserError


def build_parser() -> argparse.ArgumentParser:
    """The engine's parser with the window's flags, which only matter when no command is given."""
    parser = build_engine_parser()
    window = parser.add_argument_group("window options (when no command is given)")
    window.add_argument(
        "--screenshot", metavar="OUT.png", help="render the window to a PNG and exit"
    )
    window.add_argument("--panel", metavar="NAME", help="with --screenshot: render only this panel")
    window.add_argument(
        "--runs",
        metavar="ID,ID",
        help="with --screenshot: select these runs first (Compare compares them)",
    )
    window.add_argument(
        "--drop",
        metavar="PATH",
        action="append",
        help="with --screenshot: drop this file or folder on the panel first (repeatable)",
    )
    window.add_argument(
        "--theme",
        choices=["system", "light", "dark"],
        help="with --screenshot: draw in this theme (the window keeps the last one chosen)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is not None:
        return run_command(args)
    if (args.panel or args.runs or args.drop or args.theme) and not args.screenshot:
        parser.error("--panel, --runs, --drop and --theme only work with --screenshot")
    try:
        runs = [int(part) for part in (args.runs or "").split(",") if part.strip()]
    except ValueError:
        parser.error(f"--runs takes run ids separated by commas, not {args.runs!r}")
    problem = xcb_problem()  # before Qt loads: Qt's own abort text does not say what to install
    if problem:
        sys.stderr.write(problem)
        return 1
    from cnn_lab.app.error_reporting import install_error_reporting
    from cnn_lab.app.gui import run_gui

    install_error_reporting()  # an exception in a slot is logged and shown, never swallowed
    try:
        return run_gui(
            db=args.db,
            screenshot=args.screenshot,
            panel=args.panel,
            runs=runs,
            drops=args.drop or [],
            theme=args.theme,
        )
    except UserError as exc:
        sys.stderr.write(f"cnn-lab: {exc}\n")
        return 2


if __name__ == "__main__":
    sys.exit(main())
