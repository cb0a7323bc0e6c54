"""cnn-lab's entry point: a command runs headless; no command opens the window.

Qt and the window are imported only when the window is wanted, and torch is never imported
here: the window must appear before torch loads (tests/app/test_startup.py checks it).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from cnn_lab.app.platform_check import xcb_problem
from cnn_lab.engine.cli import build_parser, run_command
from cnn_lab.engine.errors import UserError


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
