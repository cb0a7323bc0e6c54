"""``cnn-lab runs list``, ``runs show RUN_ID``, ``runs check``: the run database on a terminal."""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from cnn_lab.engine.cli.common import add_actions, add_db, percent, summary_line
from cnn_lab.engine.errors import UserError
from cnn_lab.engine.store import is_sqlite, open_store, resolve_location, status, store_exists
from cnn_lab.engine.store.locations import describe

MAX_LISTED = 1_000_000
"""The most runs ``runs list --limit`` lists (SQLite's LIMIT takes no more than 2**63 - 1)."""


def add_commands(commands: Any) -> None:
    runs = commands.add_parser("runs", help="list or show recorded runs")
    actions = add_actions(runs, "runs_command")
    runs_list = actions.add_parser("list", help="list runs, newest first, or those a search finds")
    add_db(runs_list)
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
    runs_show = actions.add_parser("show", help="show one run: spec, status, summary, metrics")
    add_db(runs_show)
    runs_show.add_argument("run_id", type=int, metavar="RUN_ID")
    runs_show.add_argument("--json", action="store_true")
    runs_show.set_defaults(handler=cmd_runs_show)
    runs_check = actions.add_parser(
        "check",
        help="check the run database: SQLite's integrity check, and every recorded file on disk",
    )
    add_db(runs_check)
    runs_check.set_defaults(handler=cmd_runs_check)


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
    with open_store(resolve_location(args.db)) as store:
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
                percent(r.summary.get("best_val_accuracy")),
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
    db = resolve_location(args.db)
    if not store_exists(db):  # reading must not leave an empty database behind a typo
        raise UserError(f"There is no run database at {db}.", hint="Check --db or $CNN_LAB_DB.")
    with open_store(db) as store:
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


def cmd_runs_check(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Say whether the database is sound and which recorded files (weights, checkpoints,
    reports) are gone from disk; exit 1 if anything is wrong, so a script can act on it.

    A damaged file already refuses to open (with the backup to restore); this finds damage
    ``quick_check`` does not (index contents) and files deleted or moved by hand.
    """
    db = resolve_location(args.db)
    if not store_exists(db):  # checking must not leave an empty database behind a typo
        raise UserError(f"There is no run database at {db}.", hint="Check --db or $CNN_LAB_DB.")
    with open_store(db) as store:
        sound = store.integrity_ok()
        records = store.list_runs(limit=MAX_LISTED)
        missing = [
            (record.id, artifact["kind"], artifact["path"])
            for record in records
            for artifact in store.artifacts(record.id)
            if not Path(artifact["path"]).exists()
        ]
    sqlite = is_sqlite(db)
    out.write(
        f"{describe(db)}: {len(records):,} runs; "
        + ("SQLite's integrity check " if sqlite else "the schema check ")
        + ("passed.\n" if sound else "FAILED: the database is damaged.\n")
    )
    for run_id, kind, path in missing:
        out.write(f"  run {run_id}: its {kind} file is missing: {path}\n")
    if missing:
        out.write(f"{len(missing):,} recorded files are missing from disk.\n")
    if not sound and not sqlite:
        err.write("Ask the database's owner to restore it from the server's backup.\n")
    elif not sound:
        err.write(
            f"Copy out what can be read (sqlite3 {db} .recover | sqlite3 NEW.sqlite), or "
            f"restore a backup beside it ({Path(db).name}.vN-backup, made before each upgrade).\n"
        )
    return 0 if sound and not missing else 1


def _when(timestamp: float | None) -> str:
    return datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M") if timestamp else ""
