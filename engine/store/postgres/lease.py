"""The lease on a running run, kept on the PostgreSQL server's clock.

In a lab the job runs on one machine and the window that notices it died on another, and
their clocks disagree by seconds or minutes. So the store never compares a heartbeat with a
machine's own clock: a heartbeat written without an explicit time is the server's
``clock_timestamp()``, and the sweep measures its age against the same clock. A run is gone,
by SQLite's rules (``RunStore._is_gone``), when its heartbeat is older than ``stale_after_s``
on that clock, or when it ran on this machine and its process no longer exists.

Two windows may sweep at once. Each crashes a run with one conditional UPDATE on a row it
locks with ``SKIP LOCKED`` and whose heartbeat is still the one it judged: a run another
sweeper is crashing, or whose job heartbeated meanwhile, is left alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

from cnn_lab.engine.store.liveness import this_host
from cnn_lab.engine.store.postgres.schema import SERVER_NOW
from cnn_lab.engine.store.status import CRASHED, RUNNING
from cnn_lab.engine.store.store import CRASH_HINT, _pid_alive, crash_reason

_CANDIDATES = (
    "SELECT id, host, pid, heartbeat_at, started_at, created_at, "
    f"COALESCE(%s::double precision, {SERVER_NOW}) FROM runs WHERE status = %s"
)

_CRASH = (
    "UPDATE runs SET status = %s, reason = %s, hint = %s, ended_at = %s WHERE id IN ("
    "  SELECT id FROM runs WHERE id = %s AND status = %s"
    "  AND heartbeat_at IS NOT DISTINCT FROM %s::double precision FOR UPDATE SKIP LOCKED"
    ") RETURNING id"
)


def is_gone(row: Sequence[Any], now: float, stale_after_s: float) -> bool:
    """Whether the job of a running run (id, host, pid, heartbeat, start, creation) is gone."""
    _run_id, host, pid, heartbeat_at, started_at, created_at = row[:6]
    # A run created as running has no heartbeat yet: its creation time starts the clock.
    last = next((t for t in (heartbeat_at, started_at, created_at) if t is not None), now)
    if now - last > stale_after_s:
        return True
    on_this_host = host is not None and host == this_host()
    return on_this_host and pid is not None and not _pid_alive(int(pid))


def sweep(cur: psycopg.Cursor[Any], now: float | None, stale_after_s: float) -> list[int]:
    """Crash every running run whose job is gone (``now``: the server's clock unless given)."""
    cur.execute(_CANDIDATES, [now, RUNNING])
    rows = cur.fetchall()
    changed: list[int] = []
    for row in rows:
        at = float(row[6])
        if not is_gone(row, at, stale_after_s):
            continue
        run_id, _host, _pid, heartbeat_at, started_at, created_at = row[:6]
        last = heartbeat_at or started_at or created_at or at
        cur.execute(
            _CRASH,
            [
                CRASHED,
                crash_reason(last),
                CRASH_HINT,
                last,
                run_id,
                RUNNING,
                heartbeat_at,
            ],
        )
        if cur.fetchone() is not None:
            changed.append(int(run_id))
    return changed


__all__ = ["is_gone", "sweep"]
