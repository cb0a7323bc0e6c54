"""``PgRunStore``'s runs: creating, organising, starting, heartbeating, ending and finding them.

Every time written here is the server's clock (``SERVER_NOW``), so a run started on one
machine and ended on another has a true duration. A summary is stored with NaN and infinities
as null (JSON proper, which the search's ``::jsonb`` reads), where SQLite keeps a NaN.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import psycopg

from cnn_lab.engine.errors import StoreError
from cnn_lab.engine.store.liveness import this_host
from cnn_lab.engine.store.postgres import lease, runs_sql
from cnn_lab.engine.store.postgres.base import Connected, guarded
from cnn_lab.engine.store.postgres.schema import SERVER_NOW
from cnn_lab.engine.store.run_query import RunQuery
from cnn_lab.engine.store.status import ACTIVE, ALL, CRASHED, FINAL, QUEUED, RUNNING
from cnn_lab.engine.store.store import (
    RunRecord,
    _dump_summary,
    _load_summary,
    _spec_tags,
)


def _summary_text(summary: dict[str, Any]) -> str:
    """The summary as SQLite's store writes it, with NaN and infinities as null: jsonb (which
    the search casts to) refuses them."""
    text = _dump_summary(summary)
    return json.dumps(json.loads(text, parse_constant=lambda _: None), sort_keys=True)


class RunMethods(Connected):
    """The runs table, its tags, and the lease (lease.py)."""

    # ------------------------------------------------------------------- runs: writing

    @guarded
    def create_run(
        self,
        *,
        spec_json: str,
        spec_hash: str,
        name: str = "",
        dataset: str = "",
        model: str = "",
        device: str = "",
        experiment_id: int | None = None,
        status: str = QUEUED,
    ) -> int:
        """Record a new run (its spec's tags too) and return its id."""
        if status not in ALL:
            raise ValueError(f"{status!r} is not a run status; use one of {sorted(ALL)}.")
        with self._tx() as cur:
            cur.execute(
                "INSERT INTO runs (experiment_id, name, status, spec_json, spec_hash, dataset, "
                f"model, device, created_at, summary_json) VALUES "
                f"(%s, %s, %s, %s, %s, %s, %s, %s, {SERVER_NOW}, '{{}}') RETURNING id",
                [experiment_id, name, status, spec_json, spec_hash, dataset, model, device],
            )
            run_id = int(cur.fetchone()[0])  # type: ignore[index]
            self._insert_tags(cur, run_id, _spec_tags(spec_json))
            return run_id

    @staticmethod
    def _insert_tags(cur: psycopg.Cursor[Any], run_id: int, tags: Iterable[str]) -> None:
        rows = [(run_id, tag) for tag in tags]
        if rows:
            cur.executemany(
                "INSERT INTO run_tags (run_id, tag) VALUES (%s, %s) ON CONFLICT DO NOTHING", rows
            )

    @guarded
    def rename_run(self, run_id: int, name: str) -> None:
        self._update_run(run_id, "name = %s", [name.strip()])

    @guarded
    def set_note(self, run_id: int, note: str) -> None:
        self._update_run(run_id, "note = %s", [note])

    @guarded
    def set_archived(self, run_ids: Iterable[int], archived: bool) -> None:
        """Archive (hide from the default listing) or bring back; nothing is deleted."""
        ids = [int(run_id) for run_id in run_ids]
        with self._tx() as cur:
            cur.execute("UPDATE runs SET archived = %s WHERE id = ANY(%s)", [bool(archived), ids])

    @guarded
    def set_tags(self, run_id: int, tags: Iterable[str]) -> None:
        """Replace the run's tags; blank ones are dropped and repeats kept once."""
        clean = sorted({t.strip() for t in tags if t.strip()}, key=str.lower)
        with self._tx() as cur:
            cur.execute("SELECT 1 FROM runs WHERE id = %s FOR UPDATE", [run_id])
            if cur.fetchone() is None:
                raise self._not_found(run_id)
            cur.execute("DELETE FROM run_tags WHERE run_id = %s", [run_id])
            self._insert_tags(cur, run_id, clean)

    @guarded
    def delete_run_rows(self, run_ids: Iterable[int]) -> list[int]:
        """Delete ended runs with their points, samples, tags and artifact rows (the schema
        cascades); refused as a whole while any of them is queued or running."""
        ids = [int(run_id) for run_id in run_ids]
        with self._tx() as cur:
            cur.execute(
                "SELECT id, status FROM runs WHERE id = ANY(%s) ORDER BY id FOR UPDATE", [ids]
            )
            found = dict(cur.fetchall())
            active = [run_id for run_id, status in found.items() if status in ACTIVE]
            if active:
                raise StoreError(
                    f"Run {active[0]} is still queued or running, so it cannot be deleted.",
                    "Stop it first.",
                )
            if missing := sorted(set(ids) - set(found)):
                raise self._not_found(missing[0])
            cur.execute("DELETE FROM runs WHERE id = ANY(%s)", [ids])
        return ids

    @guarded
    def mark_running(self, run_id: int, *, pid: int, device: str, host: str | None = None) -> None:
        """Claim a run for the process ``pid`` on ``host`` (this machine unless given); its
        start and first heartbeat are the server's time."""
        self._update_run(
            run_id,
            f"status = %s, started_at = {SERVER_NOW}, heartbeat_at = {SERVER_NOW}, pid = %s, "
            "host = %s, device = %s",
            [RUNNING, pid, host or this_host(), device],
        )

    @guarded
    def heartbeat(self, run_id: int, *, now: float | None = None) -> None:
        """Say the run's process is alive, at ``now`` or else the server's time."""
        self._update_run(
            run_id, f"heartbeat_at = COALESCE(%s::double precision, {SERVER_NOW})", [now]
        )

    @guarded
    def finish_run(
        self,
        run_id: int,
        status: str,
        *,
        reason: str | None = None,
        hint: str | None = None,
        summary: dict[str, Any] | None = None,
    ) -> None:
        """End a run with a final status; ``summary`` is merged into the one already stored."""
        if status not in FINAL:
            raise ValueError(f"A run can only finish as one of {sorted(FINAL)}, not as {status!r}.")
        with self._tx() as cur:
            merged = self._merged_summary(cur, run_id, summary or {})
            cur.execute(
                f"UPDATE runs SET status = %s, reason = %s, hint = %s, ended_at = {SERVER_NOW}, "
                "summary_json = %s WHERE id = %s",
                [status, reason, hint, _summary_text(merged), run_id],
            )

    @guarded
    def update_summary(self, run_id: int, summary: dict[str, Any]) -> None:
        """Merge ``summary``'s keys into the run's summary."""
        with self._tx() as cur:
            merged = self._merged_summary(cur, run_id, summary)
            cur.execute(
                "UPDATE runs SET summary_json = %s WHERE id = %s", [_summary_text(merged), run_id]
            )

    @guarded
    def update_spec(self, run_id: int, spec_json: str, spec_hash: str) -> None:
        """Replace the run's spec (resuming with a new number of epochs changes it)."""
        self._update_run(run_id, "spec_json = %s, spec_hash = %s", [spec_json, spec_hash])

    @guarded
    def queue_again(self, run_id: int) -> str | None:
        """Show an ended run as queued while it waits to resume; the status it had (None:
        not ended, and nothing changes)."""
        with self._tx() as cur:
            cur.execute("SELECT status FROM runs WHERE id = %s FOR UPDATE", [run_id])
            row = cur.fetchone()
            if row is None:
                raise self._not_found(run_id)
            if row[0] not in FINAL:
                return None
            cur.execute("UPDATE runs SET status = %s WHERE id = %s", [QUEUED, run_id])
            return str(row[0])

    @guarded
    def unqueue(self, run_id: int, status: str) -> bool:
        """Give a run queued again its ended ``status`` back; False once it has started."""
        if status not in FINAL:
            raise ValueError(f"A run can only go back to one of {sorted(FINAL)}, not {status!r}.")
        with self._tx() as cur:
            cur.execute(
                "UPDATE runs SET status = %s WHERE id = %s AND status = %s",
                [status, run_id, QUEUED],
            )
            return cur.rowcount > 0

    @guarded
    def mark_crashed_if_active(self, run_id: int, reason: str) -> bool:
        """Crash a run only if it is still queued or running (one conditional UPDATE, so a
        job that finished a moment earlier keeps its own status)."""
        with self._tx() as cur:
            cur.execute(
                f"UPDATE runs SET status = %s, reason = %s, "
                f"ended_at = COALESCE(ended_at, {SERVER_NOW}) WHERE id = %s AND status = ANY(%s)",
                [CRASHED, reason, run_id, sorted(ACTIVE)],
            )
            return cur.rowcount > 0

    @guarded
    def sweep_stale(self, now: float | None = None) -> list[int]:
        """Crash every running run whose job is gone (lease.py; ``now`` defaults to the
        server's clock) and return their ids."""
        with self._tx() as cur:
            return lease.sweep(cur, now, self._stale_after_s)

    def _update_run(self, run_id: int, assignments: str, params: Sequence[Any]) -> None:
        with self._tx() as cur:
            cur.execute(f"UPDATE runs SET {assignments} WHERE id = %s", [*params, run_id])  # type: ignore[arg-type]
            if cur.rowcount == 0:
                raise self._not_found(run_id)

    def _merged_summary(
        self, cur: psycopg.Cursor[Any], run_id: int, summary: dict[str, Any]
    ) -> dict[str, Any]:
        # The row is locked until the caller's transaction ends, so concurrent merges queue
        # instead of dropping each other's keys.
        cur.execute("SELECT summary_json FROM runs WHERE id = %s FOR UPDATE", [run_id])
        row = cur.fetchone()
        if row is None:
            raise self._not_found(run_id)
        return {**_load_summary(row[0]), **summary}

    # ------------------------------------------------------------------- runs: reading

    @guarded
    def get_run(self, run_id: int) -> RunRecord:
        """The run with id ``run_id``; ``RunNotFound`` if there is none."""
        with self._tx() as cur:
            cur.execute(f"{runs_sql.RUN_SELECT} WHERE runs.id = %s", [run_id])
            row = cur.fetchone()
            if row is None:
                raise self._not_found(run_id)
            return self._records(cur, [row])[0]

    @guarded
    def list_runs(
        self, *, status: str | None = None, limit: int = 1000, offset: int = 0
    ) -> list[RunRecord]:
        """Runs newest first, optionally only those with ``status``."""
        where, params = ("WHERE status = %s", [status]) if status is not None else ("", [])
        with self._tx() as cur:
            cur.execute(
                f"{runs_sql.RUN_SELECT} {where} "  # type: ignore[arg-type]
                "ORDER BY runs.created_at DESC, runs.id DESC LIMIT %s OFFSET %s",
                [*params, limit, offset],
            )
            return self._records(cur, cur.fetchall())

    @guarded
    def query_runs(
        self, query: RunQuery, *, summary_keys: Sequence[str] | None = None
    ) -> list[RunRecord]:
        """The runs matching the Runs browser's search (run_query.py), in its order."""
        keys = list(summary_keys) if summary_keys is not None else None
        sql, params = runs_sql.select_runs(query, keys)
        with self._tx() as cur:
            cur.execute(sql, params)  # type: ignore[arg-type]
            return self._records(cur, cur.fetchall(), drop_nulls=keys is not None)

    @guarded
    def tags_in_use(self) -> list[tuple[str, int]]:
        """Every tag with how many runs carry it, most used first."""
        with self._tx() as cur:
            cur.execute(
                "SELECT tag, COUNT(*) FROM run_tags GROUP BY tag ORDER BY COUNT(*) DESC, tag"
            )
            return [(str(tag), int(count)) for tag, count in cur.fetchall()]

    @staticmethod
    def _records(
        cur: psycopg.Cursor[Any], rows: Sequence[Sequence[Any]], *, drop_nulls: bool = False
    ) -> list[RunRecord]:
        """Decode rows, with every listed run's tags fetched in one query."""
        tags: dict[int, list[str]] = {}
        cur.execute(
            "SELECT run_id, tag FROM run_tags WHERE run_id = ANY(%s) ORDER BY LOWER(tag), tag",
            [[int(row[0]) for row in rows]],
        )
        for run_id, tag in cur.fetchall():
            tags.setdefault(int(run_id), []).append(tag)
        records = []
        for row in rows:
            values = dict(zip(runs_sql.RUN_COLUMNS, row, strict=True))
            summary = _load_summary(values.pop("summary_json"))
            if drop_nulls:
                summary = {key: value for key, value in summary.items() if value is not None}
            values["summary"] = summary
            values["id"] = int(values["id"])
            values["archived"] = bool(values["archived"])
            values["tags"] = tuple(tags.get(values["id"], ()))
            records.append(RunRecord(**values))
        return records
