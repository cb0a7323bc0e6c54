"""``cnn-lab db copy SRC DST``: a whole run store moved between files and databases.

SRC and DST are what ``--db`` takes: a SQLite file (or ``sqlite:///PATH``) or a
``postgresql://`` address (its artifact folder from ``?artifacts=``, ``$CNN_LAB_ARTIFACTS``
or the default; engine/store/locations.py). The copy goes into an empty store only, and
prints each table's rows and checksum as both sides hold them (engine/store/transfer.py).
"""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from cnn_lab.engine.cli.common import add_actions


def add_commands(commands: Any) -> None:
    db = commands.add_parser("db", help="copy a whole run store between files and databases")
    actions = add_actions(db, "db_command")
    copy = actions.add_parser(
        "copy",
        help="copy every run, metric, tag and file of SRC into the empty store DST, checked",
    )
    copy.add_argument("source", metavar="SRC", help="a .sqlite file or a postgresql:// address")
    copy.add_argument("destination", metavar="DST", help="an empty (or new) store, the same way")
    copy.set_defaults(handler=cmd_db_copy)


def cmd_db_copy(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from cnn_lab.engine.store import open_store
    from cnn_lab.engine.store.locations import describe, resolve_location
    from cnn_lab.engine.store.transfer import copy_store

    source_at, destination_at = (resolve_location(v) for v in (args.source, args.destination))
    with open_store(source_at, sweep=False) as source, open_store(destination_at) as destination:
        err.write(f"copying {describe(source_at)} into {describe(destination_at)}\n")
        result = copy_store(source, destination, progress=lambda line: err.write(f"  {line}\n"))
    out.write("\n".join(result.lines()) + "\n")
    out.write(f"copied and checked: every table matches its source in {describe(destination_at)}\n")
    return 0


__all__ = ["add_commands", "cmd_db_copy"]
