"""``cnn-lab report RUN_ID --out PATH`` and ``cnn-lab report --sweep SWEEP --out PATH``.

Writes a run's or a sweep's report as HTML (self-contained), PDF, CSV or JSON; the format
comes from ``--format`` or the file's suffix. Prints one sentence with the path and size;
a refusal (an unknown run or sweep, a folder that does not exist) is one line and exit 2.

The report modules (Jinja2, fpdf2, torch for the architecture) load only when a report is
written.
"""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from cnn_lab.engine.cli.common import add_db
from cnn_lab.engine.errors import UserError
from cnn_lab.engine.report.formats import FORMATS, Options, write_report
from cnn_lab.engine.store import open_store, resolve_location, store_exists


def add_commands(commands: Any) -> None:
    report = commands.add_parser(
        "report",
        help="a run's or a sweep's report: HTML, PDF, CSV or JSON",
        description="Write a report of a run (RUN_ID) or of a sweep (--sweep ID_OR_NAME). "
        "HTML and PDF show the dataset, architecture, hyperparameters, curves, system use, "
        "bottleneck verdict, evaluation and environment (a sweep: its trials, parallel "
        "coordinates and parameter importance); CSV and JSON hold every metric point "
        "(a sweep's CSV: one row per trial).",
    )
    report.add_argument("run_id", nargs="?", type=int, metavar="RUN_ID", help="the run to report")
    report.add_argument("--sweep", metavar="SWEEP", help="report a sweep (its id or name) instead")
    report.add_argument("--out", required=True, metavar="PATH", help="the file to write")
    report.add_argument(
        "--format", choices=sorted(FORMATS), help="the format (default: from --out's suffix)"
    )
    report.add_argument(
        "--no-images",
        action="store_true",
        help="leave out the dataset's images (faster: the dataset is not read)",
    )
    report.add_argument(
        "--storage",
        metavar="JOURNAL_OR_URL",
        help="a sweep's Optuna storage, when it is not the journal beside the database",
    )
    add_db(report)
    report.set_defaults(handler=cmd_report)


def cmd_report(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    if (args.run_id is None) == (args.sweep is None):
        raise UserError(
            "Give either a RUN_ID or --sweep ID_OR_NAME to report on.",
            hint="See `cnn-lab runs list` for runs.",
        )
    db = resolve_location(args.db)
    if not store_exists(db):  # reading must not leave an empty database behind a typo
        raise UserError(f"There is no run database at {db}.", hint="Check --db or $CNN_LAB_DB.")
    options = Options(images=not args.no_images, storage=args.storage)
    with open_store(db) as store:
        written = write_report(
            store,
            args.out,
            run_id=args.run_id,
            sweep=args.sweep,
            fmt=args.format,
            options=options,
        )
    out.write(written.sentence() + "\n")
    return 0


__all__ = ["add_commands", "cmd_report"]
